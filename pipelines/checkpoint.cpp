// save_checkpoint / latest_checkpoint / load_checkpoint (see checkpoint.h).
#include "pipelines/checkpoint.h"

#include <c10/util/Exception.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "policy/causal_lm.h"
#include "policy/lora.h"
#include "policy/pretrained.h"
#include "src/atomic_file.h"
#include "src/distributed.h"
#include "src/files.h"
#include "src/hf_tokenizer_files.h"
#include "src/logging.h"
#include "src/tokenizer.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// "step-12" -> 12; -1 for anything else (including "step-12.tmp").
int64_t step_of(const std::string& name) {
  if (name.rfind("step-", 0) != 0) return -1;
  const std::string digits = name.substr(5);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& root) {
  std::vector<std::pair<int64_t, std::string>> out;
  if (!fs::exists(root)) return out;
  for (const std::string& name : list_dir(root)) {
    const int64_t step = step_of(name);
    const std::string dir = (fs::path(root) / name).string();
    if (step >= 0 && fs::exists(fs::path(dir) / "trainer_state.json")) out.emplace_back(step, dir);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

namespace {

// What transformers' tokenizer needs beside tokenizer.json, from the model's config.
HfTokenizerInfo hf_tokenizer_info(const policy::ModelConfig& c) {
  HfTokenizerInfo info;
  info.eos_token_ids.assign(c.eos_token_ids.begin(), c.eos_token_ids.end());
  info.bos_token_id = static_cast<int32_t>(c.bos_token_id);
  info.model_max_length = c.max_position_embeddings;
  return info;
}

// Every file of a checkpoint directory (but trainer_state.json, which holds this) with its
// size and checksum: what a resume verifies before trusting the checkpoint.
Json file_manifest(const std::string& dir) {
  Json files = Json::object();
  for (const std::string& name : list_files_recursive(dir)) {
    if (name == "trainer_state.json") continue;
    const std::string path = (fs::path(dir) / name).string();
    files[name] = {{"bytes", fs::file_size(path)}, {"checksum", file_checksum(path)}};
  }
  return files;
}

// "" when every file listed in trainer_state.json is there with its size and checksum, else
// what is wrong. Checkpoints written before the list existed are taken as they are.
std::string verify_checkpoint(const std::string& dir) {
  const std::string state_path = (fs::path(dir) / "trainer_state.json").string();
  Json st;
  try {
    st = read_json_file(state_path);
  } catch (const Error& e) {
    return e.what();
  }
  if (!st.is_object() || !st.contains("files")) return "";
  for (const auto& [name, want] : st["files"].items()) {
    const std::string path = (fs::path(dir) / name).string();
    std::error_code ec;
    const auto bytes = fs::file_size(path, ec);
    if (ec) return path + ": missing";
    if (bytes != want.value("bytes", uint64_t{0})) {
      return path + ": " + std::to_string(bytes) + " bytes, expected " + want["bytes"].dump() + " (truncated?)";
    }
    if (file_checksum(path) != want.value("checksum", "")) return path + ": checksum differs (damaged)";
  }
  return "";
}

// The message of a LibTorch error without its C++ backtrace.
std::string short_what(const std::exception& e) {
  if (const auto* c10e = dynamic_cast<const c10::Error*>(&e)) return c10e->what_without_backtrace();
  return e.what();
}

// optimizer.pt, or optimizer-rank<r>.pt of a ZeRO checkpoint sharded over `shards` ranks.
std::string optimizer_file(const std::string& dir, int shards, int rank) {
  return (fs::path(dir) / (shards > 0 ? "optimizer-rank" + std::to_string(rank) + ".pt" : "optimizer.pt")).string();
}

void write_optimizer(const torch::optim::Optimizer& optimizer, const std::string& path) {
  // Serialised in memory, then written through AtomicFile: LibTorch's own file writer
  // reports a full disk as "unexpected pos" from a destructor (a terminate), with no path.
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomic(path, bytes.str());
}

void write_checkpoint_files(const std::string& tmp, const policy::CausalLM& model, const Tokenizer& tokenizer,
                            const torch::optim::Optimizer& optimizer, const TrainerState& state,
                            const policy::CausalLM* reference, int optimizer_shards) {
  fs::create_directories(tmp);
  save_model_directory(model, tokenizer, tmp);
  if (reference != nullptr) policy::save_pretrained(*reference, (fs::path(tmp) / "reference").string());
  if (optimizer_shards == 0) write_optimizer(optimizer, optimizer_file(tmp, 0, 0));
  Json st = {{"step", state.step},
             {"data_position", state.data_position},
             {"extra", state.extra},
             {"files", file_manifest(tmp)}};
  if (optimizer_shards > 0) st["optimizer_shards"] = optimizer_shards;
  // trainer_state.json last: its presence marks the directory complete.
  write_file_atomic((fs::path(tmp) / "trainer_state.json").string(), st.dump(2) + "\n");
}

}  // namespace

std::string save_checkpoint(const std::string& root, const policy::CausalLM& model, const Tokenizer& tokenizer,
                            const torch::optim::Optimizer& optimizer, const TrainerState& state, int64_t keep,
                            const policy::CausalLM* reference, int optimizer_shards) {
  const std::string final_dir = (fs::path(root) / ("step-" + std::to_string(state.step))).string();
  const std::string tmp = final_dir + ".tmp";
  if (optimizer_shards == 0) remove_tree(tmp);  // a leftover of a crash during an earlier save
  try {
    write_checkpoint_files(tmp, model, tokenizer, optimizer, state, reference, optimizer_shards);
  } catch (const std::exception& e) {
    // A full disk, a quota, an I/O error: the half-written directory goes, the previous
    // checkpoints stay as they were.
    const std::string why = short_what(e);
    try {
      remove_tree(tmp);
    } catch (...) {
    }
    throw Error(final_dir + ": checkpoint not written (the previous ones are intact): " + why);
  }
  remove_tree(final_dir);
  if (std::rename(tmp.c_str(), final_dir.c_str()) != 0)
    throw Error(final_dir + ": cannot rename checkpoint into place: " + std::strerror(errno));
  auto all = complete_checkpoints(root);
  for (size_t i = 0; keep > 0 && i + static_cast<size_t>(keep) < all.size(); ++i) remove_tree(all[i].second);
  return final_dir;
}

std::optional<std::string> latest_checkpoint(const std::string& root) {
  auto all = complete_checkpoints(root);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string problem = verify_checkpoint(it->second);
    if (problem.empty()) return it->second;
    log::warn("{}: skipped for an older checkpoint: {}", it->second, problem);
  }
  return std::nullopt;
}

TrainerState load_checkpoint(const std::string& dir, policy::CausalLM& model, torch::optim::Optimizer& optimizer,
                             policy::CausalLM* reference, int optimizer_shards, int rank) {
  const Json st = read_json_file((fs::path(dir) / "trainer_state.json").string());
  const int saved_shards = st.is_object() ? st.value("optimizer_shards", 0) : 0;
  if (saved_shards != optimizer_shards) {
    auto how = [](int shards) {
      return shards > 0
                 ? "sharded over " + std::to_string(shards) + (shards == 1 ? " rank" : " ranks") + " (zero_stage >= 1)"
                 : std::string("whole (zero_stage 0)");
    };
    throw Error(dir + ": its optimizer states were saved " + how(saved_shards) + ", but this run holds them " +
                how(optimizer_shards) + "; resume with the world size and zero_stage the checkpoint was written with");
  }
  try {
    if (policy::has_lora(model)) {
      policy::load_peft_adapter_values(model, dir);  // the frozen base is the stage's model as loaded
    } else {
      policy::load_weights(model, dir);
    }
    if (reference != nullptr) {
      const std::string ref_dir = (fs::path(dir) / "reference").string();
      if (!fs::exists(ref_dir)) throw Error(dir + ": no reference/ model in this checkpoint (beta > 0 needs it)");
      policy::load_weights(*reference, ref_dir);
    }
    torch::serialize::InputArchive archive;
    archive.load_from(optimizer_file(dir, optimizer_shards, rank));
    optimizer.load(archive);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(dir + ": cannot load the checkpoint: " + short_what(e));
  }
  TrainerState state;
  JsonFields f(st, dir + "/trainer_state.json");
  f.require("step", state.step);
  f.require("data_position", state.data_position);
  f.get("extra", state.extra);
  f.ignore("files");
  f.ignore("optimizer_shards");
  f.finish();
  return state;
}

std::optional<std::string> agreed_latest_checkpoint(const std::string& root, DistributedContext& dist) {
  std::optional<std::string> latest;
  if (dist.is_main()) {
    // step-N.tmp directories are saves that never finished (a crash, a full disk): never
    // resumed from, and removed here so they cannot pile up.
    if (fs::exists(root)) {
      for (const std::string& name : list_dir(root)) {
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
            step_of(name.substr(0, name.size() - 4)) >= 0) {
          remove_tree((fs::path(root) / name).string());
        }
      }
    }
    latest = latest_checkpoint(root);
  }
  const Json chosen = dist.all_gather_json(latest ? Json(*latest) : Json(nullptr), "resume checkpoint")[0];
  if (chosen.is_null()) return std::nullopt;
  return chosen.get<std::string>();
}

