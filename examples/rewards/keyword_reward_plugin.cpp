// Example C++ reward plug-in: 1 when the completion contains options.keyword (case-
// sensitive), else 0; skips rows whose "skip" field is true. Shows the whole C ABI of
// rewards/reward_plugin_abi.h: version, create (parse options), score (thread-safe: the
// state is read-only after create), destroy.
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "rewards/reward_plugin_abi.h"

namespace {
struct State {
  std::string keyword;
};
}  // namespace

extern "C" int r1kit_reward_abi_version(void) { return R1KIT_REWARD_ABI_VERSION; }

extern "C" void* r1kit_reward_create(const char* options_json, char* error, size_t error_len) {
  nlohmann::json o = nlohmann::json::parse(options_json, nullptr, false);
  if (!o.is_object() || !o.contains("keyword") || !o["keyword"].is_string()) {
    std::snprintf(error, error_len, "options need \"keyword\": a string");
    return nullptr;
  }
  return new State{o["keyword"].get<std::string>()};
}

extern "C" int r1kit_reward_score(void* state, const char* /*prompt*/, const char* completion, const char* fields_json,
                                  r1kit_reward_result* out) {
  const auto* s = static_cast<const State*>(state);
  nlohmann::json fields = nlohmann::json::parse(fields_json, nullptr, false);
  if (fields.is_object() && fields.value("skip", false)) {
    out->has_value = 0;
    std::snprintf(out->why, sizeof(out->why), "row asked to be skipped");
    return 0;
  }
  bool found = std::strstr(completion, s->keyword.c_str()) != nullptr;
  out->has_value = 1;
  out->value = found ? 1.0 : 0.0;
  std::snprintf(out->why, sizeof(out->why), "'%s' %s", s->keyword.c_str(), found ? "found" : "missing");
  return 0;
}

extern "C" void r1kit_reward_destroy(void* state) { delete static_cast<State*>(state); }
