// The reward interface: a reward reads (prompt, completion, dataset row) and returns a
// value in a documented range, the named parts it was built from, and a one-line "why".
//
// A reward may "skip" a row (no value: the row has no gold answer, no tests, ...); the
// Scorer then leaves it out of the weighted sum instead of scoring it 0, which is what
// open-r1 does with `None`. Rewards are built by name from a registry; each implementation
// registers itself with one line beside its code (R1KIT_REGISTER_REWARD). The registry
// refuses duplicate names and its "unknown reward" error lists the known names.
// Does not: hold any LibTorch type (rewards/ is torch-free, DESIGN.md).
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/config.h"

namespace r1kit {
class ThreadPool;
}

namespace r1kit::rewards {

using Clock = std::chrono::steady_clock;

// One completion to score. Views: the caller owns the text and the row for the call.
struct RewardInput {
  std::string_view prompt;
  std::string_view completion;
  const Json* fields = nullptr;  // the dataset row (answer, tests, prompt/test/entry_point, ...)
  // Latest time the reward should still be working. Rewards that run work of unbounded
  // length (code, external processes) stop at it; the Scorer also checks it afterwards.
  Clock::time_point deadline = Clock::time_point::max();

  // Field lookup helpers (nullptr / "" when absent or not a string).
  const Json* field(const std::string& key) const;
  std::string field_string(const std::string& key) const;
  // The whole row as one line of JSON ("{}" without one; bytes that are not UTF-8 replaced):
  // what a plug-in reads.
  std::string fields_json() const;
};

struct RewardResult {
  std::optional<double> value;          // nullopt = skip this row
  std::map<std::string, double> parts;  // named sub-scores (e.g. code: "passed", "total")
  std::string why;                      // one short line for humans and samples.jsonl
  // The reward could not judge the row: it ran out of its time budget, or it reported an
  // error (a plug-in's non-zero return or a non-finite value, a process's {"error": ...}).
  // The value (0) is no judgement of the completion. Counted per reward (Scorer results list
  // the rewards in `timed_out_rewards` / `errored_rewards`) and warned, so that a run stops when
  // too many rewards fail instead of training on zeros.
  enum class Failure { none, timeout, error };
  Failure failure = Failure::none;
  std::vector<std::string> timed_out_rewards;  // Scorer results: the rewards that timed out
  std::vector<std::string> errored_rewards;    // Scorer results: the rewards that reported an error
  std::vector<std::string> skipped_rewards;    // Scorer results: the rewards that skipped the row

  static RewardResult make(double value, std::string why) {
    RewardResult r;
    r.value = value;
    r.why = std::move(why);
    return r;
  }
  static RewardResult timeout(std::string why) {
    RewardResult r = make(0.0, std::move(why));
    r.failure = Failure::timeout;
    return r;
  }
  static RewardResult error(std::string why) {
    RewardResult r = make(0.0, std::move(why));
    r.failure = Failure::error;
    return r;
  }
  static RewardResult skip(std::string why) {
    RewardResult r;
    r.why = std::move(why);
    return r;
  }
};

// A reward function. score() must be thread-safe: the Scorer calls it from many threads.
class Reward {
 public:
  virtual ~Reward() = default;
  virtual RewardResult score(const RewardInput& in) const = 0;
  // score() with this reward's deadline set (now + timeout_s()); a result that arrives
  // after the deadline is replaced by 0 with why "timeout" (a reward that cannot stop
  // itself still cannot make a step wait past its budget unnoticed).
  RewardResult score_with_timeout(const RewardInput& in) const;
  // Whole batch; the default runs score_with_timeout row by row on `pool` (or inline).
  // Rewards with a per-call cost (an external process) override it to send one request.
  virtual std::vector<RewardResult> score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool) const;
  // Wall-clock budget per completion, seconds.
  double timeout_s() const { return timeout_s_; }
  void set_timeout_s(double s) { timeout_s_ = s; }

 private:
  double timeout_s_ = 10.0;
};

// Builds a reward from its options; the factory reads its own keys from `options` (a
// JsonFields over the recipe entry, so unknown keys are reported by the caller's finish()).
using RewardFactory = std::function<std::unique_ptr<Reward>(JsonFields& options)>;

class RewardRegistry {
 public:
  static RewardRegistry& instance();
  // Throws r1kit::Error when `name` is already registered.
  void add(const std::string& name, RewardFactory factory);
  bool contains(const std::string& name) const;
  // Throws r1kit::Error "unknown reward 'x' (known: a, b, c)".
  std::unique_ptr<Reward> create(const std::string& name, JsonFields& options) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, RewardFactory> factories_;
};

namespace detail {
struct RewardRegistrar {
  RewardRegistrar(const char* name, RewardFactory factory) { RewardRegistry::instance().add(name, std::move(factory)); }
};
}  // namespace detail

// One line beside an implementation: R1KIT_REGISTER_REWARD(math, make_math_reward);
// It also defines r1kit_reward_link_<id>(), which reward.cpp calls so that the linker keeps
// the object file of every built-in reward out of the static library (static initialisers
// of unreferenced archive members are otherwise dropped).
#define R1KIT_REGISTER_REWARD(id, factory) \
  void r1kit_reward_link_##id() {}         \
  static const ::r1kit::rewards::detail::RewardRegistrar r1kit_reward_registrar_##id { #id, factory }

// Calls every built-in reward's link anchor (defined in reward.cpp); RewardRegistry::instance
// users need not call it, create() and names() do.
void link_builtin_rewards();

}  // namespace r1kit::rewards
