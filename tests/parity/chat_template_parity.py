#!/usr/bin/env python3
"""What transformers' apply_chat_template renders, for r1kit's Jinja chat-template renderer.

    chat_template_parity.py make-model FAMILY OUTDIR
        Builds a small tokenizer directory for a template family: OUTDIR/tokenizer.json (a
        byte-level BPE trained with the `tokenizers` library on a generated corpus, with the
        family's pre-tokenizer style as in tokenizer_parity.py, plus the family's published
        added tokens from tests/fixtures/chat_templates/FAMILY.json with their special flags)
        and OUTDIR/tokenizer_config.json (chat_template = the fixture template, bos/eos/pad,
        tokenizer_class PreTrainedTokenizerFast, model_max_length). AutoTokenizer loads it.
    chat_template_parity.py expect FAMILY MODELDIR CONVERSATIONS.jsonl OUT.jsonl
        For each conversation row (see chat_conversations.py) and add_generation_prompt in
        (false, true), writes {"index", "add_generation_prompt", "text", "input_ids", "family"}
        with text = apply_chat_template(..., tokenize=False) and input_ids from
        apply_chat_template(..., tokenize=True) (a BatchEncoding in transformers 5: its
        input_ids). Checks input_ids == tokenizer(text, add_special_tokens=False).input_ids.
        A render that raises gives {"index", "add_generation_prompt", "error"}. Exits 1 when a
        render raises for a row not marked "expect_error", or when the ids disagree.
    chat_template_parity.py compare EXPECTED.jsonl ACTUAL_FALSE.jsonl ACTUAL_TRUE.jsonl
        ACTUAL_*: `r1kit tokenize --chat` of CONVERSATIONS.jsonl without and with
        --add-generation-prompt: rows {..., "text", "input_ids"} in the conversations' order.
        Prints each mismatch (first differing character with context, repr) and a summary
        line "FAMILY: N conversations x 2, M mismatches"; exits 1 on any mismatch.

    chat_template_parity.py masks MODELDIR TEMPLATE CONVERSATIONS.jsonl OUT_MODELDIR OUT.jsonl
        OUT_MODELDIR: MODELDIR with TEMPLATE (e.g. TRL's qwen2_5_training.jinja, with
        {% generation %} blocks) as its chat template; OUT: per conversation the input_ids and
        assistant_masks of apply_chat_template(return_assistant_tokens_mask=True), what TRL's
        assistant_only_loss trains on.
    chat_template_parity.py compare-masks EXPECTED.jsonl ACTUAL.jsonl
        ACTUAL: `r1kit tokenize --chat --assistant-masks` of the same conversations.

Exits 3 when `tokenizers`, `transformers` or `jinja2` is missing.
"""
import copy
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures", "chat_templates"))
sys.path.insert(0, HERE)

import chat_conversations  # noqa: E402

# Pre-tokenizer style of the family's real tokenizer.json (names as in tokenizer_parity.py).
STYLE = {
    "qwen2_5_instruct": "qwen2",
    "qwen3": "qwen2",
    "deepseek_r1_distill_qwen": "qwen2",  # a Qwen2.5 tokenizer with DeepSeek's added tokens
    "llama3_1_instruct": "llama3",
    "deepseek_r1": "deepseek_v3",
    "deepseek_v3": "deepseek_v3",
}
VOCAB_SIZE = 2000


def fixture(family):
    with open(os.path.join(FIXTURES, family + ".jinja"), encoding="utf-8", newline="") as f:
        template = f.read()
    with open(os.path.join(FIXTURES, family + ".json"), encoding="utf-8") as f:
        facts = json.load(f)
    return template, facts


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]

# ------------------------------------------------------------------------------------------
# make-model


