// A reward plug-in that misbehaves on purpose (tests/rewards/test_plugins.cpp,
// tests/pipelines/test_grpo_trainer.cpp): options {"mode": M, "after": N}; on a completion
// containing "BAD", or on every call after the first N (when "after" is given), it segfaults
// (segv), aborts (abort), returns NaN (nan), returns an error code (fail) or never returns
// (hang); every other call scores 0.5. Mode no_nul fails create with an error buffer filled
// to the end, no NUL.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "rewards/reward_plugin_abi.h"

namespace {
struct State {
  std::string mode;
  long after = -1;  // misbehave from call after+1 on; -1: only on "BAD"
  std::atomic<long> calls{0};
};
}  // namespace

extern "C" int r1kit_reward_abi_version(void) { return R1KIT_REWARD_ABI_VERSION; }

extern "C" void* r1kit_reward_create(const char* options_json, char* error, size_t error_len) {
  const char* at = std::strstr(options_json, "\"mode\":\"");
  std::string mode = at ? std::string(at + 8, std::strcspn(at + 8, "\"")) : "";
  if (mode == "no_nul") {
    std::memset(error, 'x', error_len);
    return nullptr;
  }
  auto* state = new State{mode};
  if (const char* a = std::strstr(options_json, "\"after\":")) state->after = std::strtol(a + 8, nullptr, 10);
  return state;
}

extern "C" int r1kit_reward_score(void* state, const char*, const char* completion, const char*,
                                  r1kit_reward_result* out) {
  auto* s = static_cast<State*>(state);
  const long call = ++s->calls;
  out->has_value = 1;
  out->value = 0.5;
  std::snprintf(out->why, sizeof(out->why), "fine");
  const bool bad = s->after >= 0 ? call > s->after : std::strstr(completion, "BAD") != nullptr;
  if (!bad) return 0;
  if (s->mode == "segv") std::raise(SIGSEGV);
  if (s->mode == "abort") std::abort();
  if (s->mode == "hang") {
    while (true) sleep(1);
  }
  if (s->mode == "nan") out->value = std::nan("");
  if (s->mode == "fail") {
    std::snprintf(out->why, sizeof(out->why), "cannot judge this row");
    return 7;
  }
  return 0;
}

extern "C" void r1kit_reward_destroy(void* state) { delete static_cast<State*>(state); }
