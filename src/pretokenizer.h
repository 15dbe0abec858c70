// Text before BPE merges: normalize (NFC), split into words (HF pre-tokenizers), as bytes.
//
// Reproduces the `tokenizers` library (v0.23) for tokenizer.json's "normalizer" (NFC,
// Sequence) and "pre_tokenizer" (Split, Digits, ByteLevel, Sequence). The file's regexes are
// Oniguruma syntax; we run them on RE2, rewriting what RE2 reads differently (Onig's \s \d \w
// are Unicode) and emulating `\s+(?!\S)`, the one look-ahead real tokenizers use, by hand.
// Not supported (r1kit::Error naming file and key): other look-arounds, normalizers, types.
// Words come out as raw bytes; the ByteLevel byte->char mapping lives in the vocab lookup.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/config.h"

namespace r1kit {

// GPT-2's bytes_to_unicode: byte b is written as one printable code point in byte-level
// vocabularies (0x20 -> "Ġ", 0x0A -> "Ċ", 'a' -> "a"). Returns that code point as UTF-8.
std::string_view byte_level_char(uint8_t b);
// Raw bytes -> their byte-level spelling ("a b" -> "aĠb").
std::string bytes_to_byte_level(std::string_view bytes);
// Inverse; nullopt when `text` has a code point outside the 256-char alphabet.
std::optional<std::string> byte_level_to_bytes(std::string_view text);

// Bytes in the leading / trailing run of Unicode White_Space chars of `s` (Onig's and Rust
// regex's `\s`), for added tokens with lstrip / rstrip.
size_t leading_white_space(std::string_view s);
size_t trailing_white_space(std::string_view s);
// Whether the first / last char of `s` is a word char (Rust regex's Unicode `\w`), for added
// tokens with single_word. False for an empty `s`.
bool starts_with_word_char(std::string_view s);
bool ends_with_word_char(std::string_view s);

// Appends code point `cp` (<= U+10FFFF) to `out` as UTF-8.
void utf8_append(std::string& out, uint32_t cp);
// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// tokenizer.json "normalizer": null, {"type": "NFC"} or a Sequence of those.
class Normalizer {
 public:
  Normalizer() = default;  // identity
  // `j` is the section's value; `where` names it in errors ("tok.json: normalizer").
  static Normalizer from_json(const Json& j, const std::string& where);
  bool is_identity() const { return !nfc_; }
  // Invalid UTF-8 bytes pass through untouched (the library cannot receive them at all).
  std::string normalize(std::string_view text) const;
  const Json& json() const { return json_; }

 private:
  bool nfc_ = false;
  Json json_;  // as read, written back by Tokenizer::save
};

// Unicode NFC (UAX #15) of UTF-8 text, with tables from Unicode 14 (see pretokenizer.cpp).
std::string nfc_normalize(std::string_view text);

// One Split rule: an Onig regex compiled for RE2 plus the HF split behaviour.
class RegexSplit;

// tokenizer.json "pre_tokenizer".
class PreTokenizer {
 public:
  static PreTokenizer from_json(const Json& j, const std::string& where);
  // The pre_tokenizer section of a known model family: "gpt2", "qwen2" (also Qwen3),
  // "llama3", "deepseek_v3". Throws r1kit::Error listing the names for anything else.
  static Json preset(std::string_view name);

  // Splits `text` (one piece between added tokens, already normalized) into words and calls
  // `emit` for each, in order. A word view is valid only during the call.
  void split(std::string_view text, const std::function<void(std::string_view)>& emit) const;
  std::vector<std::string> split(std::string_view text) const;

  const Json& json() const { return json_; }

 private:
  struct Step {
    bool prefix_space = false;             // ByteLevel add_prefix_space: prepend ' ' if absent
    std::shared_ptr<const RegexSplit> re;  // otherwise: split by this rule
  };
  void run(size_t step, std::string_view piece, const std::function<void(std::string_view)>& emit) const;

  std::vector<Step> steps_;
  Json json_;
};

}  // namespace r1kit
