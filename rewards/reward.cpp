// Reward interface helpers and the registry (see reward.h).
#include "rewards/reward.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "src/error.h"
#include "src/thread_pool.h"

namespace r1kit::rewards {

// Link anchors of the built-in rewards (R1KIT_REGISTER_REWARD defines them).
void r1kit_reward_link_math();
void r1kit_reward_link_format();
void r1kit_reward_link_tag_count();
void r1kit_reward_link_length();
void r1kit_reward_link_language();
void r1kit_reward_link_repetition();
void r1kit_reward_link_code();
void r1kit_reward_link_plugin();
void r1kit_reward_link_process();

void link_builtin_rewards() {
  r1kit_reward_link_math();
  r1kit_reward_link_format();
  r1kit_reward_link_tag_count();
  r1kit_reward_link_length();
  r1kit_reward_link_language();
  r1kit_reward_link_repetition();
  r1kit_reward_link_code();
  r1kit_reward_link_plugin();
  r1kit_reward_link_process();
}

const Json* RewardInput::field(const std::string& key) const {
  if (fields == nullptr || !fields->is_object()) return nullptr;
  auto it = fields->find(key);
  if (it == fields->end() || it->is_null()) return nullptr;
  return &*it;
}

std::string RewardInput::field_string(const std::string& key) const {
  const Json* v = field(key);
  if (v == nullptr) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number()) return v->dump();
  return "";
}

std::string RewardInput::fields_json() const { return fields != nullptr ? dump_text(*fields) : "{}"; }

std::vector<RewardResult> Reward::score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool) const {
  std::vector<RewardResult> out(batch.size());
  auto one = [&](size_t i) { out[i] = score_with_timeout(batch[i]); };
  if (pool != nullptr) {
    pool->parallel_for(batch.size(), one);
  } else {
    for (size_t i = 0; i < batch.size(); ++i) one(i);
  }
  return out;
}

RewardResult Reward::score_with_timeout(const RewardInput& in) const {
  RewardInput timed = in;
  auto start = Clock::now();
  auto budget = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s_));
  timed.deadline = std::min(in.deadline, start + budget);
  RewardResult r = score(timed);
  if (Clock::now() > timed.deadline + std::chrono::milliseconds(50)) {
    double took = std::chrono::duration<double>(Clock::now() - start).count();
    return RewardResult::timeout(fmt::format("timeout: took {:.1f}s, budget {}s", took, timeout_s_));
  }
  return r;
}

RewardRegistry& RewardRegistry::instance() {
  static RewardRegistry registry;
  return registry;
}

void RewardRegistry::add(const std::string& name, RewardFactory factory) {
  if (factories_.count(name) != 0) {
    throw Error(fmt::format("reward registry: '{}' is registered twice", name));
  }
  factories_[name] = std::move(factory);
}

bool RewardRegistry::contains(const std::string& name) const {
  link_builtin_rewards();
  return factories_.count(name) != 0;
}

std::unique_ptr<Reward> RewardRegistry::create(const std::string& name, JsonFields& options) const {
  link_builtin_rewards();
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    throw Error(
        fmt::format("{}: unknown reward '{}' (known: {})", options.path("name"), name, fmt::join(names(), ", ")));
  }
  return it->second(options);
}

std::vector<std::string> RewardRegistry::names() const {
  link_builtin_rewards();
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

}  // namespace r1kit::rewards
