// Byte-level BPE tokenizer: see tokenizer.h.
//
// Reference: huggingface/tokenizers v0.23, tokenizer/added_vocabulary.rs (added-token split,
// id assignment), models/bpe/word.rs (merge order), decoders/byte_level.rs,
// processors/template.rs, tokenizer/serialization.rs (how a file's added tokens get ids).
#include "src/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <queue>
#include <shared_mutex>

#include "src/atomic_file.h"
#include "src/error.h"
#include "src/files.h"

namespace r1kit {

// ---------------------------------------------------------------------------------------
// Added-token matching: a byte trie searched leftmost-longest, like the library's
// aho-corasick automaton with MatchKind::LeftmostLongest.

struct Tokenizer::AddedMatcher {
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // byte -> child node
    int32_t token = -1;                             // index into added_ when a token ends here
  };
  std::vector<Node> nodes{Node{}};
  std::array<bool, 256> first{};  // bytes that can start a token: a cheap pre-filter

  void add(std::string_view content, int32_t token) {
    if (content.empty()) return;
    first[static_cast<uint8_t>(content[0])] = true;
    int32_t at = 0;
    for (const char ch : content) {
      const auto b = static_cast<uint8_t>(ch);
      int32_t child = -1;
      for (const auto& [byte, node] : nodes[at].next) {
        if (byte == b) child = node;
      }
      if (child < 0) {
        child = static_cast<int32_t>(nodes.size());
        nodes[at].next.emplace_back(b, child);
        nodes.emplace_back();
      }
      at = child;
    }
    nodes[at].token = token;
  }

  // The longest token that starts at s[i]: its length (0 if none) and index.
  size_t longest_at(std::string_view s, size_t i, int32_t* token) const {
    size_t best = 0;
    int32_t at = 0;
    for (size_t k = i; k < s.size(); ++k) {
      const auto b = static_cast<uint8_t>(s[k]);
      int32_t child = -1;
      for (const auto& [byte, node] : nodes[at].next) {
        if (byte == b) child = node;
      }
      if (child < 0) break;
      at = child;
      if (nodes[at].token >= 0) {
        best = k + 1 - i;
        *token = nodes[at].token;
      }
    }
    return best;
  }

  // Leftmost-longest match in s[from..]: true with [*begin, *end) and the token index.
  bool find(std::string_view s, size_t from, size_t* begin, size_t* end, int32_t* token) const {
    if (nodes[0].next.empty()) return false;
    for (size_t i = from; i < s.size(); ++i) {
      if (!first[static_cast<uint8_t>(s[i])]) continue;
      const size_t len = longest_at(s, i, token);
      if (len > 0) {
        *begin = i;
        *end = i + len;
        return true;
      }
    }
    return false;
  }
};

// ---------------------------------------------------------------------------------------
// Word cache

namespace {

// Words longer than this are not cached (the library's MAX_LENGTH): they are rare and
// would crowd out the short words that repeat.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kCacheCapacity = 1 << 17;

}  // namespace

struct Tokenizer::WordCache {
  std::shared_mutex mutex;
  StringMap<std::vector<int32_t>> words;
};

Tokenizer::Tokenizer() : cache_(std::make_shared<WordCache>()) { byte_ids_.fill(-1); }

// ---------------------------------------------------------------------------------------
// Loading

