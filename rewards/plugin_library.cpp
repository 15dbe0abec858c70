// Shared-library reward plug-ins (see plugin_library.h).
#include "rewards/plugin_library.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include "rewards/reward_plugin_abi.h"
#include "src/error.h"

namespace r1kit::rewards {
namespace {

using VersionFn = int (*)();
using CreateFn = void* (*)(const char*, char*, size_t);
using ScoreFn = int (*)(void*, const char*, const char*, const char*, r1kit_reward_result*);
using DestroyFn = void (*)(void*);

class PluginReward : public Reward {
 public:
  PluginReward(std::string path, void* state, ScoreFn score, DestroyFn destroy)
      : path_(std::move(path)), state_(state), score_(score), destroy_(destroy) {}
  ~PluginReward() override { destroy_(state_); }

  RewardResult score(const RewardInput& in) const override {
    r1kit_reward_result out{};
    std::string prompt(in.prompt), completion(in.completion);
    std::string fields = in.fields ? in.fields->dump() : "{}";
    int rc = score_(state_, prompt.c_str(), completion.c_str(), fields.c_str(), &out);
    out.why[sizeof(out.why) - 1] = '\0';
    if (rc != 0) throw Error(fmt::format("reward plugin {}: score failed: {}", path_, out.why));
    if (!out.has_value) return RewardResult::skip(out.why);
    return RewardResult::make(out.value, out.why);
  }

 private:
  std::string path_;
  void* state_;
  ScoreFn score_;
  DestroyFn destroy_;
};

std::unique_ptr<Reward> make_plugin(JsonFields& f) {
  std::string path;
  Json options = Json::object();
  f.require("path", path);
  f.get("options", options);
  try {
    return load_plugin_reward(path, options);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", f.path("path"), e.what()));
  }
}

}  // namespace

std::unique_ptr<Reward> load_plugin_reward(const std::string& path, const Json& options) {
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) throw Error(fmt::format("cannot load reward plugin: {}", dlerror()));
  auto sym = [&](const char* name) {
    void* p = dlsym(lib, name);
    if (p == nullptr) throw Error(fmt::format("reward plugin {} does not export {}()", path, name));
    return p;
  };
  auto version = reinterpret_cast<VersionFn>(sym("r1kit_reward_abi_version"));
  auto create = reinterpret_cast<CreateFn>(sym("r1kit_reward_create"));
  auto score = reinterpret_cast<ScoreFn>(sym("r1kit_reward_score"));
  auto destroy = reinterpret_cast<DestroyFn>(sym("r1kit_reward_destroy"));
  if (version() != R1KIT_REWARD_ABI_VERSION)
    throw Error(fmt::format("reward plugin {} has ABI version {}, r1kit expects {}", path, version(),
                            R1KIT_REWARD_ABI_VERSION));
  char err[512] = {0};
  std::string opts = options.dump();
  void* state = create(opts.c_str(), err, sizeof(err));
  if (state == nullptr) throw Error(fmt::format("reward plugin {}: create failed: {}", path, err));
  return std::make_unique<PluginReward>(path, state, score, destroy);
}

R1KIT_REGISTER_REWARD(plugin, make_plugin);

}  // namespace r1kit::rewards
