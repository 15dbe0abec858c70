"""How transformers' AutoTokenizer sees a model directory r1kit wrote (tests/pipelines/
test_checkpoint.cpp, HfExport): its class, eos / pad tokens, and whether decoding with
skip_special_tokens=True keeps R1's <think>/<answer> tags, as TRL and vLLM decode.
Usage: hf_export_check.py MODEL_DIR OUT.json"""
import json
import sys

from transformers import AutoTokenizer


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    tok = AutoTokenizer.from_pretrained(model_dir)
    text = "<think>\n1+1 is 2\n</think>\n<answer>2</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    result = {
        "class": type(tok).__name__,
        "eos_token": tok.eos_token,
        "eos_token_id": tok.eos_token_id,
        "pad_token": tok.pad_token,
        "pad_token_id": tok.pad_token_id,
        "model_max_length": tok.model_max_length,
        "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        "think_is_special": "<think>" in tok.all_special_tokens,
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
