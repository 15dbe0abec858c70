#!/usr/bin/env python3
"""What the Hugging Face `tokenizers` library does, for tests/src/test_tokenizer.cpp.

    tokenizer_parity.py OUT
        Trains byte-level BPE tokenizers with the library on a generated corpus, one per
        pre-tokenizer family (gpt2, gpt2 with add_prefix_space + legacy "a b" merges, qwen2
        with NFC, llama3 with ignore_merges + BOS template, deepseek_v3), into
        OUT/hf_<name>/tokenizer.json; writes OUT/corpus.jsonl (for r1kit's own trainer),
        OUT/strings.jsonl (the test strings) and the library's answers for each tokenizer.
    tokenizer_parity.py OUT --encode DIR/tokenizer.json ...
        Only the library's answers, for tokenizer.json files r1kit wrote.
    tokenizer_parity.py --nfc-tables
        Prints the NFC tables embedded in src/pretokenizer.cpp (from Python's unicodedata).

Answers, next to each tokenizer.json: expected.jsonl (per string: ids without and with
special tokens, decode, decode skipping special tokens), decode_cases.jsonl (random id lists,
broken UTF-8 and unknown ids included, and their decodes) and vocab.json (token_to_id,
id_to_token, special ids). Exits non-zero when `tokenizers` is missing: the C++ test fails.
"""
import json
import os
import random
import sys

# ------------------------------------------------------------------------------------------
# Test strings and training corpus

WORDS = (
    "the quick brown fox jumps over a lazy dog hello world token tokenizer reinforcement "
    "learning policy gradient reward model think answer solve equation therefore because "
    "group relative advantage sample rollout prompt completion value function ratio clip "
    "Paris London Tokyo Python Rust return import class def while for if else"
).split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M",
                "'LL", "'D", "'x", "’s"]
UNICODE = [
    "你好", "世界", "中文分词测试", "日本語のテキスト", "カタカナ", "ひらがな", "한국어", "안녕하세요",
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🤖🧠", "café", "naïve", "résumé", "Ångström", "Zürich",
    "e\u0301", "A\u030a", "\u212b", "\u2126", "\u0958", "a\u0323\u0302", "a\u0302\u0323",
    "\u1100\u1161\u11a8", "\u1100\u1161", "\uac00\u11a8", "o\u0308\u0304", "\u0344", "\u1e0b\u0323",
    "Привет мир", "Ελληνικά", "שָׁלוֹם", "مرحبا بالعالم", "हिन्दी", "क़", "ไทย", "ß", "ſ", "\u212a",
    "ﬁ", "①②③", "Ⅻ", "１２３", "٣٤٥", "½", "²", "∑", "∫", "→", "©", "™", "…", "—", "«»", "¿¡",
    "\u00a0", "\u3000", "\u2009", "\u200b", "\ufeff", "\u0085", "\u2028", "\u1680", "\u180e",
    "\x0b", "\x0c", "\x1c", "\x1f", "\x00", "\x7f", "\u00ad", "\ud7a3", "\U0001d400", "\U00010348",
]
SPECIALS = ["<|endoftext|>", "<think>", "</think>", "<|im_start|>", "<|im_end|>",
            "<|begin_of_text|>", "<|eot_id|>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
            "<|extra|>", "<mask>", "<sw>", "<think", "</think", "<|endoftext", "<|", "|>", "<>"]
SPACES = [" ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n  \n", "\n\n  \n",
          "\t\t", " \t ", "    ", "\u00a0", "\u3000", "\x0b", ""]
PUNCT = list(".,;:!?()[]{}<>\"'`~@#$%^&*-_=+/\\|") + ["...", "!!", "?!", "->", "=>", "::", "//"]
CHAR_RANGES = [(0x20, 0x7e), (0xa0, 0xff), (0x100, 0x17f), (0x300, 0x36f), (0x370, 0x3ff),
               (0x400, 0x4ff), (0x590, 0x5ff), (0x600, 0x6ff), (0x900, 0x97f), (0xe00, 0xe7f),
               (0x1100, 0x11ff), (0x2000, 0x206f), (0x3000, 0x30ff), (0x4e00, 0x4fff),
               (0xac00, 0xad00), (0xff00, 0xffef), (0x1f300, 0x1f64f), (0x9, 0xd)]
FIXED = [
    "", " ", "  ", "a", "a   b", "a  ", "a ", "  a", " a", "\n\n  \n", "\n", "\t", "\r\n",
    "Hello world", "Hello  world  ", "I'M here, you're THERE, they'LL see; it's OK'D",
    "don't DON'T Don'T we've WE'VE i'd", "<think>\nreasoning here\n</think>\n\nThe answer is 42.",
    "x<|endoftext|>y", "<|endoftext|><|endoftext|>", "<|endoftext|>", " <|endoftext|> ",
    "a<think>b</think>c", "<think></think>", "<thinking>", "<|im_start|>user\nhi<|im_end|>\n",
    "12345678901234567890123456789", "3.14159265358979", "1,234,567.89", "-0.5e-10", "x=1+2*3",
    "   \t\n", "trailing   ", "\ttab\tseparated\tvalues\t", "line1\nline2\r\nline3\n\n",
    "    def f(x):\n        return x ** 2\n", "$\\frac{1}{2} + \\sqrt{x^2}$", "a\u00a0b", "a \u00a0 b",
    "a\u3000b", "日本語 English 中文 123", "😀😀😀", "👨‍👩‍👧‍👦 family", "e\u0301e\u0301", "Å Å Å",
    "<mask>", "a <mask> b", "a  <mask>  b", "x<mask>y", "<sw>", "a <sw> b", "a<sw>b", "<sw>x",
    "<|extra|>", "<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>", "<|begin_of_text|>hi<|eot_id|>",
]


