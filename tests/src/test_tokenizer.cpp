// Tokenizer tests: src/tokenizer.h, src/pretokenizer.h, src/bpe_trainer.h.
//
// Hand-checkable cases (the `\s+(?!\S)` rule, merges by rank, added-token matching, NFC,
// decode of broken UTF-8, errors that name the file and key), then parity with the Hugging
// Face `tokenizers` library: tests/parity/tokenizer_parity.py trains library tokenizers and
// writes the library's answers; r1kit must give the same ids and text for every test string,
// on the library's tokenizer.json files and on the ones r1kit writes (trainer and re-save).
// The parity test fails, never skips, when .venv's python or its `tokenizers` is missing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "src/bpe_trainer.h"
#include "src/config.h"
#include "src/error.h"
#include "src/pretokenizer.h"
#include "src/tokenizer.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> pre_split(const std::string& preset, const std::string& text) {
  return PreTokenizer::from_json(PreTokenizer::preset(preset), "test").split(text);
}

// A tokenizer.json with the 256 byte tokens (id = byte value), then one token per merge.
Json tiny_json(const std::vector<std::pair<std::string, std::string>>& merges, const std::string& preset = "gpt2") {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[std::string(byte_level_char(static_cast<uint8_t>(b)))] = b;
  Json merge_list = Json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = static_cast<int>(vocab.size());
    merge_list.push_back(Json::array({a, b}));
  }
  return Json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", Json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", PreTokenizer::preset(preset)},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
}

// A tiny training corpus: about 36 merges make every word one token.
std::vector<std::string> small_corpus() {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) {
    texts.push_back("the cat sat on the mat " + std::to_string(i * 37) +
                    " <think>why?</think> 猫が座った. Don't stop!\n\n  ");
  }
  return texts;
}

std::vector<int32_t> ids_of(const Tokenizer& t, const std::vector<std::string>& tokens) {
  std::vector<int32_t> ids;
  for (const auto& tok : tokens) {
    const auto id = t.token_to_id(tok);
    EXPECT_TRUE(id.has_value()) << tok;
    ids.push_back(id.value_or(-1));
  }
  return ids;
}

// ---------------------------------------------------------------------------------------
// Byte-level alphabet, UTF-8

TEST(ByteLevel, Gpt2Alphabet) {
  // bytes_to_unicode: printable Latin-1 maps to itself; the rest 256.. in byte order, so
  // ' ' (0x20, the 33rd non-printable) is U+0120 "Ġ", '\n' U+010A "Ċ", 0xAD (the last) U+0143.
  EXPECT_EQ(byte_level_char(' '), "Ġ");
  EXPECT_EQ(byte_level_char('\n'), "Ċ");
  EXPECT_EQ(byte_level_char('a'), "a");
  EXPECT_EQ(byte_level_char(0xAD), "Ń");
  std::set<std::string_view> seen;
  std::string all;
  for (int b = 0; b < 256; ++b) {
    seen.insert(byte_level_char(static_cast<uint8_t>(b)));
    all += static_cast<char>(b);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(byte_level_to_bytes(bytes_to_byte_level(all)), all);
  EXPECT_EQ(bytes_to_byte_level("a b"), "aĠb");
  EXPECT_FALSE(byte_level_to_bytes("a b").has_value());  // ' ' itself is not in the alphabet
}

TEST(ByteLevel, LossyUtf8LikeRust) {
  // One U+FFFD per maximal invalid subpart (Unicode 3.9, as String::from_utf8_lossy).
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy("héllo 😀"), "héllo 😀");
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), r);  // a truncated emoji: one subpart
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"
                       "a"),
            r + "a");
  EXPECT_EQ(utf8_lossy("\xE0\x80\x80"), r + r + r);  // overlong: E0 needs A0..BF next
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);  // a surrogate
  EXPECT_EQ(utf8_lossy("a\x80"
                       "b"),
            "a" + r + "b");
  EXPECT_EQ(utf8_lossy("\xFF\xFE"), r + r);
}

// ---------------------------------------------------------------------------------------
// Pre-tokenizer

