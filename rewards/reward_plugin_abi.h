/* The C ABI of a reward compiled into a shared library (reward "plugin", loaded by path).
 *
 * A plug-in exports the four functions below with C linkage; r1kit dlopen()s the library,
 * checks r1kit_reward_abi_version() == R1KIT_REWARD_ABI_VERSION, creates one state from
 * the reward's "options" (JSON text) and calls r1kit_reward_score from many threads at
 * once (it must be thread-safe). Strings are UTF-8; fields_json is the dataset row.
 * Example: examples/rewards/keyword_reward_plugin.cpp. Plain C so any compiler can build it. */
#ifndef R1KIT_REWARD_PLUGIN_ABI_H
#define R1KIT_REWARD_PLUGIN_ABI_H
#include <stddef.h>

#define R1KIT_REWARD_ABI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

typedef struct r1kit_reward_result {
  double value;  /* the reward, when has_value */
  int has_value; /* 0: skip this row */
  char why[256]; /* one line, NUL-terminated */
} r1kit_reward_result;

int r1kit_reward_abi_version(void);
/* NULL on failure, with a message in error[0..error_len). */
void* r1kit_reward_create(const char* options_json, char* error, size_t error_len);
/* 0 on success; non-zero is an error described in out->why. */
int r1kit_reward_score(void* state, const char* prompt, const char* completion, const char* fields_json,
                       r1kit_reward_result* out);
void r1kit_reward_destroy(void* state);

#ifdef __cplusplus
}
#endif
#endif
