// r1kit's one tokenizer: byte-level BPE, read from and written to HF tokenizer.json.
//
// Encodes/decodes exactly as the `tokenizers` library (v0.23) on the same file (GPT-2,
// Qwen2/3, Llama-3, DeepSeek-V3 styles): added tokens cut out first (leftmost-longest), then
// normalizer, pre-tokenizer (pretokenizer.h), BPE merges by rank, post-processor; decode is
// the ByteLevel decoder plus from_utf8_lossy. Not done: offsets, truncation, padding, pairs,
// dropout, non-byte-level models (rejected, naming the key). Deviation: invalid UTF-8 input,
// which the library cannot receive, is encoded byte by byte instead of refused.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/config.h"
#include "src/pretokenizer.h"

namespace r1kit {

// A token field of tokenizer_config.json (eos_token, ...): a string, or an AddedToken object
// {"content": ...}; "" for anything else.
std::string token_content(const Json& value);

class Tokenizer {
 public:
  // A tokenizer.json file, or a directory holding one. Bad input throws r1kit::Error naming
  // the file and the key ("tok.json: model.merges[12] ...").
  static Tokenizer load(const std::string& path);
  // The parsed contents of a tokenizer.json; `file` names it in errors.
  static Tokenizer from_json(const Json& root, const std::string& file);
  // Writes `path` if it ends in ".json", else `path`/tokenizer.json (directories created),
  // atomically. The `tokenizers` library loads it and encodes exactly as this object does.
  void save(const std::string& path) const;
  Json to_json() const;

  // Thread-safe (the word cache takes a lock). With add_special_tokens the post-processor
  // adds its template tokens (Llama-3's BOS); Qwen's has none.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Unknown ids are skipped, as the library does; bytes that do not form UTF-8 become U+FFFD.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  // 1 + the largest id of the model vocab and the added tokens: the rows an embedding table
  // needs. (The library's get_vocab_size() counts entries instead.)
  int32_t vocab_size() const;
  // Added tokens first, then the model vocab (byte-level spelling: " hi" is "Ġhi").
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // "" for an id that no token has.
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  // The raw bytes the ByteLevel decoder makes of one token ("" for an unknown id): a text's
  // tokens' bytes concatenate to the normalized text, which gives each token its byte range
  // (assistant masks).
  std::string_view token_bytes(int32_t id) const;
  // The tokenizer.json normalizer applied to `text` (NFC for Qwen2; the text when none): what
  // a text's tokens' bytes spell.
  std::string normalize(std::string_view text) const;

  // What tokenizer_config.json (or chat_template.jinja) beside tokenizer.json says about chat,
  // read by load() and written back by save_hf_tokenizer: the Jinja chat template ("" none),
  // the file it came from (for errors), and the special tokens transformers passes to the
  // template by name (bos_token, eos_token, unk_token, pad_token).
  struct ChatConfig {
    std::string chat_template;
    std::string source;
    std::vector<std::pair<std::string, std::string>> special_tokens;
  };
  const ChatConfig& chat_config() const { return chat_; }
  void set_chat_config(ChatConfig chat) { chat_ = std::move(chat); }
  // Adds special tokens (not normalized, no strip) as the library does: a token already in the
  // vocab keeps its id and becomes special, a new one gets the next free id. Returns how many
  // were not already there with the same settings.
  int add_special_tokens(const std::vector<std::string>& tokens);

  // R1's reasoning and answer tags: <think>, </think>, <answer>, </answer>. DeepSeek-R1's own
  // tokenizer keeps them as added tokens that are NOT special, so that decoding with
  // skip_special_tokens (TRL, vLLM) keeps them for the rewards that check them.
  static bool is_task_tag(std::string_view content);
  // Marks every task tag among the added tokens non-special (matching is unchanged: added
  // tokens are split out either way). Returns how many changed.
  int unmark_task_tags();

 private:
  // Lets maps keyed by std::string be searched with a string_view, without a copy.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  template <class V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  struct AddedToken {
    std::string content;
    int32_t id = -1;
    bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
  };
  struct Merge {
    int32_t rank;
    int32_t id;  // the merged token
  };
  struct PostItem {
    bool sequence = false;     // the encoded text ("$A")
    std::vector<int32_t> ids;  // otherwise: these special token ids
  };
  struct AddedMatcher;
  struct WordCache;

  Tokenizer();
  int add_token(const AddedToken& token);  // the library's AddedVocabulary::add_tokens
  void refresh();                          // matchers and decode tables after a change
  template <class OnPiece>
  void split_added(const AddedMatcher& m, std::string_view text, std::vector<int32_t>& ids,
                   const OnPiece& on_piece) const;
  void bpe(std::string_view word, std::vector<int32_t>& ids) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  std::optional<int32_t> merge_of(int32_t left, int32_t right, int32_t* rank) const;

  // Model (BPE).
  StringMap<int32_t> vocab_;                             // byte-level spelling -> id
  std::vector<std::string> vocab_r_;                     // id -> spelling ("" where none)
  StringMap<int32_t> vocab_bytes_;                       // raw bytes -> id (ignore_merges)
  std::unordered_map<uint64_t, Merge> merges_;           // (left << 32 | right) -> merge
  std::vector<std::pair<int32_t, int32_t>> merge_list_;  // by rank, for save()
  std::array<int32_t, 256> byte_ids_{};                  // id of each single byte, -1 if none
  std::optional<std::string> unk_token_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;

  // Added vocabulary, in the order tokens were added.
  std::vector<AddedToken> added_;
  StringMap<size_t> added_by_content_;  // -> index in added_
  std::unordered_map<int32_t, size_t> added_by_id_;
  std::shared_ptr<const AddedMatcher> match_raw_, match_normalized_;

  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  std::vector<std::vector<PostItem>> post_templates_;  // applied in order
  Json post_processor_json_, decoder_json_, padding_json_;

  std::vector<std::string> decoded_;  // id -> the bytes the ByteLevel decoder makes of it
  ChatConfig chat_;
  std::vector<uint8_t> known_, special_;
  // Word -> ids. Shared by copies: it depends only on the model, which never changes.
  std::shared_ptr<WordCache> cache_;
};

}  // namespace r1kit
