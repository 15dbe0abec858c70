// MetricsLogger: a trainer's per-step scalars, to RUN_DIR/metrics.jsonl (one JSON object per
// step, {"step": s, key: value, ...}) and to a TensorBoard event file in RUN_DIR.
// Non-finite values (NaN, +-inf) are null in metrics.jsonl (JSON has no NaN) and kept as
// they are in TensorBoard, which draws them. On ranks != 0 the logger is disabled and does
// nothing, so trainers call it unconditionally. Does not: aggregate across ranks or steps
// (the caller reduces first), or log anything that is not a scalar.
// format_progress() is the one-line terminal summary of a row.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace r1kit {

class JsonlAppender;
class TensorboardWriter;

class MetricsLogger {
 public:
  // Creates `run_dir` if needed, opens metrics.jsonl for append and a new event file.
  // enabled = false (ranks != 0): touches no file at all.
  MetricsLogger(const std::string& run_dir, bool enabled);
  ~MetricsLogger();
  MetricsLogger(const MetricsLogger&) = delete;
  MetricsLogger& operator=(const MetricsLogger&) = delete;

  // One row. A "step" key in `row` is a programming error (it would shadow the step column).
  void log(int64_t step, const std::map<std::string, double>& row);
  // For resume from a checkpoint at `step`: rewrites metrics.jsonl atomically with only the
  // rows whose step <= `step` (so replayed steps are not logged twice), and starts a new
  // event file that opens with a restart marker at step + 1, which makes TensorBoard drop the
  // old file's points past `step`. A row without an integer "step" throws r1kit::Error
  // naming FILE:LINE.
  void truncate_after(int64_t step);
  // fdatasync of the event file (metrics.jsonl rows are one write(2) each already).
  void flush();

  bool enabled() const { return enabled_; }
  const std::string& jsonl_path() const { return jsonl_path_; }
  // The current event file; empty when disabled.
  std::string tensorboard_path() const;

 private:
  std::string run_dir_;
  std::string jsonl_path_;
  bool enabled_;
  std::unique_ptr<JsonlAppender> jsonl_;
  std::unique_ptr<TensorboardWriter> tensorboard_;
};

// Row key whose value is shown as "12.3 s/step" (unit after the number) by format_progress.
inline constexpr const char* kSecondsPerStepKey = "time/s_per_step";

// "step 12/100  reward 0.41  acc 0.38  len 57  kl 0.0012  12.3 s/step": `keys` in order, each
// as "key value", keys absent from `row` left out, kSecondsPerStepKey as "value s/step".
// Values: |v| >= 100 without decimals, otherwise 3 significant digits. total <= 0: "step 12".
std::string format_progress(int64_t step, int64_t total, const std::map<std::string, double>& row,
                            const std::vector<std::string>& keys);

}  // namespace r1kit
