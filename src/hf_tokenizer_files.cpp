// tokenizer.json + tokenizer_config.json + special_tokens_map.json (see hf_tokenizer_files.h).
#include "src/hf_tokenizer_files.h"

#include <filesystem>

#include "src/atomic_file.h"
#include "src/error.h"

namespace r1kit {
namespace {

std::string token_of(const Tokenizer& tok, int32_t id, const std::string& file, const char* what) {
  std::string t = tok.id_to_token(id);
  if (t.empty()) throw Error(file + ": " + what + " id " + std::to_string(id) + " has no token in tokenizer.json");
  return t;
}

}  // namespace

void save_hf_tokenizer(Tokenizer tokenizer, const HfTokenizerInfo& info, const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  tokenizer.unmark_task_tags();
  // Built once (a large vocabulary makes it the costly part), written as Tokenizer::save
  // writes it, and read for added_tokens_decoder below.
  const Json tokenizer_json = tokenizer.to_json();
  write_file_atomic((fs::path(dir) / "tokenizer.json").string(), tokenizer_json.dump(2) + "\n");

  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  Json config = Json::object();
  Json decoder = Json::object();  // {"<id>": {content, lstrip, normalized, rstrip, single_word, special}}
  for (const Json& a : tokenizer_json["added_tokens"]) {
    decoder[std::to_string(a["id"].get<int64_t>())] = {{"content", a["content"]},         {"lstrip", a["lstrip"]},
                                                       {"normalized", a["normalized"]},   {"rstrip", a["rstrip"]},
                                                       {"single_word", a["single_word"]}, {"special", a["special"]}};
  }
  config["added_tokens_decoder"] = std::move(decoder);
  Json map = Json::object();
  if (info.bos_token_id >= 0) map["bos_token"] = token_of(tokenizer, info.bos_token_id, config_path, "bos");
  if (!info.eos_token_ids.empty()) {
    map["eos_token"] = token_of(tokenizer, info.eos_token_ids.front(), config_path, "eos");
    map["pad_token"] = map["eos_token"];  // TRL pads completions with it
  }
  config.update(map);
  config["bos_token"] = map.value("bos_token", Json());
  config["clean_up_tokenization_spaces"] = false;
  if (info.model_max_length > 0) config["model_max_length"] = info.model_max_length;
  // The template the tokenizer was loaded with travels with it unless the caller gives one.
  const std::string& chat_template =
      !info.chat_template.empty() ? info.chat_template : tokenizer.chat_config().chat_template;
  if (!chat_template.empty()) config["chat_template"] = chat_template;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  write_file_atomic(config_path, config.dump(2) + "\n");
  write_file_atomic((fs::path(dir) / "special_tokens_map.json").string(), map.dump(2) + "\n");
}

}  // namespace r1kit
