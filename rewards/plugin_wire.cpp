// Frames between r1kit and the plug-in host (see plugin_wire.h).
#include "rewards/plugin_wire.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/error.h"

namespace r1kit::rewards::wire {

bool Writer::send(int fd, Kind kind) const {
  char header[kHeaderBytes];
  const auto k = static_cast<uint32_t>(kind);
  const uint64_t n = payload_.size();
  std::memcpy(header, &k, sizeof k);
  std::memcpy(header + sizeof k, &n, sizeof n);
  return write_all(fd, {header, sizeof header}, /*more=*/true) && write_all(fd, payload_);
}

void Reader::take(void* out, size_t n) {
  if (rest_.size() < n) throw Error("plug-in host: truncated message");
  std::memcpy(out, rest_.data(), n);
  rest_.remove_prefix(n);
}

std::string Reader::str() {
  const int64_t n = i64();
  if (n < 0 || static_cast<uint64_t>(n) > rest_.size()) throw Error("plug-in host: truncated message");
  std::string s(rest_.substr(0, static_cast<size_t>(n)));
  rest_.remove_prefix(static_cast<size_t>(n));
  return s;
}

const char* Reader::cstr() {
  const int64_t n = i64();
  if (n < 0 || static_cast<uint64_t>(n) >= rest_.size() || rest_[static_cast<size_t>(n)] != '\0') {
    throw Error("plug-in host: truncated message");
  }
  const char* text = rest_.data();
  rest_.remove_prefix(static_cast<size_t>(n) + 1);
  return text;
}

bool write_all(int fd, std::string_view bytes, bool more) {
  while (!bytes.empty()) {
    const ssize_t w = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(w));
  }
  return true;
}

namespace {

// Waits until `fd` is readable or `deadline`; false at the deadline or when poll fails.
bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    pollfd p{fd, POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(wait, 1 << 30)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// Up to `n` bytes into `out`: > 0 read, 0 closed, -1 deadline passed.
ssize_t receive(int fd, char* out, size_t n, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    if (!wait_readable(fd, deadline)) return std::chrono::steady_clock::now() >= deadline ? -1 : 0;
    const ssize_t got = recv(fd, out, n, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return got < 0 ? 0 : got;
  }
}

}  // namespace

ReadStatus read_frame(int fd, std::string& buffer, std::chrono::steady_clock::time_point deadline, Kind& kind,
                      std::string& payload) {
  char chunk[1 << 12];
  while (buffer.size() < kHeaderBytes) {
    const ssize_t got = receive(fd, chunk, sizeof chunk, deadline);
    if (got <= 0) return got < 0 ? ReadStatus::timeout : ReadStatus::closed;
    buffer.append(chunk, static_cast<size_t>(got));
  }
  uint32_t k;
  uint64_t n;
  std::memcpy(&k, buffer.data(), sizeof k);
  std::memcpy(&n, buffer.data() + sizeof k, sizeof n);
  if (n > kMaxFrameBytes) return ReadStatus::closed;  // not a frame of ours: the stream is broken
  // The payload straight into its own string: no intermediate copy of a large batch.
  payload.resize(n);
  size_t have = std::min<size_t>(n, buffer.size() - kHeaderBytes);
  std::memcpy(payload.data(), buffer.data() + kHeaderBytes, have);
  const std::string header = buffer.substr(0, kHeaderBytes);
  buffer.erase(0, kHeaderBytes + have);
  while (have < n) {
    const ssize_t got = receive(fd, payload.data() + have, n - have, deadline);
    if (got <= 0) {
      buffer.insert(0, header + payload.substr(0, have));  // a later call sees the frame from its start
      return got < 0 ? ReadStatus::timeout : ReadStatus::closed;
    }
    have += static_cast<size_t>(got);
  }
  kind = static_cast<Kind>(k);
  return ReadStatus::frame;
}

}  // namespace r1kit::rewards::wire
