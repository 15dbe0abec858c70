// A reward plug-in run in its own process (`isolate: true`, the default for the `plugin`
// reward): r1kit starts the r1kit-plugin-host program (beside the r1kit executable, or
// $R1KIT_PLUGIN_HOST), which loads the library with the same C ABI and scores whole batches
// sent over a socket (plugin_wire.h) on as many threads as the caller's pool: a batch goes as
// up to 4 chunks back to back, so the host scores one while r1kit encodes the next.
//
// What isolation buys: a plug-in that segfaults or aborts kills only the host, and
// score_batch throws an Error naming the plug-in, the row, the completion and the signal (the
// stage fails cleanly: manifest "failed", checkpoints intact). A batch that runs past its
// budget (timeout_s per row, rows spread over the threads) is stopped: the host reports the
// rows it was stuck on, is killed, every row of the batch scores as a timeout (counted like
// any reward timeout) and the next call starts a new host. An in-process plug-in can do
// neither: it cannot be interrupted and its crash is r1kit's.
#pragma once
#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

#include "rewards/reward.h"

namespace r1kit::rewards {

// The r1kit-plugin-host program: $R1KIT_PLUGIN_HOST, else beside the running executable,
// else where this build put it. Throws an Error listing where it looked.
std::string plugin_host_program();

class PluginHost {
 public:
  // Starts the host and creates the plug-in's state; errors are the in-process ones
  // (PluginLibrary), or name the host when it cannot start.
  PluginHost(std::string path, std::string options_json);
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // The rows' results in order (not yet checked for finite values: the Scorer does that), scored in the host on as
  // many threads as `pool` has (1 without). Serialised: one batch at a time per host.
  std::vector<RewardResult> score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool, double timeout_s);

 private:
  void start();
  void stop();
  [[noreturn]] void crashed(const std::vector<RewardInput>& batch, int signal, int64_t row);
  std::vector<RewardResult> timed_out(std::vector<RewardResult> done, size_t rows, double budget_s);

  std::string path_, options_json_;
  std::mutex mu_;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;  // bytes read past the last frame
};

}  // namespace r1kit::rewards
