// Byte-level BPE trainer: see bpe_trainer.h.
#include "src/bpe_trainer.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <unordered_map>

#include "src/error.h"
#include "src/pretokenizer.h"

namespace r1kit {
namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Calls on_piece for the text between special tokens (leftmost, then longest, match), so
// that "<think>" never becomes part of a word that merges learn from.
template <class OnPiece>
void cut_special_tokens(std::string_view text, const std::vector<std::string>& specials, const OnPiece& on_piece) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = std::string_view::npos, best_len = 0;
    for (const std::string& s : specials) {
      if (s.empty()) continue;
      const size_t at = text.find(s, pos);
      if (at < best || (at == best && s.size() > best_len)) {
        best = at;
        best_len = s.size();
      }
    }
    if (best == std::string_view::npos) break;
    if (best > pos) on_piece(text.substr(pos, best - pos));
    pos = best + best_len;
  }
  if (pos < text.size()) on_piece(text.substr(pos));
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

// Pair counts with an ordered view: rank.begin() is the pair to merge next.
class PairCounts {
 public:
  void add(uint64_t key, int64_t delta) {
    if (delta == 0) return;
    int64_t& c = counts_[key];
    if (c > 0) rank_.erase({-c, key});
    c += delta;
    if (c > 0) rank_.insert({-c, key});
  }
  bool empty() const { return rank_.empty(); }
  // (count, key) of the most frequent pair; among equal counts the lowest key, i.e. the
  // lowest (left id, right id).
  std::pair<int64_t, uint64_t> top() const { return {-rank_.begin()->first, rank_.begin()->second}; }

 private:
  std::unordered_map<uint64_t, int64_t> counts_;
  std::set<std::pair<int64_t, uint64_t>> rank_;
};

}  // namespace

Tokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& options) {
  const int fixed = 256 + static_cast<int>(options.special_tokens.size());
  if (options.vocab_size < fixed) {
    throw Error("train_bpe: vocab_size " + std::to_string(options.vocab_size) +
                " cannot hold the 256 byte tokens and " + std::to_string(options.special_tokens.size()) +
                " special tokens");
  }
  const Json pre_json = PreTokenizer::preset(options.pre_tokenizer);
  const PreTokenizer pre = PreTokenizer::from_json(pre_json, "train_bpe: pre_tokenizer");

  // 1. Word counts.
  std::unordered_map<std::string, int64_t> counts;
  for (const std::string& text : texts) {
    cut_special_tokens(text, options.special_tokens, [&](std::string_view piece) {
      pre.split(piece, [&](std::string_view w) { ++counts[std::string(w)]; });
    });
  }
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());  // a fixed order: the result must not depend on hashing
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [w, c] : sorted) {
    Word word{{}, c};
    for (const char ch : w) word.symbols.push_back(static_cast<uint8_t>(ch));
    words.push_back(std::move(word));
  }

  // 2. Merges.
  std::vector<std::string> token_bytes(256);
  std::unordered_map<std::string, int32_t> id_of;
  for (int b = 0; b < 256; ++b) {
    token_bytes[b] = std::string(1, static_cast<char>(b));
    id_of[token_bytes[b]] = b;
  }
  PairCounts pairs;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // pair -> words that had it
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      pairs.add(pair_key(s[i], s[i + 1]), words[w].count);
      where[pair_key(s[i], s[i + 1])].push_back(static_cast<int32_t>(w));
    }
  }
  std::vector<std::pair<int32_t, int32_t>> merges;
  const int max_tokens = options.vocab_size - static_cast<int>(options.special_tokens.size());
  while (static_cast<int>(token_bytes.size()) < max_tokens && !pairs.empty()) {
    const auto [count, key] = pairs.top();
    if (count < options.min_frequency) break;
    const auto a = static_cast<int32_t>(key >> 32), b = static_cast<int32_t>(key & 0xFFFFFFFFu);
    const std::string merged = token_bytes[a] + token_bytes[b];
    // Two merge paths can spell the same bytes ("ab"+"c", "a"+"bc"): one token, two merges.
    auto [it, fresh] = id_of.emplace(merged, static_cast<int32_t>(token_bytes.size()));
    if (fresh) token_bytes.push_back(merged);
    const int32_t id = it->second;
    merges.emplace_back(a, b);

    std::vector<int32_t> affected = std::move(where[key]);
    where.erase(key);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    for (const int32_t w : affected) {
      Word& word = words[w];
      auto& s = word.symbols;
      std::vector<int32_t> next;
      next.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(id);
          ++i;
        } else {
          next.push_back(s[i]);
        }
      }
      if (next.size() == s.size()) continue;  // a stale entry: the pair left this word
      // Take the word's pairs out, put the merged word's pairs back.
      for (size_t i = 0; i + 1 < s.size(); ++i) pairs.add(pair_key(s[i], s[i + 1]), -word.count);
      for (size_t i = 0; i + 1 < next.size(); ++i) {
        pairs.add(pair_key(next[i], next[i + 1]), word.count);
        if (next[i] == id || next[i + 1] == id) where[pair_key(next[i], next[i + 1])].push_back(w);
      }
      s = std::move(next);
    }
  }

  // 3. The tokenizer.json it amounts to.
  Json vocab = Json::object();
  for (size_t id = 0; id < token_bytes.size(); ++id) {
    vocab[bytes_to_byte_level(token_bytes[id])] = id;
  }
  Json merge_list = Json::array();
  for (const auto& [a, b] : merges) {
    merge_list.push_back(Json::array({bytes_to_byte_level(token_bytes[a]), bytes_to_byte_level(token_bytes[b])}));
  }
  Json added = Json::array();
  for (size_t k = 0; k < options.special_tokens.size(); ++k) {
    added.push_back(Json{{"id", token_bytes.size() + k},
                         {"content", options.special_tokens[k]},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", !Tokenizer::is_task_tag(options.special_tokens[k])}});
  }
  const Json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added)},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_json},
      {"post_processor",
       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", std::move(vocab)},
        {"merges", std::move(merge_list)}}}};
  return Tokenizer::from_json(root, "train_bpe");
}

}  // namespace r1kit
