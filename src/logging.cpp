// Leveled stderr logging: see logging.h.
#include "src/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace r1kit::log {
namespace {

// Dynamic initialization before main(): elapsed times count from process start.
const auto g_start = std::chrono::steady_clock::now();
constexpr int kUnset = -1;
std::atomic<int> g_level{kUnset};

std::mutex& out_mutex() {
  static std::mutex mu;
  return mu;
}
std::string& status_line() {  // guarded by out_mutex()
  static std::string line;
  return line;
}

constexpr std::string_view kClearLine = "\r\033[K";  // to column 0, erase to end of line

void emit(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

Level level_from_env() {
  const char* env = std::getenv("R1KIT_LOG");
  Level lvl = Level::Info;
  if (env != nullptr && *env != '\0' && !parse_level(env, lvl)) {
    std::lock_guard<std::mutex> lock(out_mutex());
    emit(fmt::format("[W] R1KIT_LOG={} is not one of debug|info|warn|error; using info\n", env));
  }
  return lvl;
}

}  // namespace

bool parse_level(std::string_view text, Level& out) {
  if (text == "debug")
    out = Level::Debug;
  else if (text == "info")
    out = Level::Info;
  else if (text == "warn" || text == "warning")
    out = Level::Warn;
  else if (text == "error")
    out = Level::Error;
  else
    return false;
  return true;
}

Level level() {
  int lvl = g_level.load(std::memory_order_relaxed);
  if (lvl == kUnset) {
    // Two threads may both read the env on first use; they agree, so the race is harmless.
    int expected = kUnset;
    g_level.compare_exchange_strong(expected, static_cast<int>(level_from_env()));
    lvl = g_level.load(std::memory_order_relaxed);
  }
  return static_cast<Level>(lvl);
}

void set_level(Level lvl) { g_level.store(static_cast<int>(lvl), std::memory_order_relaxed); }

bool enabled(Level lvl) { return static_cast<int>(lvl) >= static_cast<int>(level()); }

void write(Level lvl, std::string_view message) {
  static constexpr char kTags[] = {'D', 'I', 'W', 'E'};
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - g_start).count();
  std::string line = fmt::format("[{} {:.3f}s] {}\n", kTags[static_cast<int>(lvl)], elapsed, message);
  std::lock_guard<std::mutex> lock(out_mutex());
  const std::string& status = status_line();
  if (!status.empty()) line = std::string(kClearLine) + line + status;
  emit(line);
}

namespace detail {

void draw_status_line(std::string_view line) {
  std::lock_guard<std::mutex> lock(out_mutex());
  status_line().assign(line);
  emit(std::string(kClearLine) + std::string(line));
}

void end_status_line(std::string_view line) {
  std::lock_guard<std::mutex> lock(out_mutex());
  status_line().clear();
  emit(std::string(kClearLine) + std::string(line) + "\n");
}

}  // namespace detail
}  // namespace r1kit::log