TEST(PreTokenizer, TrailingWhitespaceLookahead) {
  // `\s+(?!\S)` takes a space run but its last char, which goes with the next word
  // (` ?\p{L}+` then matches " b"); at the end of the text it takes the whole run.
  EXPECT_EQ(pre_split("gpt2", "a   b"), (std::vector<std::string>{"a", "  ", " b"}));
  EXPECT_EQ(pre_split("gpt2", "a  "), (std::vector<std::string>{"a", "  "}));
  EXPECT_EQ(pre_split("gpt2", "a \n\n  \n"), (std::vector<std::string>{"a", " \n\n  \n"}));
  // "\t b": the run "\t " gives "\t"; a lone "\t" before a letter fails the look-ahead and
  // falls through to the last alternative `\s+`.
  EXPECT_EQ(pre_split("gpt2", "a\t b"), (std::vector<std::string>{"a", "\t", " b"}));
  EXPECT_EQ(pre_split("gpt2", "\ta"), (std::vector<std::string>{"\t", "a"}));
  // NBSP is \s for Onig (not for RE2's own \s): two of them before "b" split one by one.
  EXPECT_EQ(pre_split("gpt2", "a\u00a0\u00a0b"), (std::vector<std::string>{"a", "\u00a0", "\u00a0", "b"}));
  // Qwen2: `\s*[\r\n]+` comes before the look-ahead and wins: "\n\n  \n" stays whole.
  EXPECT_EQ(pre_split("qwen2", "a\n\n  \nb"), (std::vector<std::string>{"a", "\n\n  \n", "b"}));
  EXPECT_EQ(pre_split("qwen2", "x   y  "), (std::vector<std::string>{"x", "  ", " y", "  "}));
}

