// The `plugin` reward, in-process or isolated (see plugin_reward.h).
#include "rewards/plugin_reward.h"

#include <fmt/format.h>

#include "rewards/plugin_host.h"
#include "rewards/plugin_library.h"
#include "src/error.h"
#include "src/thread_pool.h"

namespace r1kit::rewards {
namespace {

class InProcessPlugin : public Reward {
 public:
  InProcessPlugin(const std::string& path, const Json& options) : lib_(path, options.dump()) {}

  RewardResult score(const RewardInput& in) const override {
    const std::string prompt(in.prompt), completion(in.completion);
    return lib_.score(prompt.c_str(), completion.c_str(), in.fields_json().c_str());
  }

 private:
  PluginLibrary lib_;
};

class IsolatedPlugin : public Reward {
 public:
  IsolatedPlugin(const std::string& path, const Json& options) : host_(path, options.dump()) {}

  RewardResult score(const RewardInput& in) const override { return score_batch({in}, nullptr).front(); }

  // One round trip for the whole batch, scored in the host on as many threads as `pool`.
  std::vector<RewardResult> score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool) const override {
    return host_.score_batch(batch, pool, timeout_s());
  }

 private:
  mutable PluginHost host_;
};

std::unique_ptr<Reward> make_plugin(JsonFields& f) {
  std::string path;
  Json options = Json::object();
  bool isolate = true;
  f.require("path", path);
  f.get("options", options);
  f.get("isolate", isolate);
  try {
    return load_plugin_reward(path, options, isolate);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", f.path("path"), e.what()));
  }
}

}  // namespace

std::unique_ptr<Reward> load_plugin_reward(const std::string& path, const Json& options, bool isolate) {
  if (isolate) return std::make_unique<IsolatedPlugin>(path, options);
  return std::make_unique<InProcessPlugin>(path, options);
}

R1KIT_REGISTER_REWARD(plugin, make_plugin);

}  // namespace r1kit::rewards