namespace {

std::string in_quotes(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

// Post-processor -> templates applied in order with add_special_tokens.
template <class Item>
void parse_post_processor(const Json& j, const std::string& where, std::vector<std::vector<Item>>& out) {
  if (j.is_null()) return;
  JsonFields f(j, where);
  std::string type;
  f.require("type", type);
  if (type == "ByteLevel") {  // only moves offsets
    f.ignore("add_prefix_space");
    f.ignore("trim_offsets");
    f.ignore("use_regex");
  } else if (type == "Sequence") {
    Json list;
    f.require("processors", list);
    if (!list.is_array()) f.fail("processors", "must be an array");
    for (size_t k = 0; k < list.size(); ++k) {
      parse_post_processor(list[k], f.path("processors[" + std::to_string(k) + "]"), out);
    }
  } else if (type == "TemplateProcessing") {
    Json single, specials;
    f.require("single", single);
    f.require("special_tokens", specials);
    f.ignore("pair");  // r1kit never encodes pairs
    if (!single.is_array()) f.fail("single", "must be an array");
    if (!specials.is_object()) f.fail("special_tokens", "must be an object");
    std::vector<Item> tmpl;
    for (size_t k = 0; k < single.size(); ++k) {
      const std::string at = f.path("single[" + std::to_string(k) + "]");
      const Json& piece = single[k];
      if (!piece.is_object() || piece.size() != 1 || !piece.begin().value().is_object() ||
          !piece.begin().value().contains("id") || !piece.begin().value()["id"].is_string()) {
        throw Error(at + " must be {\"SpecialToken\": {\"id\": ...}} or {\"Sequence\": {\"id\": \"A\"}}");
      }
      const std::string kind = piece.begin().key();
      const std::string id = piece.begin().value()["id"].get<std::string>();
      Item item;
      if (kind == "Sequence") {
        if (id != "A") {
          throw Error(at + ": a single-sequence template can only hold $A, not $" + id);
        }
        item.sequence = true;
      } else if (kind == "SpecialToken") {
        if (!specials.contains(id) || !specials[id].contains("ids") || !specials[id]["ids"].is_array()) {
          throw Error(f.path("special_tokens") + ": no entry " + in_quotes(id) + " with \"ids\", which " + at +
                      " names");
        }
        for (const Json& v : specials[id]["ids"]) {
          if (!v.is_number_integer()) {
            throw Error(f.path("special_tokens") + "." + id + ".ids must hold integers");
          }
          item.ids.push_back(v.get<int32_t>());
        }
      } else {
        throw Error(at + ": unknown template piece " + in_quotes(kind));
      }
      tmpl.push_back(std::move(item));
    }
    out.push_back(std::move(tmpl));
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    // <cls> $A <sep>
    auto token = [&](const std::string& key) {
      Json v;
      f.require(key, v);
      if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer()) {
        f.fail(key, "must be [\"token\", id]");
      }
      Item item;
      item.ids.push_back(v[1].get<int32_t>());
      return item;
    };
    Item seq;
    seq.sequence = true;
    out.push_back({token("cls"), seq, token("sep")});
    f.ignore("trim_offsets");
    f.ignore("add_prefix_space");
  } else {
    f.fail("type", in_quotes(type) +
                       " is not supported (r1kit supports ByteLevel, TemplateProcessing, "
                       "RobertaProcessing, BertProcessing and Sequence of them)");
  }
  f.finish();
}

}  // namespace

std::string token_content(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return "";
}

namespace {

// The chat part of tokenizer_config.json, and chat_template.jinja (transformers 5 writes the
// template there; it wins over the JSON key, as in transformers).
Tokenizer::ChatConfig read_chat_config(const std::filesystem::path& dir) {
  Tokenizer::ChatConfig chat;
  const auto config_path = dir / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    const std::string file = config_path.string();
    const Json config = read_json_file(file);
    if (!config.is_object()) throw Error(file + ": expected a JSON object");
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
      if (config.contains(key) && !token_content(config[key]).empty()) {
        chat.special_tokens.emplace_back(key, token_content(config[key]));
      }
    }
    if (config.contains("chat_template") && !config["chat_template"].is_null()) {
      const Json& t = config["chat_template"];
      if (t.is_string()) {
        chat.chat_template = t.get<std::string>();
      } else if (t.is_array()) {
        // Named templates [{"name": "default", "template": ...}, {"name": "tool_use", ...}]:
        // transformers renders "default" unless asked otherwise.
        for (const Json& named : t) {
          if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
              named["template"].is_string()) {
            chat.chat_template = named["template"].get<std::string>();
          }
        }
        if (chat.chat_template.empty()) throw Error(file + ": chat_template: no template named \"default\"");
      } else {
        throw Error(file + ": chat_template: expected a string or a list of named templates");
      }
      chat.source = file;
    }
  }
  const auto jinja_path = dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja_path)) {
    chat.chat_template = read_text_file(jinja_path.string());
    chat.source = jinja_path.string();
  }
  return chat;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) {
    file = (std::filesystem::path(path) / "tokenizer.json").string();
  }
  Tokenizer t = from_json(read_json_file(file), file);
  t.chat_ = read_chat_config(std::filesystem::path(file).parent_path());
  return t;
}

