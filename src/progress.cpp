// Terminal progress bar: see progress.h.
#include "src/progress.h"

#include <fmt/core.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "src/logging.h"

namespace r1kit {
namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr int64_t kBarCells = 24;

// "0:07", "12:34", "1:02:03".
std::string duration_text(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

size_t terminal_width() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) return ws.ws_col - 1;
  return 99;
}

}  // namespace

std::string progress_line(std::string_view label, int64_t done, int64_t total, double elapsed_s, std::string_view extra,
                          size_t width) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  std::string line(label);
  if (total > 0) {
    const int64_t filled = std::clamp<int64_t>(done * kBarCells / total, 0, kBarCells);
    line += " [";
    line.append(static_cast<size_t>(filled), '#');
    line.append(static_cast<size_t>(kBarCells - filled), '.');
    line += ']';
    line += fmt::format(" {}/{}", done, total);
  } else {
    line += fmt::format(" {}", done);
  }
  line += rate >= 10 ? fmt::format(" {:.0f}/s", rate) : fmt::format(" {:.2f}/s", rate);
  if (total > 0) {
    const bool known = rate > 0 || done >= total;
    const double eta = done >= total ? 0.0 : static_cast<double>(total - done) / rate;
    line += " eta ";
    line += known ? duration_text(eta) : "?";
  }
  if (!extra.empty()) {
    line += ' ';
    line += extra;
  }
  if (line.size() > width) line.resize(width);
  return line;
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(total),
      visible_(::isatty(STDERR_FILENO) == 1),
      width_(visible_ ? terminal_width() : 99),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(int64_t done, std::string extra) {
  done_ = done;
  extra_ = std::move(extra);
  if (!visible_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < kRedrawInterval && !(total_ > 0 && done_ >= total_)) return;
  last_draw_ = now;
  draw();
}

void Progress::draw() {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  log::detail::draw_status_line(progress_line(label_, done_, total_, elapsed, extra_, width_));
  drawn_ = true;
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!visible_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  log::detail::end_status_line(progress_line(label_, done_, total_, elapsed, extra_, width_));
}

}  // namespace r1kit