def random_piece(rng):
    kind = rng.random()
    if kind < 0.30:
        w = rng.choice(WORDS)
        r = rng.random()
        if r < 0.15:
            w = w.upper()
        elif r < 0.3:
            w = w.capitalize()
        return w
    if kind < 0.38:
        return rng.choice(WORDS) + rng.choice(CONTRACTIONS)
    if kind < 0.55:
        return rng.choice(UNICODE)
    if kind < 0.65:
        n = rng.randint(1, 40)
        digits = "".join(rng.choice("0123456789") for _ in range(n))
        r = rng.random()
        if r < 0.2:
            return digits[: max(1, n // 2)] + "." + digits[n // 2:]
        if r < 0.3:
            return "{:,}".format(int(digits))
        return digits
    if kind < 0.75:
        return rng.choice(PUNCT)
    if kind < 0.82:
        return rng.choice(SPECIALS)
    if kind < 0.90:
        return rng.choice(SPACES)
    lo, hi = rng.choice(CHAR_RANGES)
    return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6)))


def random_text(rng, max_pieces):
    out = []
    for _ in range(rng.randint(1, max_pieces)):
        out.append(random_piece(rng))
        out.append(rng.choice(SPACES) if rng.random() < 0.7 else "")
    if rng.random() < 0.2:
        out.append(rng.choice(SPACES))
    return "".join(out)


def test_strings():
    rng = random.Random(20250217)
    strings = list(FIXED)
    strings += [chr(b) for b in range(256)]  # every Latin-1 char alone
    strings += [" " * n + "x" for n in range(1, 6)] + ["x" + " " * n for n in range(1, 6)]
    strings += [random_text(rng, 12) for _ in range(2400)]
    strings += [random_text(rng, 80) for _ in range(100)]
    return strings


def corpus():
    rng = random.Random(7)
    lines = [random_text(rng, 30) for _ in range(3000)]
    lines += [" ".join(rng.choice(WORDS) for _ in range(20)) for _ in range(1000)]
    return lines

# ------------------------------------------------------------------------------------------
# Library tokenizers


QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
          r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEEPSEEK_V3 = [
    r"\p{N}{1,3}",
    "[一-龥\u3040-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
]


