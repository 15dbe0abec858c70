// Leveled log lines on stderr: "[I 12.345s] step 3 loss 0.1234".
//
// log::info("step {} loss {:.4f}", step, loss) formats with fmt (checked at compile time)
// and writes one line under a mutex, so lines from different threads never interleave. The
// tag is D/I/W/E and the time is seconds since the process started. The level comes from
// R1KIT_LOG=debug|info|warn|error (default info); a disabled call does not format.
// Not done: files, rotation, structured fields (metrics go to metrics.jsonl, see jsonl.h).
// A Progress bar on a terminal stays below the log lines (log::detail::*_status_line).
#pragma once
#include <fmt/core.h>

#include <string>
#include <string_view>
#include <utility>

namespace r1kit::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

// "debug", "info", "warn" (or "warning"), "error"; false for anything else.
bool parse_level(std::string_view text, Level& out);
// The current threshold: R1KIT_LOG at the first call, or what set_level() set.
Level level();
void set_level(Level level);
bool enabled(Level level);
// One line: the tag and elapsed time are prepended, '\n' appended.
void write(Level level, std::string_view message);

template <class... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Debug)) write(Level::Debug, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Info)) write(Level::Info, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Warn)) write(Level::Warn, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Error)) write(Level::Error, fmt::format(format, std::forward<Args>(args)...));
}

namespace detail {
// The terminal status line (a progress bar): drawn in place with '\r'; log lines written
// while it is shown go above it and it is redrawn. end_status_line leaves `line` on screen.
void draw_status_line(std::string_view line);
void end_status_line(std::string_view line);
}  // namespace detail

}  // namespace r1kit::log
