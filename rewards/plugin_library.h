// A reward plug-in's shared library: loaded by path (dlopen), its four C ABI functions
// (reward_plugin_abi.h) found, its ABI version checked, and one state created from the
// reward's options. Used in-process (`isolate: false`) and inside the plug-in host process
// (plugin_host.h), so both score a row the same way.
// Errors (missing file, missing symbol, ABI mismatch, create failure) are one line naming
// the path; the create error buffer is read with its length (a plug-in that fills it without
// a NUL cannot make r1kit print past it). The library stays loaded for the life of the
// process (no dlclose: a late score call must never jump into unmapped code).
#pragma once
#include <string>

#include "rewards/reward.h"
#include "rewards/reward_plugin_abi.h"

namespace r1kit::rewards {

class PluginLibrary {
 public:
  PluginLibrary(std::string path, const std::string& options_json);
  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  // One row through r1kit_reward_score (thread-safe if the plug-in is, as the ABI requires):
  // its value, a skip, or an error result when the plug-in returns non-zero. Not yet checked
  // for finite values (the Scorer does that).
  RewardResult score(const char* prompt, const char* completion, const char* fields_json) const;
  const std::string& path() const { return path_; }

 private:
  using ScoreFn = int (*)(void*, const char*, const char*, const char*, r1kit_reward_result*);
  using DestroyFn = void (*)(void*);
  std::string path_;
  void* state_ = nullptr;
  ScoreFn score_ = nullptr;
  DestroyFn destroy_ = nullptr;
};

}  // namespace r1kit::rewards