def training_lines(family, template):
    import tokenizer_parity
    lines = tokenizer_parity.corpus()
    # Text the template itself emits, so merges cover it as they would in a real vocabulary.
    for m in re.finditer(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", template):
        s = (m.group(1) or m.group(2) or "").replace("\\n", "\n")
        if s:
            lines += [s] * 3
    for r in chat_conversations.conversations(family):
        for msg in r["messages"]:
            c = msg.get("content")
            if isinstance(c, str) and c:
                lines.append(c)
            elif c is not None:
                lines.append(json.dumps(c, ensure_ascii=False))
            for tc in msg.get("tool_calls", []):
                lines.append(json.dumps(tc, ensure_ascii=False))
        for t in r.get("tools") or []:
            lines.append(json.dumps(t, ensure_ascii=False))
            lines.append(json.dumps(t, ensure_ascii=False, indent=4))
    return lines


def build_tokenizer(family, facts, lines):
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors, trainers)
    import tokenizer_parity as tp

    def split(regex):
        return pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False)

    style = STYLE[family]
    tokens = facts["special_tokens"]
    specials = [t["content"] for t in tokens if t["special"]]
    tok = Tokenizer(models.BPE())
    if style == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([split(tp.QWEN2), pre_tokenizers.ByteLevel(
            add_prefix_space=False, use_regex=False)])
    elif style == "llama3":
        tok.pre_tokenizer = pre_tokenizers.Sequence([split(tp.LLAMA3), pre_tokenizers.ByteLevel(
            add_prefix_space=False, use_regex=False)])
    else:
        tok.normalizer = normalizers.Sequence([])
        tok.pre_tokenizer = pre_tokenizers.Sequence([split(r) for r in tp.DEEPSEEK_V3] + [
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=[],
                                  show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer=trainer)
    # The family's added tokens in published order, with their published flags.
    for t in tokens:
        added = AddedToken(t["content"], special=t["special"], normalized=t.get("normalized", False),
                           lstrip=False, rstrip=False, single_word=False)
        if t["special"]:
            tok.add_special_tokens([added])
        else:
            tok.add_tokens([added])
    bos = facts.get("bos_token")
    if style == "qwen2":
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                                  use_regex=False)
    elif bos:
        bos_id = tok.token_to_id(bos)
        template = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                 special_tokens=[(bos, bos_id)])
        tok.post_processor = (processors.Sequence([processors.ByteLevel(trim_offsets=False), template])
                              if style == "llama3" else template)
    j = json.loads(tok.to_str())
    if style == "llama3":
        # As in tokenizer_parity.py: some vocab entries unreachable by merges, ignore_merges on.
        j["model"]["ignore_merges"] = True
        j["model"]["merges"] = [m for k, m in enumerate(j["model"]["merges"]) if k % 5 != 4]
    assert specials == [t for t in specials if tok.token_to_id(t) is not None]
    return j