Tokenizer Tokenizer::from_json(const Json& root, const std::string& file) {
  if (!root.is_object()) throw Error(file + ": expected a JSON object (a tokenizer.json)");
  Tokenizer t;
  JsonFields f(root, file + ": ");
  std::string version = "1.0";
  f.get("version", version);
  if (version != "1.0") f.fail("version", "is " + in_quotes(version) + "; only \"1.0\" exists");
  if (const Json* trunc = f.raw("truncation"); trunc != nullptr && !trunc->is_null()) {
    f.fail("truncation", "is set; r1kit never truncates, set it to null");
  }
  f.get("padding", t.padding_json_);  // batch padding: nothing to do for one sequence

  // Model: BPE.
  const Json* model = f.raw("model");
  if (model == nullptr || model->is_null()) f.fail("model", "is required");
  {
    JsonFields m(*model, f.path("model"));
    std::string type = "BPE";
    m.get("type", type);
    if (type != "BPE") {
      m.fail("type", "is " + in_quotes(type) + "; r1kit reads byte-level BPE only");
    }
    Json dropout;
    m.get("dropout", dropout);
    if (dropout.is_number() && dropout.get<double>() > 0.0) {
      m.fail("dropout", "is set; r1kit's BPE is deterministic, set it to null");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      std::string v;
      m.get(key, v);
      if (!v.empty()) m.fail(key, "is set; byte-level BPE does not use it, set it to null");
    }
    bool byte_fallback = false;
    m.get("byte_fallback", byte_fallback);
    if (byte_fallback) {
      m.fail("byte_fallback", "is true; byte-level BPE never falls back, set false");
    }
    std::string unk;
    m.get("unk_token", unk);
    if (!unk.empty()) t.unk_token_ = unk;
    m.get("fuse_unk", t.fuse_unk_);
    m.get("ignore_merges", t.ignore_merges_);

    const Json* vocab = m.raw("vocab");
    if (vocab == nullptr || !vocab->is_object()) m.fail("vocab", "must be an object {token: id}");
    int32_t max_id = -1;
    for (auto it = vocab->begin(); it != vocab->end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX) {
        throw Error(m.path("vocab") + "[" + in_quotes(it.key()) + "] must be a non-negative integer id");
      }
      const auto id = it.value().get<int32_t>();
      t.vocab_[it.key()] = id;
      max_id = std::max(max_id, id);
    }
    // Ids index tables (here, the embedding rows): they are dense in every real tokenizer,
    // and one stray huge id must not ask for gigabytes (found by fuzz_tokenizer).
    const int64_t entries = static_cast<int64_t>(vocab->size());
    if (max_id >= 2 * entries + 1024) {
      throw Error(m.path("vocab") + ": id " + std::to_string(max_id) + " is far past its " + std::to_string(entries) +
                  " entries (token ids are dense, 0 .. size - 1)");
    }
    t.vocab_r_.assign(static_cast<size_t>(max_id + 1), std::string());
    for (const auto& [token, id] : t.vocab_) {
      t.vocab_r_[id] = token;
      // Tokens that are not byte-level spellings (a special token with a space in it) cannot
      // come out of merges; they are simply not in vocab_bytes_.
      if (auto bytes = byte_level_to_bytes(token)) t.vocab_bytes_.emplace(std::move(*bytes), id);
    }
    for (int b = 0; b < 256; ++b) {
      const auto it = t.vocab_.find(std::string(byte_level_char(static_cast<uint8_t>(b))));
      if (it != t.vocab_.end()) t.byte_ids_[b] = it->second;
    }
    if (t.unk_token_) {
      const auto it = t.vocab_.find(*t.unk_token_);
      if (it == t.vocab_.end()) {
        m.fail("unk_token", in_quotes(*t.unk_token_) + " is not in model.vocab");
      }
      t.unk_id_ = it->second;
    }

    const Json* merges = m.raw("merges");
    if (merges == nullptr || !merges->is_array()) m.fail("merges", "must be an array");
    t.merge_list_.reserve(merges->size());
    t.merges_.reserve(merges->size());
    for (size_t k = 0; k < merges->size(); ++k) {
      const std::string at = m.path("merges[" + std::to_string(k) + "]");
      const Json& e = (*merges)[k];
      std::string left, right;
      if (e.is_string()) {  // legacy "a b"
        const std::string s = e.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == s.size()) {
          throw Error(at + " is " + in_quotes(s) + "; a merge string must be \"left right\"");
        }
        left = s.substr(0, sp);
        right = s.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        left = e[0].get<std::string>();
        right = e[1].get<std::string>();
      } else {
        throw Error(at + " must be \"left right\" or [\"left\", \"right\"]");
      }
      auto id_of = [&](const std::string& tok) {
        const auto it = t.vocab_.find(tok);
        if (it == t.vocab_.end()) {
          throw Error(at + ": " + in_quotes(tok) + " is not in model.vocab");
        }
        return it->second;
      };
      const int32_t a = id_of(left), b = id_of(right), merged = id_of(left + right);
      t.merge_list_.emplace_back(a, b);
      // A repeated pair keeps its last rank, as the library's HashMap collect does.
      t.merges_[(static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b)] = {static_cast<int32_t>(k), merged};
    }
    m.finish();
  }

  t.normalizer_ = Normalizer::from_json(f.raw("normalizer") ? *f.raw("normalizer") : Json(), f.path("normalizer"));
  const Json* pre = f.raw("pre_tokenizer");
  t.pre_tokenizer_ = PreTokenizer::from_json(pre ? *pre : Json(), f.path("pre_tokenizer"));

  if (const Json* post = f.raw("post_processor"); post != nullptr) {
    t.post_processor_json_ = *post;
    parse_post_processor(*post, f.path("post_processor"), t.post_templates_);
  }
  {
    const Json* dec = f.raw("decoder");
    if (dec == nullptr || dec->is_null()) {
      f.fail("decoder", "is missing; r1kit needs the ByteLevel decoder");
    }
    JsonFields d(*dec, f.path("decoder"));
    std::string type;
    d.require("type", type);
    if (type != "ByteLevel") {
      d.fail("type", "is " + in_quotes(type) + "; r1kit supports the ByteLevel decoder");
    }
    for (const char* key : {"add_prefix_space", "trim_offsets", "use_regex"}) d.ignore(key);
    d.finish();
    t.decoder_json_ = *dec;
  }

  // Added tokens last: the library re-adds them one by one after building the model, which
  // decides their ids (serialization.rs; a file id that disagrees only gets a warning there).
  if (const Json* added = f.raw("added_tokens"); added != nullptr && !added->is_null()) {
    if (!added->is_array()) f.fail("added_tokens", "must be an array");
    for (size_t k = 0; k < added->size(); ++k) {
      JsonFields a((*added)[k], f.path("added_tokens[" + std::to_string(k) + "]"));
      AddedToken tok;
      int64_t file_id = 0;
      a.require("id", file_id);
      a.require("content", tok.content);
      a.get("single_word", tok.single_word);
      a.get("lstrip", tok.lstrip);
      a.get("rstrip", tok.rstrip);
      a.get("normalized", tok.normalized);
      a.get("special", tok.special);
      a.finish();
      t.add_token(tok);
    }
  }
  f.finish();
  t.refresh();
  return t;
}