def train_library_tokenizers(out_dir, lines):
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors, trainers)

    def split(regex):
        return pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False)

    def train(pre, specials, vocab_size, normalizer=None):
        tok = Tokenizer(models.BPE())
        if normalizer is not None:
            tok.normalizer = normalizer
        tok.pre_tokenizer = pre
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2,
                                      special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(lines, trainer=trainer)
        return tok

    def think(tok, special):
        tok.add_tokens([AddedToken("<think>", special=special, normalized=False),
                        AddedToken("</think>", special=special, normalized=False)])

    def bos_template(tok, bos):
        bos_id = tok.token_to_id(bos)
        return processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                             special_tokens=[(bos, bos_id)])

    made = {}
    tok = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                ["<|endoftext|>"], 1200)
    think(tok, special=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    made["gpt2"] = json.loads(tok.to_str())

    # add_prefix_space, lstrip/rstrip and single_word added tokens, legacy "a b" merges.
    tok = train(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
                ["<|endoftext|>"], 900)
    tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, rstrip=True,
                                       normalized=False)])
    tok.add_tokens([AddedToken("<sw>", special=False, single_word=True, normalized=True)])
    j = json.loads(tok.to_str())
    j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
    made["gpt2_prefix"] = j

    tok = train(pre_tokenizers.Sequence([split(QWEN2), pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=False)]),
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 1500, normalizer=normalizers.NFC())
    think(tok, special=False)  # Qwen3: <think> is an added token, not a special one
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                              use_regex=False)
    made["qwen2"] = json.loads(tok.to_str())

    tok = train(pre_tokenizers.Sequence([split(LLAMA3), pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=False)]),
        ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], 1500)
    think(tok, special=True)
    tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                              bos_template(tok, "<|begin_of_text|>")])
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    # Drop every 5th merge: the tokens stay in the vocab but merges can no longer reach them,
    # as in real Llama-3 files, so ignore_merges (whole-word lookup first) changes results.
    j["model"]["merges"] = [m for k, m in enumerate(j["model"]["merges"]) if k % 5 != 4]
    made["llama3"] = j

    tok = train(pre_tokenizers.Sequence([split(r) for r in DEEPSEEK_V3] + [
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"], 1500,
        normalizer=normalizers.Sequence([]))
    think(tok, special=False)
    tok.post_processor = bos_template(tok, "<｜begin▁of▁sentence｜>")
    made["deepseek_v3"] = json.loads(tok.to_str())

    paths = []
    for name, j in made.items():
        d = os.path.join(out_dir, "hf_" + name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "tokenizer.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, indent=1)
        Tokenizer.from_file(path)  # the edited JSON must still load
        paths.append(path)
    return paths


def write_expectations(path, strings):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(path)
    d = os.path.dirname(path)
    with open(os.path.join(d, "expected.jsonl"), "w", encoding="utf-8") as f:
        for s in strings:
            ids = tok.encode(s, add_special_tokens=False).ids
            row = {
                "ids": ids,
                "ids_special": tok.encode(s, add_special_tokens=True).ids,
                "decode": tok.decode(ids, skip_special_tokens=False),
                "decode_skip": tok.decode(ids, skip_special_tokens=True),
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    vocab = tok.get_vocab(with_added_tokens=True)
    size = max(vocab.values()) + 1
    rng = random.Random(size)
    with open(os.path.join(d, "decode_cases.jsonl"), "w", encoding="utf-8") as f:
        for k in range(400):
            hi = size + 3 if k % 10 == 0 else size - 1  # now and then ids nobody knows
            ids = [rng.randint(0, hi) for _ in range(rng.randint(1, 12))]
            row = {"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                   "text_skip": tok.decode(ids, skip_special_tokens=True)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    added = tok.get_added_tokens_decoder()
    info = {
        "vocab_size": size,
        "token_to_id": vocab,
        "id_to_token": [tok.id_to_token(i) for i in range(size + 2)],
        "special_ids": sorted(i for i, t in added.items() if t.special),
    }
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False)

# ------------------------------------------------------------------------------------------
# NFC tables for src/pretokenizer.cpp


NFC_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"


def varint(n):
    """A number in 5-bit letters, most significant first; only the last is from NFC_DIGITS[:32]."""
    parts = []
    while True:
        parts.append(n & 31)
        n >>= 5
        if n == 0:
            break
    parts.reverse()
    return "".join(NFC_DIGITS[32 + p] for p in parts[:-1]) + NFC_DIGITS[parts[-1]]


def zigzag(n):
    return 2 * n if n >= 0 else -2 * n - 1


def nfc_tables():
    import unicodedata as ud
    dec, prev_cp, prev_first, prev_second = [], 0, 0, 0
    for cp in range(0x110000):
        if 0xAC00 <= cp <= 0xD7A3:  # Hangul syllables decompose algorithmically
            continue
        d = ud.decomposition(chr(cp))
        if not d or d.startswith("<"):  # none, or a compatibility decomposition
            continue
        parts = [int(x, 16) for x in d.split()]
        excluded = ud.normalize("NFC", chr(cp)) != chr(cp)  # never produced by composition
        dec.append(varint((cp - prev_cp) * 2 + excluded) + varint(zigzag(parts[0] - prev_first)))
        prev_cp, prev_first = cp, parts[0]
        if len(parts) == 1:
            dec.append(varint(0))
        else:
            dec.append(varint(zigzag(parts[1] - prev_second) + 1))
            prev_second = parts[1]
    ccc, prev_end, cp = [], 0, 0
    while cp < 0x110000:
        c = ud.combining(chr(cp))
        if not c:
            cp += 1
            continue
        end = cp
        while end + 1 < 0x110000 and ud.combining(chr(end + 1)) == c:
            end += 1
        ccc.append(varint(cp - prev_end) + varint(end - cp) + varint(c))
        prev_end, cp = end, end + 1

    def literal(name, s):
        lines = [s[i:i + 92] for i in range(0, len(s), 92)]
        return f"constexpr char {name}[] =\n" + "\n".join(f'    "{x}"' for x in lines) + ";"
    print(f"// Unicode {ud.unidata_version}")
    print(literal("kNfcDecompositions", "".join(dec)))
    print(literal("kNfcCombiningClasses", "".join(ccc)))


def main(argv):
    if argv[1:] == ["--nfc-tables"]:
        nfc_tables()
        return 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import tokenizers
    except ImportError as e:
        print(f"tokenizer_parity.py: the `tokenizers` package is missing ({e})", file=sys.stderr)
        return 3
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    strings_path = os.path.join(out_dir, "strings.jsonl")
    if len(argv) > 2 and argv[2] == "--encode":
        with open(strings_path, encoding="utf-8") as f:
            strings = [json.loads(line)["text"] for line in f]
        for path in argv[3:]:
            write_expectations(path, strings)
        return 0
    strings = test_strings()
    with open(strings_path, "w", encoding="utf-8") as f:
        for s in strings:
            f.write(json.dumps({"text": s}, ensure_ascii=False) + "\n")
    lines = corpus()
    with open(os.path.join(out_dir, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for s in lines:
            f.write(json.dumps({"text": s}, ensure_ascii=False) + "\n")
    for path in train_library_tokenizers(out_dir, lines):
        write_expectations(path, strings)
    print(f"tokenizers {tokenizers.__version__}: {len(strings)} strings", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
