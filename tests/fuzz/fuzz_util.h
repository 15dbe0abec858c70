// Shared by the libFuzzer targets (tests/fuzz, README "Fuzzing"): the input as a real file for
// parsers that take a path (an anonymous memfd, opened again through /proc/self/fd), and the
// rule every target checks: bad input may only raise r1kit::Error, the one-line user error.
// Anything else that escapes (std::out_of_range, a JSON library exception, bad_alloc), a
// sanitizer report or a run past libFuzzer's -timeout is a finding.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "src/config.h"
#include "src/error.h"

namespace r1kit::fuzz {

// The fuzzer's bytes as a file whose path() the parser opens. One per input.
class InputFile {
 public:
  InputFile(const uint8_t* data, size_t size) : fd_(memfd_create("r1kit-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }
  ~InputFile() { close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

inline std::string_view text_of(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `parse`; r1kit::Error (bad input, reported cleanly) is the expected way to fail.
template <class F>
void expect_clean(F&& parse) {
  try {
    parse();
  } catch (const Error&) {
  }
}

// A string a parser or reward hands back for logs and JSONL must be valid UTF-8: nlohmann's
// strict dump throws on anything else, which escapes as a finding.
inline void require_utf8(const std::string& s) { (void)Json(s).dump(); }

}  // namespace r1kit::fuzz
