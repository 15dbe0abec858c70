// save_checkpoint / latest_checkpoint / load_checkpoint (see checkpoint.h).
#include "pipelines/checkpoint.h"

#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

#include <cstdio>
#include <filesystem>

#include "policy/causal_lm.h"
#include "policy/pretrained.h"
#include "src/atomic_file.h"
#include "src/distributed.h"
#include "src/files.h"
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

std::string save_checkpoint(const std::string& root, const policy::CausalLM& model, const Tokenizer& tokenizer,
                            const torch::optim::Optimizer& optimizer, const TrainerState& state, int64_t keep,
                            const policy::CausalLM* reference) {
  const std::string final_dir = (fs::path(root) / ("step-" + std::to_string(state.step))).string();
  const std::string tmp = final_dir + ".tmp";
  remove_tree(tmp);  // a leftover of a crash during an earlier save
  fs::create_directories(tmp);
  policy::save_pretrained(model, tmp);
  tokenizer.save((fs::path(tmp) / "tokenizer.json").string());
  if (reference != nullptr) policy::save_pretrained(*reference, (fs::path(tmp) / "reference").string());
  {
    // The archive goes to a temp name too: torch writes it non-atomically.
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.save_to((fs::path(tmp) / "optimizer.pt").string());
  }
  const Json st = {{"step", state.step}, {"data_position", state.data_position}, {"extra", state.extra}};
  // trainer_state.json last: its presence marks the directory complete.
  write_file_atomic((fs::path(tmp) / "trainer_state.json").string(), st.dump(2) + "\n");
  remove_tree(final_dir);
  if (std::rename(tmp.c_str(), final_dir.c_str()) != 0)
    throw Error(final_dir + ": cannot rename checkpoint into place");
  auto all = complete_checkpoints(root);
  for (size_t i = 0; keep > 0 && i + static_cast<size_t>(keep) < all.size(); ++i) remove_tree(all[i].second);
  return final_dir;
}

std::optional<std::string> latest_checkpoint(const std::string& root) {
  auto all = complete_checkpoints(root);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

TrainerState load_checkpoint(const std::string& dir, policy::CausalLM& model, torch::optim::Optimizer& optimizer,
                             policy::CausalLM* reference) {
  policy::load_weights(model, dir);
  if (reference != nullptr) {
    const std::string ref_dir = (fs::path(dir) / "reference").string();
    if (!fs::exists(ref_dir)) throw Error(dir + ": no reference/ model in this checkpoint (beta > 0 needs it)");
    policy::load_weights(*reference, ref_dir);
  }
  torch::serialize::InputArchive archive;
  archive.load_from((fs::path(dir) / "optimizer.pt").string());
  optimizer.load(archive);
  const Json st = read_json_file((fs::path(dir) / "trainer_state.json").string());
  TrainerState state;
  JsonFields f(st, dir + "/trainer_state.json");
  f.require("step", state.step);
  f.require("data_position", state.data_position);
  f.get("extra", state.extra);
  f.finish();
  return state;
}

std::optional<std::string> agreed_latest_checkpoint(const std::string& root, DistributedContext& dist) {
  const std::optional<std::string> latest = latest_checkpoint(root);
  const Json chosen = dist.all_gather_json(latest ? Json(*latest) : Json(nullptr), "resume checkpoint")[0];
  if (chosen.is_null()) return std::nullopt;
  return chosen.get<std::string>();
}

void save_checkpoint_synced(DistributedContext& dist, const std::string& root, const policy::CausalLM& model,
                            const Tokenizer& tokenizer, const torch::optim::Optimizer& optimizer,
                            const TrainerState& state, int64_t keep, const policy::CausalLM* reference) {
  if (dist.is_main()) save_checkpoint(root, model, tokenizer, optimizer, state, keep, reference);
  dist.barrier("checkpoint saved");
}

void save_final_model(DistributedContext& dist, const policy::CausalLM& model, const Tokenizer& tokenizer,
                      const std::string& dir) {
  if (dist.is_main()) {
    policy::save_pretrained(model, dir);
    tokenizer.save((fs::path(dir) / "tokenizer.json").string());
  }
  dist.barrier("model saved");
}

std::vector<at::Tensor> replica_tensors(const policy::CausalLM& model) {
  std::vector<at::Tensor> out = model.parameters();
  for (const at::Tensor& b : model.buffers()) out.push_back(b);
  return out;
}

}  // namespace r1kit::pipelines