// ---------------------------------------------------------------------------------------
// Added vocabulary

int Tokenizer::add_token(const AddedToken& token) {
  if (token.content.empty()) return 0;
  if (const auto it = added_by_content_.find(token.content); it != added_by_content_.end()) {
    const AddedToken& old = added_[it->second];
    if (old.single_word == token.single_word && old.lstrip == token.lstrip && old.rstrip == token.rstrip &&
        old.normalized == token.normalized && old.special == token.special) {
      return 0;  // the very same token: ignored
    }
    AddedToken updated = token;
    updated.id = old.id;
    updated.special = old.special || token.special;  // the library's special set only grows
    added_[it->second] = updated;
    return 1;
  }
  // A token the model already has keeps its id; otherwise the next id after the model vocab
  // and after every added id (added_vocabulary.rs add_tokens).
  AddedToken tok = token;
  if (const auto it = vocab_.find(tok.content); it != vocab_.end()) {
    tok.id = it->second;
  } else {
    const auto model_size = static_cast<int32_t>(vocab_.size());
    int32_t max_added = -1;
    for (const AddedToken& a : added_) max_added = std::max(max_added, a.id);
    tok.id = (max_added < 0) ? model_size : (max_added >= model_size || model_size == 0 ? max_added + 1 : model_size);
  }
  added_by_content_[tok.content] = added_.size();
  added_by_id_[tok.id] = added_.size();
  added_.push_back(std::move(tok));
  return 1;
}

int Tokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  int added = 0;
  for (const std::string& content : tokens) {
    if (utf8_lossy(content) != content) {
      throw Error("Tokenizer::add_special_tokens: token \"" + utf8_lossy(content) + "\" is not valid UTF-8");
    }
    AddedToken tok;
    tok.content = content;
    tok.special = true;
    tok.normalized = false;  // AddedToken::from(content, special=true)
    added += add_token(tok);
  }
  refresh();
  return added;
}

bool Tokenizer::is_task_tag(std::string_view content) {
  return content == "<think>" || content == "</think>" || content == "<answer>" || content == "</answer>";
}

int Tokenizer::unmark_task_tags() {
  int changed = 0;
  for (AddedToken& a : added_) {
    if (a.special && is_task_tag(a.content)) {
      a.special = false;
      ++changed;
    }
  }
  if (changed > 0) refresh();
  return changed;
}

void Tokenizer::refresh() {
  auto raw = std::make_shared<AddedMatcher>();
  auto normalized = std::make_shared<AddedMatcher>();
  // The library builds its automata from special tokens first, then the others; with
  // leftmost-longest matching and unique contents the order cannot change a match.
  for (size_t k = 0; k < added_.size(); ++k) {
    const AddedToken& a = added_[k];
    if (a.normalized) {
      normalized->add(normalizer_.normalize(a.content), static_cast<int32_t>(k));
    } else {
      raw->add(a.content, static_cast<int32_t>(k));
    }
  }
  match_raw_ = std::move(raw);
  match_normalized_ = std::move(normalized);

  const auto size = static_cast<size_t>(vocab_size());
  decoded_.assign(size, std::string());
  known_.assign(size, 0);
  special_.assign(size, 0);
  std::unordered_map<std::string_view, bool> special_contents;
  for (const AddedToken& a : added_) {
    if (a.special) special_contents[a.content] = true;
  }
  for (size_t id = 0; id < size; ++id) {
    const std::string token = id_to_token(static_cast<int32_t>(id));
    const bool has =
        added_by_id_.count(static_cast<int32_t>(id)) > 0 || (id < vocab_r_.size() && vocab_.count(vocab_r_[id]) > 0);
    if (!has) continue;
    known_[id] = 1;
    // decoders/byte_level.rs: a token whose chars are all in the byte alphabet becomes those
    // bytes; any other token (e.g. "<｜begin▁of▁sentence｜>") is kept as its UTF-8.
    auto bytes = byte_level_to_bytes(token);
    decoded_[id] = bytes ? std::move(*bytes) : token;
    // The library skips by content: any id spelled like a special token is skipped.
    special_[id] = special_contents.count(token) ? 1 : 0;
  }
}