TEST(PreTokenizer, FamiliesDiffer) {
  // Contractions: GPT-2 is case-sensitive, Qwen2 / Llama-3 use (?i:...).
  EXPECT_EQ(pre_split("gpt2", "I'M"), (std::vector<std::string>{"I", "'", "M"}));
  EXPECT_EQ(pre_split("qwen2", "I'M"), (std::vector<std::string>{"I", "'M"}));
  // Digits: GPT-2 runs, Qwen2 one by one, Llama-3 groups of three.
  EXPECT_EQ(pre_split("gpt2", "x 1234567"), (std::vector<std::string>{"x", " 1234567"}));
  EXPECT_EQ(pre_split("qwen2", "123"), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(pre_split("llama3", "1234567"), (std::vector<std::string>{"123", "456", "7"}));
  // DeepSeek-V3: digits by three, then kana/ideograph runs, then the rest.
  EXPECT_EQ(pre_split("deepseek_v3", "ab12345日本語x"), (std::vector<std::string>{"ab", "123", "45", "日本語", "x"}));
  EXPECT_TRUE(pre_split("qwen2", "").empty());
}

TEST(PreTokenizer, SplitBehaviours) {
  // One Split rule on "a1b22c" (matches "1", "22"), each behaviour by hand.
  auto split = [](const std::string& behavior, bool invert) {
    const Json j = {{"type", "Sequence"},
                    {"pretokenizers",
                     {{{"type", "Split"}, {"pattern", {{"Regex", "\\d+"}}}, {"behavior", behavior}, {"invert", invert}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    return PreTokenizer::from_json(j, "test").split("a1b22c");
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("Isolated", false), (V{"a", "1", "b", "22", "c"}));
  EXPECT_EQ(split("Removed", false), (V{"a", "b", "c"}));
  EXPECT_EQ(split("MergedWithPrevious", false), (V{"a1", "b22", "c"}));
  EXPECT_EQ(split("MergedWithNext", false), (V{"a", "1b", "22c"}));
  EXPECT_EQ(split("Contiguous", false), (V{"a", "1", "b", "22", "c"}));
  EXPECT_EQ(split("Removed", true), (V{"1", "22"}));
}

TEST(PreTokenizer, OnigSyntaxOnRe2) {
  auto split = [](const std::string& regex, const std::string& text) {
    const Json j = {{"type", "Sequence"},
                    {"pretokenizers",
                     {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Removed"}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    return PreTokenizer::from_json(j, "test").split(text);
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("\\p{^L}+", "ab12cd"), (V{"ab", "cd"}));        // \p{^L}: not a letter
  EXPECT_EQ(split("\\d", "a1b\u0663c"), (V{"a", "b", "c"}));      // Onig's \d is Unicode
  EXPECT_EQ(split("\\s", "a\u3000b"), (V{"a", "b"}));             // and so is \s
  EXPECT_EQ(split("^x|x$", "xaxbx\nxc"), (V{"axb", "\n", "c"}));  // Ruby: ^ $ are line anchors
}

TEST(Normalizer, Nfc) {
  EXPECT_EQ(nfc_normalize("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc_normalize("\u212b"), "\u00c5");              // Angstrom sign: a singleton
  EXPECT_EQ(nfc_normalize("a\u0302\u0323"), "\u1ead");       // reordered (220 < 230), composed
  EXPECT_EQ(nfc_normalize("\u1100\u1161\u11a8"), "\uac01");  // Hangul L V T
  EXPECT_EQ(nfc_normalize("\u0958"), "\u0915\u093c");        // composition exclusion
  EXPECT_EQ(nfc_normalize("plain ascii"), "plain ascii");
  EXPECT_EQ(nfc_normalize("bad \xFF byte e\u0301"), "bad \xFF byte \u00e9");
}

// ---------------------------------------------------------------------------------------
// BPE model and added tokens

TEST(Tokenizer, MergesApplyByRank) {
  // "abc" with merges [b c, a b]: rank 0 "bc" first, and then "a"+"bc" has no merge.
  const Tokenizer bc_first = Tokenizer::from_json(tiny_json({{"b", "c"}, {"a", "b"}}), "tiny");
  EXPECT_EQ(bc_first.encode("abc"), ids_of(bc_first, {"a", "bc"}));
  // The same merges in the other order give "ab" + "c".
  const Tokenizer ab_first = Tokenizer::from_json(tiny_json({{"a", "b"}, {"b", "c"}}), "tiny");
  EXPECT_EQ(ab_first.encode("abc"), ids_of(ab_first, {"ab", "c"}));
  // Equal ranks go left to right: "aaa" with [a a] is "aa" + "a".
  const Tokenizer aa = Tokenizer::from_json(tiny_json({{"a", "a"}, {"aa", "aa"}}), "tiny");
  EXPECT_EQ(aa.encode("aaa"), ids_of(aa, {"aa", "a"}));
  EXPECT_EQ(aa.encode("aaaa"), ids_of(aa, {"aaaa"}));
  EXPECT_EQ(aa.encode("aaaaa"), ids_of(aa, {"aaaa", "a"}));
  // Words never merge across a pre-tokenizer boundary: " b" is one word, "a" another.
  const Tokenizer sp = Tokenizer::from_json(tiny_json({{"a", "Ġ"}, {"Ġ", "b"}}), "tiny");
  EXPECT_EQ(sp.encode("a b"), ids_of(sp, {"a", "Ġb"}));
  EXPECT_EQ(sp.decode(sp.encode("a b")), "a b");
}

TEST(Tokenizer, InvalidUtf8IsEncodedAsBytes) {
  // The library only takes valid UTF-8; r1kit encodes stray bytes as their byte tokens.
  for (const std::string preset : {"gpt2", "qwen2", "llama3", "deepseek_v3"}) {
    const Tokenizer t = Tokenizer::from_json(tiny_json({}, preset), "tiny");
    EXPECT_EQ(t.encode("a\xFF b\xC3"), (std::vector<int32_t>{'a', 0xFF, ' ', 'b', 0xC3})) << preset;
    EXPECT_EQ(t.decode(t.encode("a\xFF b")), "a\xEF\xBF\xBD b") << preset;
  }
}

TEST(Tokenizer, IgnoreMergesTakesWholeVocabWords) {
  // "abc" is in the vocab, but no merge chain reaches it ([a b] only): with ignore_merges
  // the word is looked up whole first (Llama-3), without it BPE gives "ab" + "c".
  Json j = tiny_json({{"a", "b"}});
  j["model"]["vocab"]["abc"] = 300;
  EXPECT_EQ(Tokenizer::from_json(j, "tiny").encode("abc"), (std::vector<int32_t>{256, 'c'}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(Tokenizer::from_json(j, "tiny").encode("abc"), (std::vector<int32_t>{300}));
}

TEST(Tokenizer, SpecialTokensMatchFirstLongest) {
  Tokenizer t = Tokenizer::from_json(tiny_json({{"a", "b"}}), "tiny");
  ASSERT_EQ(t.vocab_size(), 257);
  EXPECT_EQ(t.add_special_tokens({"<|endoftext|>", "<x>", "<x>y"}), 3);
  EXPECT_EQ(t.add_special_tokens({"<x>"}), 0);  // already there
  // New ids follow the model vocab in order; a token the model has keeps its id.
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 257);
  EXPECT_EQ(t.token_to_id("<x>y"), 259);
  EXPECT_EQ(t.add_special_tokens({"ab"}), 1);
  EXPECT_EQ(t.token_to_id("ab"), 256);
  EXPECT_TRUE(t.is_special(256));
  EXPECT_EQ(t.vocab_size(), 260);
  // "<x>y" is longer than "<x>" at the same start, so it wins; "<x" alone is plain text.
  EXPECT_EQ(t.encode("q<x>yz<|endoftext|><x"), (std::vector<int32_t>{'q', 259, 'z', 257, '<', 'x'}));
  EXPECT_EQ(t.decode({'q', 259, 'z', 257}), "q<x>yz<|endoftext|>");
  EXPECT_EQ(t.decode({'q', 259, 'z', 257}, /*skip_special_tokens=*/true), "qz");
  EXPECT_EQ(t.id_to_token(259), "<x>y");
  EXPECT_EQ(t.id_to_token(' '), "Ġ");
  EXPECT_EQ(t.id_to_token(9999), "");
  EXPECT_EQ(t.decode({9999, 'a'}), "a");  // unknown ids are skipped
  // Partial UTF-8 decodes to U+FFFD, like the library: "é" is C3 A9.
  EXPECT_EQ(t.decode({0xC3}), "\xEF\xBF\xBD");
  EXPECT_EQ(t.decode({0xC3, 0xA9}), "é");
}

TEST(Tokenizer, BosTemplate) {
  Json j = tiny_json({});
  j["added_tokens"] = Json::array({Json{{"id", 256}, {"content", "<s>"}, {"special", true}, {"normalized", false}}});
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", Json::array()},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {256}}, {"tokens", {"<s>"}}}}}}};
  const Tokenizer t = Tokenizer::from_json(j, "tiny");
  EXPECT_EQ(t.encode("hi", /*add_special_tokens=*/true), (std::vector<int32_t>{256, 'h', 'i'}));
  EXPECT_EQ(t.encode("hi"), (std::vector<int32_t>{'h', 'i'}));
  EXPECT_EQ(t.encode("", true), (std::vector<int32_t>{256}));
}

TEST(Tokenizer, ThreadsShareOneCache) {
  BpeTrainerOptions opt;
  opt.vocab_size = 280;
  const Tokenizer t = train_bpe(small_corpus(), opt);
  const Tokenizer fresh = Tokenizer::from_json(t.to_json(), "copy");  // its own empty cache
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) {
    texts.push_back("word" + std::to_string(i * 7919) + " the mat " + std::to_string(i));
  }
  std::vector<std::thread> threads;
  std::vector<size_t> wrong(4, 0);
  for (size_t k = 0; k < wrong.size(); ++k) {
    threads.emplace_back([&, k] {
      for (const auto& s : texts) wrong[k] += t.encode(s) != fresh.encode(s);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<size_t>(4, 0));
}

// ---------------------------------------------------------------------------------------
// Errors name the file and the key

class TokenizerErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(R1KIT_BINARY_DIR) / "test_tokenizer_errors";
    fs::create_directories(dir_);
  }
  // Writes `j`, loads it, and returns the error message ("" if it loaded).
  std::string load_error(const Json& j) {
    const std::string path = (dir_ / "tokenizer.json").string();
    std::ofstream(path) << j.dump();
    try {
      Tokenizer::load(dir_.string());
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(TokenizerErrors, NameFileAndKey) {
  Json j = tiny_json({{"a", "b"}});
  j["model"]["merges"].push_back(Json::array({"x", "nope"}));
  EXPECT_NE(load_error(j).find("model.merges[1]: \"nope\" is not in model.vocab"), std::string::npos);

  j = tiny_json({});
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_NE(load_error(j).find("pre_tokenizer.type"), std::string::npos);

  j = tiny_json({});
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(?<=a)b"}}}, {"behavior", "Isolated"}};
  EXPECT_NE(load_error(j).find("pre_tokenizer.pattern.Regex"), std::string::npos);

  j = tiny_json({});
  j["normalizer"] = {{"type", "NFKC"}};
  EXPECT_NE(load_error(j).find("normalizer.type"), std::string::npos);

  j = tiny_json({});
  j["model"]["vocab"]["bad"] = "seven";
  EXPECT_NE(load_error(j).find("model.vocab[\"bad\"]"), std::string::npos);

  j = tiny_json({});
  j["surprise"] = 1;
  EXPECT_NE(load_error(j).find("surprise: unknown key"), std::string::npos);

  // One stray huge id asked for a 26 GB table (found by fuzz_tokenizer).
  j = tiny_json({});
  j["model"]["vocab"]["huge"] = 2000000000;
  EXPECT_NE(load_error(j).find("model.vocab: id 2000000000 is far past its"), std::string::npos) << load_error(j);

  j = tiny_json({});
  j["model"]["type"] = "WordPiece";
  EXPECT_NE(load_error(j).find("model.type"), std::string::npos);

  EXPECT_EQ(load_error(tiny_json({})), "");
  EXPECT_THROW(Tokenizer::load((dir_ / "missing.json").string()), Error);
  EXPECT_THROW(PreTokenizer::preset("gpt5"), Error);
}

// ---------------------------------------------------------------------------------------
// Trainer

TEST(BpeTrainer, SmallVocabIsDeterministicAndLossless) {
  BpeTrainerOptions opt;
  opt.vocab_size = 280;  // the corpus has about 36 useful merges: stop before they run out
  opt.special_tokens = {"<|endoftext|>", "<think>", "</think>"};
  const Tokenizer t = train_bpe(small_corpus(), opt);
  EXPECT_EQ(t.vocab_size(), 280);  // 256 bytes + 21 merges + 3 special tokens
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 277);
  EXPECT_TRUE(t.is_special(277));
  EXPECT_FALSE(t.is_special(276));
  // R1's task tags are added tokens but not special (DeepSeek-R1 does the same): decoding with
  // skip_special_tokens keeps them for the rewards.
  EXPECT_EQ(t.token_to_id("</think>"), 279);
  EXPECT_FALSE(t.is_special(279));
  EXPECT_EQ(t.decode(t.encode("<think>ok</think>"), /*skip_special_tokens=*/true), "<think>ok</think>");
  EXPECT_EQ(t.to_json(), train_bpe(small_corpus(), opt).to_json());
  // Frequent words became single tokens; special tokens never took part in merges.
  EXPECT_EQ(t.encode("the").size(), 1u);
  EXPECT_FALSE(t.token_to_id("<think").has_value());
  for (const std::string s : {"the cat sat", "new words: zebra 12345 日本", " x  \n\t y ", "<think>ok</think>"}) {
    EXPECT_EQ(t.decode(t.encode(s)), s);
  }
  // min_frequency: nothing in this corpus occurs 10^6 times, so no merges at all.
  opt.min_frequency = 1000000;
  EXPECT_EQ(train_bpe(small_corpus(), opt).vocab_size(), 259);
  opt.vocab_size = 100;
  EXPECT_THROW(train_bpe(small_corpus(), opt), Error);
}

TEST(BpeTrainer, SaveLoadRoundTrip) {
  BpeTrainerOptions opt;
  opt.vocab_size = 400;
  opt.pre_tokenizer = "llama3";
  opt.special_tokens = {"<|endoftext|>"};
  const Tokenizer t = train_bpe(small_corpus(), opt);
  const fs::path dir = fs::path(R1KIT_BINARY_DIR) / "test_tokenizer_roundtrip";
  fs::create_directories(dir);
  t.save(dir.string());
  const Tokenizer back = Tokenizer::load(dir.string());
  EXPECT_EQ(back.to_json(), t.to_json());
  for (const auto& s : small_corpus()) EXPECT_EQ(back.encode(s), t.encode(s));
}

// ---------------------------------------------------------------------------------------
// Parity with the `tokenizers` library

std::vector<Json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::vector<Json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(Json::parse(line));
  }
  return rows;
}

std::string show(const std::string& s) { return Json(s).dump(-1, ' ', /*ensure_ascii=*/true); }

std::string show(const std::vector<int32_t>& ids) { return Json(ids).dump(); }

int run_command(const std::string& cmd) {
  std::cout << "[parity] " << cmd << std::endl;
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

struct Tally {
  size_t compared = 0, mismatched = 0;
  void check(bool same, const std::string& what) {
    ++compared;
    if (same) return;
    if (++mismatched <= 3) ADD_FAILURE() << what;
  }
};

// Compares r1kit with the library's answers written next to `file`; returns mismatches.
size_t compare_with_library(const std::string& file, const std::vector<std::string>& strings) {
  const std::string dir = fs::path(file).parent_path().string();
  const std::string name = fs::path(dir).filename().string();
  const Tokenizer t = Tokenizer::load(file);
  const std::vector<Json> expected = read_jsonl(dir + "/expected.jsonl");
  EXPECT_EQ(expected.size(), strings.size()) << name;
  Tally enc, dec, cases, vocab;
  for (size_t k = 0; k < std::min(expected.size(), strings.size()); ++k) {
    const std::string& s = strings[k];
    const auto ids = expected[k]["ids"].get<std::vector<int32_t>>();
    const auto got = t.encode(s);
    enc.check(got == ids,
              name + " encode " + show(s) + "\n  r1kit:      " + show(got) + "\n  tokenizers: " + show(ids));
    const auto ids_special = expected[k]["ids_special"].get<std::vector<int32_t>>();
    const auto got_special = t.encode(s, /*add_special_tokens=*/true);
    enc.check(got_special == ids_special, name + " encode+special " + show(s) + "\n  r1kit:      " + show(got_special) +
                                              "\n  tokenizers: " + show(ids_special));
    const auto text = expected[k]["decode"].get<std::string>();
    dec.check(t.decode(ids) == text, name + " decode " + show(ids) + "\n  r1kit:      " + show(t.decode(ids)) +
                                         "\n  tokenizers: " + show(text));
    const auto text_skip = expected[k]["decode_skip"].get<std::string>();
    dec.check(t.decode(ids, true) == text_skip, name + " decode(skip) " + show(ids) + "\n  r1kit:      " +
                                                    show(t.decode(ids, true)) + "\n  tokenizers: " + show(text_skip));
  }
  for (const Json& c : read_jsonl(dir + "/decode_cases.jsonl")) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    cases.check(t.decode(ids) == c["text"].get<std::string>(),
                name + " decode " + show(ids) + "\n  r1kit:      " + show(t.decode(ids)) +
                    "\n  tokenizers: " + show(c["text"].get<std::string>()));
    cases.check(t.decode(ids, true) == c["text_skip"].get<std::string>(),
                name + " decode(skip) " + show(ids) + "\n  r1kit:      " + show(t.decode(ids, true)) +
                    "\n  tokenizers: " + show(c["text_skip"].get<std::string>()));
  }
  const Json info = read_jsonl(dir + "/vocab.json").at(0);
  vocab.check(t.vocab_size() == info["vocab_size"].get<int32_t>(),
              name + " vocab_size " + std::to_string(t.vocab_size()));
  for (auto it = info["token_to_id"].begin(); it != info["token_to_id"].end(); ++it) {
    vocab.check(t.token_to_id(it.key()) == it.value().get<int32_t>(), name + " token_to_id " + show(it.key()));
  }
  const Json& id_to_token = info["id_to_token"];
  for (size_t id = 0; id < id_to_token.size(); ++id) {
    const std::string want = id_to_token[id].is_null() ? "" : id_to_token[id].get<std::string>();
    vocab.check(t.id_to_token(static_cast<int32_t>(id)) == want, name + " id_to_token " + std::to_string(id));
  }
  std::set<int32_t> special;
  for (const Json& id : info["special_ids"]) special.insert(id.get<int32_t>());
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    vocab.check(t.is_special(id) == (special.count(id) > 0), name + " is_special " + std::to_string(id));
  }
  std::cout << "[parity] " << name << ": " << enc.compared / 2 << " strings, encode mismatches " << enc.mismatched
            << ", decode mismatches " << dec.mismatched << ", decode cases " << cases.compared / 2 << " mismatches "
            << cases.mismatched << ", vocab checks " << vocab.compared << " mismatches " << vocab.mismatched
            << std::endl;
  return enc.mismatched + dec.mismatched + cases.mismatched + vocab.mismatched;
}

TEST(TokenizerParity, MatchesHuggingFaceTokenizers) {
  const std::string python = std::string(R1KIT_SOURCE_DIR) + "/.venv/bin/python";
  const std::string script = std::string(R1KIT_SOURCE_DIR) + "/tests/parity/tokenizer_parity.py";
  const fs::path out = fs::path(R1KIT_BINARY_DIR) / "tokenizer_parity";
  fs::remove_all(out);
  fs::create_directories(out);
  ASSERT_TRUE(fs::exists(python)) << python << " is missing: the parity test needs the project's "
                                  << ".venv with the `tokenizers` package (scripts/setup)";
  ASSERT_EQ(run_command("'" + python + "' '" + script + "' '" + out.string() + "'"), 0)
      << "tokenizer_parity.py failed; is `tokenizers` installed in .venv?";

  // r1kit's trainer on the same corpus, one tokenizer per family, and the library's files
  // re-saved by r1kit: the library must encode those as r1kit does.
  std::vector<std::string> corpus;
  for (const Json& row : read_jsonl((out / "corpus.jsonl").string())) corpus.push_back(row["text"]);
  std::vector<std::string> files;
  for (const std::string family : {"gpt2", "qwen2", "llama3", "deepseek_v3"}) {
    BpeTrainerOptions opt;
    opt.vocab_size = 1200;
    opt.pre_tokenizer = family;
    opt.special_tokens = {"<|endoftext|>", "<think>", "</think>"};
    Tokenizer t = train_bpe(corpus, opt);
    if (family == "qwen2") t.add_special_tokens({"<|extra|>", "<think>"});
    const fs::path dir = out / ("r1kit_" + family);
    fs::create_directories(dir);
    t.save(dir.string());
    files.push_back((dir / "tokenizer.json").string());
  }
  std::vector<std::string> library_files;
  for (const auto& entry : fs::directory_iterator(out)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("hf_")) continue;
    library_files.push_back((entry.path() / "tokenizer.json").string());
    const fs::path dir = out / ("resaved_" + name.substr(3));
    fs::create_directories(dir);
    Tokenizer::load(entry.path().string()).save(dir.string());
    files.push_back((dir / "tokenizer.json").string());
  }
  ASSERT_EQ(library_files.size(), 5u);
  std::string cmd = "'" + python + "' '" + script + "' '" + out.string() + "' --encode";
  for (const auto& f : files) cmd += " '" + f + "'";
  ASSERT_EQ(run_command(cmd), 0);

  std::vector<std::string> strings;
  for (const Json& row : read_jsonl((out / "strings.jsonl").string())) {
    strings.push_back(row["text"]);
  }
  ASSERT_GT(strings.size(), 2000u);
  files.insert(files.end(), library_files.begin(), library_files.end());
  size_t mismatches = 0;
  for (const auto& f : files) mismatches += compare_with_library(f, strings);
  std::cout << "[parity] " << files.size() << " tokenizer.json files x " << strings.size() << " strings: " << mismatches
            << " mismatches" << std::endl;
  EXPECT_EQ(mismatches, 0u);

  // Speed: one MB of these strings through the Qwen2-style file, cold and warm cache.
  std::string text;
  for (size_t k = 0; text.size() < (1u << 20); k = (k + 1) % strings.size()) {
    text += strings[k] + " ";
  }
  const Tokenizer qwen = Tokenizer::load((out / "hf_qwen2").string());
  auto seconds = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = qwen.encode(text);
    EXPECT_GT(ids.size(), 0u);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double cold = seconds(), warm = seconds();
  std::cout << "[parity] encode " << text.size() / 1e6 << " MB: " << cold << " s cold cache, " << warm << " s warm"
            << std::endl;
  EXPECT_LT(cold, 2.0) << "encoding 1 MB should take well under a second";
}

}  // namespace
}  // namespace r1kit