void save_checkpoint_synced(DistributedContext& dist, const std::string& root, const policy::CausalLM& model,
                            const Tokenizer& tokenizer, const torch::optim::Optimizer& optimizer,
                            const TrainerState& state, int64_t keep, const policy::CausalLM* reference,
                            bool sharded_optimizer) {
  if (sharded_optimizer) {
    // Rank 0 makes a clean step-N.tmp/, every rank writes its optimizer shard into it, then
    // rank 0 adds the rest and renames it into place as for a whole checkpoint.
    const std::string tmp = (fs::path(root) / ("step-" + std::to_string(state.step) + ".tmp")).string();
    if (dist.is_main()) {
      remove_tree(tmp);
      fs::create_directories(tmp);
    }
    dist.barrier("checkpoint directory");
    write_optimizer(optimizer, optimizer_file(tmp, dist.world_size(), dist.rank()));
    dist.barrier("optimizer shards saved");
  }
  if (dist.is_main()) {
    save_checkpoint(root, model, tokenizer, optimizer, state, keep, reference,
                    sharded_optimizer ? dist.world_size() : 0);
  }
  dist.barrier("checkpoint saved");
}

void save_model_directory(const policy::CausalLM& model, const Tokenizer& tokenizer, const std::string& dir,
                          const policy::SaveOptions& weights) {
  if (policy::has_lora(model)) {
    // LoRA: the adapters only, in PEFT's format, naming the base they were trained on.
    policy::save_peft_adapter(model, dir, model.source_dir());
  } else {
    policy::save_pretrained(model, dir, weights);
  }
  save_hf_tokenizer(tokenizer, hf_tokenizer_info(model.config()), dir);
}

void save_final_model(DistributedContext& dist, const policy::CausalLM& model, const Tokenizer& tokenizer,
                      const std::string& dir, const policy::SaveOptions& weights) {
  if (dist.is_main()) {
    save_model_directory(model, tokenizer, dir, weights);
  }
  dist.barrier("model saved");
}

std::vector<at::Tensor> replica_tensors(const policy::CausalLM& model) {
  std::vector<at::Tensor> out = model.parameters();
  if (policy::has_lora(model)) {
    for (const at::Tensor& t : policy::trainable_parameters(model)) out.push_back(t);
  }
  for (const at::Tensor& b : model.buffers()) out.push_back(b);
  return out;
}

}  // namespace r1kit::pipelines