// added_vocabulary.rs find_matches: the pieces of `text` between added tokens go to
// on_piece (non-empty only), the tokens' ids straight to `ids`.
template <class OnPiece>
void Tokenizer::split_added(const AddedMatcher& m, std::string_view text, std::vector<int32_t>& ids,
                            const OnPiece& on_piece) const {
  size_t start_offset = 0, search = 0, begin = 0, end = 0;
  int32_t index = -1;
  while (m.find(text, search, &begin, &end, &index)) {
    search = end;  // the automaton resumes after the raw match, whatever strip does
    const AddedToken& tok = added_[index];
    size_t start = begin, stop = end;
    if (tok.single_word) {
      const bool space_before = start == 0 || !ends_with_word_char(text.substr(0, start));
      const bool space_after = stop == text.size() || !starts_with_word_char(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (tok.lstrip) {
      start = std::max(start - trailing_white_space(text.substr(0, start)), start_offset);
    }
    if (tok.rstrip) stop += leading_white_space(text.substr(stop));
    if (start < start_offset) continue;  // overlaps what an rstrip already took
    if (start_offset < start) on_piece(text.substr(start_offset, start - start_offset));
    ids.push_back(tok.id);
    start_offset = stop;
  }
  if (start_offset < text.size()) on_piece(text.substr(start_offset));
}

// ---------------------------------------------------------------------------------------
// BPE

std::optional<int32_t> Tokenizer::merge_of(int32_t left, int32_t right, int32_t* rank) const {
  const auto it = merges_.find((static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right));
  if (it == merges_.end()) return std::nullopt;
  *rank = it->second.rank;
  return it->second.id;
}

// models/bpe/word.rs merge_all: a min-heap of (rank, position) over adjacent pairs; the
// lowest rank merges first, the leftmost among equal ranks. A popped entry is stale when its
// left symbol was merged away or its pair now merges to a different token.
void Tokenizer::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // -1 at the ends
    uint32_t len;        // 0 once merged into its left neighbour
  };
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  bool pending_unk = false;
  for (const char ch : word) {
    int32_t id = byte_ids_[static_cast<uint8_t>(ch)];
    if (id < 0) {
      // A byte missing from the vocab: unk if there is one (a run fused into one with
      // fuse_unk), otherwise dropped, as the library does.
      if (unk_id_ < 0) continue;
      if (fuse_unk_ && pending_unk) {
        ++syms.back().len;
        continue;
      }
      id = unk_id_;
      pending_unk = true;
    } else {
      pending_unk = false;
    }
    const auto pos = static_cast<int32_t>(syms.size());
    syms.push_back({id, pos - 1, -1, 1});
    if (pos > 0) syms[pos - 1].next = pos;
  }
  struct Entry {
    int32_t rank, pos, id;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
  int32_t rank = 0;
  for (size_t i = 0; i + 1 < syms.size(); ++i) {
    if (auto id = merge_of(syms[i].id, syms[i + 1].id, &rank)) {
      queue.push({rank, static_cast<int32_t>(i), *id});
    }
  }
  while (!queue.empty()) {
    const Entry top = queue.top();
    queue.pop();
    Symbol& cur = syms[top.pos];
    if (cur.len == 0 || cur.next < 0) continue;
    const Symbol right = syms[cur.next];
    const auto now = merge_of(cur.id, right.id, &rank);
    if (!now || *now != top.id) continue;
    syms[cur.next].len = 0;
    cur.id = top.id;
    cur.len += right.len;
    cur.next = right.next;
    if (right.next >= 0) syms[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (auto id = merge_of(syms[cur.prev].id, cur.id, &rank)) queue.push({rank, cur.prev, *id});
    }
    if (cur.next >= 0) {
      if (auto id = merge_of(cur.id, syms[cur.next].id, &rank)) queue.push({rank, top.pos, *id});
    }
  }
  for (const Symbol& s : syms) {
    if (s.len > 0) out.push_back(s.id);
  }
}

void Tokenizer::bpe(std::string_view word, std::vector<int32_t>& ids) const {
  // ignore_merges (Llama-3): a word that is a whole vocab entry is that entry.
  if (ignore_merges_) {
    if (const auto it = vocab_bytes_.find(word); it != vocab_bytes_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_->mutex);
    if (const auto it = cache_->words.find(word); it != cache_->words.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> out;
  merge_word(word, out);
  ids.insert(ids.end(), out.begin(), out.end());
  if (cacheable) {
    std::unique_lock lock(cache_->mutex);
    // Full: start over rather than keep the first words forever (the library stops adding).
    if (cache_->words.size() >= kCacheCapacity) cache_->words.clear();
    cache_->words.emplace(std::string(word), std::move(out));
  }
}

// ---------------------------------------------------------------------------------------
// Encode / decode

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  auto words = [&](std::string_view piece) {
    pre_tokenizer_.split(piece, [&](std::string_view word) { bpe(word, ids); });
  };
  // 1. Non-normalized added tokens on the raw text; 2. normalize what is left and cut out
  // the normalized added tokens; 3. pre-tokenize and BPE the rest.
  split_added(*match_raw_, text, ids, [&](std::string_view piece) {
    if (normalizer_.is_identity()) {
      split_added(*match_normalized_, piece, ids, words);
    } else {
      const std::string normalized = normalizer_.normalize(piece);
      split_added(*match_normalized_, normalized, ids, words);
    }
  });
  if (add_special_tokens) {
    for (const auto& tmpl : post_templates_) {
      std::vector<int32_t> next;
      next.reserve(ids.size() + 4);
      for (const PostItem& item : tmpl) {
        const auto& src = item.sequence ? ids : item.ids;
        next.insert(next.end(), src.begin(), src.end());
      }
      ids = std::move(next);
    }
  }
  return ids;
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= known_.size() || !known_[id]) return {};
  return decoded_[id];
}

std::string Tokenizer::normalize(std::string_view text) const {
  return normalizer_.is_identity() ? std::string(text) : normalizer_.normalize(text);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= known_.size() || !known_[id]) continue;
    if (skip_special_tokens && special_[id]) continue;
    bytes += decoded_[id];
  }
  return utf8_lossy(bytes);
}

