// A plug-in's shared library behind the C ABI (see plugin_library.h).
#include "rewards/plugin_library.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstring>

#include "rewards/reward_plugin_abi.h"
#include "src/error.h"

namespace r1kit::rewards {
namespace {

using VersionFn = int (*)();
using CreateFn = void* (*)(const char*, char*, size_t);

// The first `capacity` bytes of a C buffer up to its NUL, if it has one.
std::string bounded(const char* buffer, size_t capacity) { return {buffer, strnlen(buffer, capacity)}; }

}  // namespace

PluginLibrary::PluginLibrary(std::string path, const std::string& options_json) : path_(std::move(path)) {
  void* lib = dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) throw Error(fmt::format("cannot load reward plugin: {}", dlerror()));
  auto sym = [&](const char* name) {
    void* p = dlsym(lib, name);
    if (p == nullptr) throw Error(fmt::format("reward plugin {} does not export {}()", path_, name));
    return p;
  };
  auto version = reinterpret_cast<VersionFn>(sym("r1kit_reward_abi_version"));
  auto create = reinterpret_cast<CreateFn>(sym("r1kit_reward_create"));
  score_ = reinterpret_cast<ScoreFn>(sym("r1kit_reward_score"));
  destroy_ = reinterpret_cast<DestroyFn>(sym("r1kit_reward_destroy"));
  if (const int v = version(); v != R1KIT_REWARD_ABI_VERSION) {
    throw Error(
        fmt::format("reward plugin {} has ABI version {}, r1kit expects {}", path_, v, R1KIT_REWARD_ABI_VERSION));
  }
  char error[512] = {0};
  state_ = create(options_json.c_str(), error, sizeof(error));
  if (state_ == nullptr) {
    throw Error(fmt::format("reward plugin {}: create failed: {}", path_, bounded(error, sizeof(error))));
  }
}

PluginLibrary::~PluginLibrary() {
  if (state_ != nullptr) destroy_(state_);
}

RewardResult PluginLibrary::score(const char* prompt, const char* completion, const char* fields_json) const {
  r1kit_reward_result out{};
  const int rc = score_(state_, prompt, completion, fields_json, &out);
  std::string why = bounded(out.why, sizeof(out.why));
  if (rc != 0) return RewardResult::error(fmt::format("plug-in returned {}: {}", rc, why));
  if (!out.has_value) return RewardResult::skip(std::move(why));
  return RewardResult::make(out.value, std::move(why));
}

}  // namespace r1kit::rewards
