// A one-line progress bar on stderr: "rollout [######......] 50/100 5.00/s eta 0:10 extra".
//
// Drawn only when stderr is a terminal, at most ~10 times a second; elsewhere (a log file,
// CI) it is silent and the caller logs its own lines. Log lines written while the bar is
// shown appear above it (see logging.h). Not thread-safe: one thread updates one Progress.
// Not done: nested bars, several bars at once.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace r1kit {

class Progress {
 public:
  // total <= 0: unknown, the bar shows the count and rate but no ETA.
  Progress(std::string label, int64_t total);
  ~Progress();  // finish() if the caller did not
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` items so far (absolute, not an increment); `extra` is shown after the ETA.
  void update(int64_t done, std::string extra = "");
  // Draws the final state and ends the line. Idempotent.
  void finish();
  // Whether this bar draws at all (stderr is a terminal).
  bool visible() const { return visible_; }

 private:
  void draw();

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  std::string extra_;
  bool visible_;
  bool finished_ = false;
  bool drawn_ = false;
  size_t width_;  // terminal columns - 1, so the line never wraps
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// The bar's text, cut to `width` characters. Pure, for tests.
std::string progress_line(std::string_view label, int64_t done, int64_t total, double elapsed_s, std::string_view extra,
                          size_t width);

}  // namespace r1kit