// ---------------------------------------------------------------------------------------
// Vocabulary

int32_t Tokenizer::vocab_size() const {
  auto size = static_cast<int32_t>(vocab_r_.size());
  for (const AddedToken& a : added_) size = std::max(size, a.id + 1);
  return size;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = added_by_content_.find(token); it != added_by_content_.end()) {
    return added_[it->second].id;
  }
  if (const auto it = vocab_.find(token); it != vocab_.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const auto it = added_by_id_.find(id); it != added_by_id_.end()) {
    return added_[it->second].content;
  }
  if (id >= 0 && static_cast<size_t>(id) < vocab_r_.size()) return vocab_r_[id];
  return std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id] != 0;
}

// ---------------------------------------------------------------------------------------
// Saving

Json Tokenizer::to_json() const {
  Json added = Json::array();
  std::vector<const AddedToken*> by_id;
  for (const AddedToken& a : added_) by_id.push_back(&a);
  // Sorted by id, as the library writes them; re-adding in this order gives the same ids.
  std::stable_sort(by_id.begin(), by_id.end(), [](const AddedToken* x, const AddedToken* y) { return x->id < y->id; });
  for (const AddedToken* a : by_id) {
    added.push_back(Json{{"id", a->id},
                         {"content", a->content},
                         {"single_word", a->single_word},
                         {"lstrip", a->lstrip},
                         {"rstrip", a->rstrip},
                         {"normalized", a->normalized},
                         {"special", a->special}});
  }
  Json vocab = Json::object();
  for (const auto& [token, id] : vocab_) vocab[token] = id;
  Json merges = Json::array();
  for (const auto& [a, b] : merge_list_) merges.push_back(Json::array({vocab_r_[a], vocab_r_[b]}));
  Json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", unk_token_ ? Json(*unk_token_) : Json()},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", fuse_unk_},
                {"byte_fallback", false},
                {"ignore_merges", ignore_merges_},
                {"vocab", std::move(vocab)},
                {"merges", std::move(merges)}};
  return Json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", padding_json_},
              {"added_tokens", std::move(added)},
              {"normalizer", normalizer_.json()},
              {"pre_tokenizer", pre_tokenizer_.json()},
              {"post_processor", post_processor_json_},
              {"decoder", decoder_json_},
              {"model", std::move(model)}};
}

void Tokenizer::save(const std::string& path) const {
  std::filesystem::path file = path;
  if (std::filesystem::is_directory(file) || file.extension() != ".json") file /= "tokenizer.json";
  if (file.has_parent_path()) make_dirs(file.parent_path().string());
  write_file_atomic(file.string(), to_json().dump(2) + "\n");
}

}  // namespace r1kit