def make_model(family, out_dir):
    from tokenizers import Tokenizer
    template, facts = fixture(family)
    os.makedirs(out_dir, exist_ok=True)
    j = build_tokenizer(family, facts, training_lines(family, template))
    path = os.path.join(out_dir, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
    Tokenizer.from_file(path)  # the edited JSON must still load
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": facts.get("bos_token"),
        "eos_token": facts.get("eos_token"),
        "pad_token": facts.get("pad_token"),
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "model_max_length": facts.get("model_max_length", 131072),
        "chat_template": template,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
    # It must load with transformers and carry the template unchanged.
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(out_dir)
    problems = []
    if tok.chat_template != template:
        problems.append("chat_template differs after loading")
    for key in ("bos_token", "eos_token", "pad_token"):
        if getattr(tok, key) != facts.get(key):
            problems.append(f"{key}: {getattr(tok, key)!r} != {facts.get(key)!r}")
    for t in facts["special_tokens"]:
        ids = tok(t["content"], add_special_tokens=False).input_ids
        if len(ids) != 1:
            problems.append(f"added token {t['content']!r} encodes to {ids}")
    for p in problems:
        print(f"make-model {family}: {p}", file=sys.stderr)
    print(f"make-model {family}: {type(tok).__name__}, vocab {len(tok)}, -> {out_dir}", file=sys.stderr)
    return 1 if problems else 0

# ------------------------------------------------------------------------------------------
# expect


def render(tok, row, add_generation_prompt, tokenize):
    kwargs = dict(row.get("chat_template_kwargs") or {})
    out = tok.apply_chat_template(copy.deepcopy(row["messages"]), tools=copy.deepcopy(row.get("tools")),
                                  add_generation_prompt=add_generation_prompt, tokenize=tokenize,
                                  **kwargs)
    if tokenize and not isinstance(out, list):
        out = out["input_ids"]  # transformers 5 returns a BatchEncoding by default
    return out


def expect(family, model_dir, conversations_path, out_path):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    template, _ = fixture(family)
    if tok.chat_template != template:
        print(f"expect {family}: {model_dir} does not carry the fixture template", file=sys.stderr)
        return 1
    rows = read_jsonl(conversations_path)
    n_err = n_unexpected = n_mismatch = 0
    with open(out_path, "w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            for agp in (False, True):
                rec = {"index": i, "add_generation_prompt": agp}
                try:
                    text = render(tok, row, agp, tokenize=False)
                    ids = list(render(tok, row, agp, tokenize=True))
                except Exception as e:  # noqa: BLE001 - any render failure is data here
                    rec["error"] = f"{type(e).__name__}: {e}"
                    n_err += 1
                    if not row.get("expect_error"):
                        n_unexpected += 1
                        print(f"expect {family}: row {i} agp={agp} raised {rec['error']}", file=sys.stderr)
                else:
                    rec["text"] = text
                    rec["input_ids"] = ids
                    again = tok(text, add_special_tokens=False).input_ids
                    if again != ids:
                        rec["retokenize_mismatch"] = True
                        n_mismatch += 1
                        print(f"expect {family}: row {i} agp={agp}: apply_chat_template ids differ from "
                              f"tokenizer(text, add_special_tokens=False)", file=sys.stderr)
                    if row.get("expect_error"):
                        n_unexpected += 1
                        print(f"expect {family}: row {i} agp={agp} marked expect_error but rendered",
                              file=sys.stderr)
                rec["family"] = family
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"{family}: {len(rows)} conversations x 2, {n_err} errors ({n_unexpected} unexpected), "
          f"{n_mismatch} id mismatches")
    return 1 if (n_unexpected or n_mismatch) else 0

# ------------------------------------------------------------------------------------------
# masks: TRL's assistant-only loss mask


def masks(model_dir, template_path, conversations_path, out_model_dir, out_path):
    """OUT_MODELDIR = MODELDIR with TEMPLATE as its chat template (TRL's training templates
    carry {% generation %} blocks); OUT rows {"input_ids", "assistant_masks"} as transformers'
    apply_chat_template(..., return_assistant_tokens_mask=True) gives them, which is what TRL's
    SFTTrainer(assistant_only_loss=True) trains on."""
    import shutil
    from transformers import AutoTokenizer
    with open(template_path, encoding="utf-8") as f:
        template = f.read()
    os.makedirs(out_model_dir, exist_ok=True)
    shutil.copy(os.path.join(model_dir, "tokenizer.json"), out_model_dir)
    with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    config["chat_template"] = template
    with open(os.path.join(out_model_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
    tok = AutoTokenizer.from_pretrained(out_model_dir)
    n = 0
    with open(out_path, "w", encoding="utf-8") as f:
        for row in read_jsonl(conversations_path):
            out = tok.apply_chat_template(copy.deepcopy(row["messages"]), tools=copy.deepcopy(row.get("tools")),
                                          tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                          **dict(row.get("chat_template_kwargs") or {}))
            f.write(json.dumps({"input_ids": list(out["input_ids"]),
                                "assistant_masks": list(out["assistant_masks"])}) + "\n")
            n += 1
    print(f"masks: {n} conversations -> {out_path}", file=sys.stderr)
    return 0


def compare_masks(expected_path, actual_path):
    expected, actual = read_jsonl(expected_path), read_jsonl(actual_path)
    bad = 0
    assistant_tokens = 0
    for i, (e, a) in enumerate(zip(expected, actual)):
        assistant_tokens += sum(e["assistant_masks"])
        if e["input_ids"] != a.get("input_ids"):
            bad += 1
            print(f"row {i}: input_ids differ: " + describe_ids_diff(e["input_ids"], a.get("input_ids") or []))
        elif e["assistant_masks"] != a.get("assistant_masks"):
            bad += 1
            print(f"row {i}: assistant_masks differ: " +
                  describe_ids_diff(e["assistant_masks"], a.get("assistant_masks") or []))
    if len(expected) != len(actual):
        bad += 1
        print(f"{len(expected)} expected rows, {len(actual)} actual")
    print(f"assistant masks: {len(expected)} conversations, {assistant_tokens} assistant tokens, {bad} mismatches")
    return 1 if bad else 0

# ------------------------------------------------------------------------------------------
# compare


def first_diff(a, b):
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n if len(a) != len(b) else -1


def describe_text_diff(exp, act, context=40):
    k = first_diff(exp, act)
    lo = max(0, k - context)
    return (f"first difference at char {k} (expected len {len(exp)}, actual len {len(act)})\n"
            f"      expected: {exp[lo:k + context]!r}\n"
            f"      actual:   {act[lo:k + context]!r}\n"
            f"      expected char: {exp[k:k + 1]!r}  actual char: {act[k:k + 1]!r}")


def describe_ids_diff(exp, act, context=5):
    k = first_diff(exp, act)
    lo = max(0, k - context)
    return (f"first id difference at {k} (expected {len(exp)} ids, actual {len(act)})\n"
            f"      expected: {exp[lo:k + context]}\n      actual:   {act[lo:k + context]}")


def compare(expected_path, actual_paths):
    expected = read_jsonl(expected_path)
    actual = {}
    # `r1kit tokenize --chat` output, one file per add_generation_prompt value (false, true):
    # its rows follow the conversations file, so a row's index is its position.
    for add_generation_prompt, path in zip((False, True), actual_paths):
        for index, r in enumerate(read_jsonl(path)):
            actual[(index, add_generation_prompt)] = r
    family = next((r["family"] for r in expected if "family" in r),
                  os.path.splitext(os.path.basename(expected_path))[0])
    mismatches = 0
    for e in expected:
        key = (int(e["index"]), bool(e["add_generation_prompt"]))
        where = f"row {key[0]} add_generation_prompt={str(key[1]).lower()}"
        a = actual.get(key)
        problem = None
        if a is None:
            problem = "missing from the actual output"
        elif "error" in e:
            if "error" not in a:
                problem = f"transformers raised ({e['error']}) but r1kit rendered {a.get('text', '')[:80]!r}"
        elif "error" in a:
            problem = f"r1kit raised: {a['error']}"
        elif a.get("text") != e["text"]:
            problem = "text differs: " + describe_text_diff(e["text"], a.get("text") or "")
        elif list(a.get("input_ids") or []) != e["input_ids"]:
            problem = "input_ids differ: " + describe_ids_diff(e["input_ids"], list(a.get("input_ids") or []))
        if problem:
            mismatches += 1
            print(f"{family} {where}: {problem}")
    n = len({int(e["index"]) for e in expected})
    extra = set(actual) - {(int(e["index"]), bool(e["add_generation_prompt"])) for e in expected}
    if extra:
        print(f"{family}: {len(extra)} actual rows have no expected row")
    print(f"{family}: {n} conversations x 2, {mismatches} mismatches")
    return 1 if mismatches else 0


def main(argv):
    args = argv[1:]
    try:
        if args and args[0] in ("make-model", "expect"):
            import jinja2  # noqa: F401
            import tokenizers  # noqa: F401
            import transformers  # noqa: F401
    except ImportError as e:
        print(f"chat_template_parity.py: a required package is missing ({e})", file=sys.stderr)
        return 3
    if len(args) == 3 and args[0] == "make-model":
        return make_model(args[1], args[2])
    if len(args) == 5 and args[0] == "expect":
        return expect(args[1], args[2], args[3], args[4])
    if len(args) == 6 and args[0] == "masks":
        return masks(*args[1:])
    if len(args) == 3 and args[0] == "compare-masks":
        return compare_masks(args[1], args[2])
    if len(args) == 4 and args[0] == "compare":
        return compare(args[1], args[2:4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
