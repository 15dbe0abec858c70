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

std::string Writer::frame(Kind kind) const {
  std::string out(kHeaderBytes, '\0');
  const auto k = static_cast<uint32_t>(kind);
  const uint64_t n = payload_.size();
  std::memcpy(out.data(), &k, sizeof k);
  std::memcpy(out.data() + sizeof k, &n, sizeof n);
  return out + payload_;
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

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t w = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(w));
  }
  return true;
}

ReadStatus read_frame(int fd, std::string& buffer, std::chrono::steady_clock::time_point deadline, Kind& kind,
                      std::string& payload) {
  char chunk[1 << 16];
  while (true) {
    if (buffer.size() >= kHeaderBytes) {
      uint32_t k;
      uint64_t n;
      std::memcpy(&k, buffer.data(), sizeof k);
      std::memcpy(&n, buffer.data() + sizeof k, sizeof n);
      if (buffer.size() - kHeaderBytes >= n) {
        kind = static_cast<Kind>(k);
        payload = buffer.substr(kHeaderBytes, n);
        buffer.erase(0, kHeaderBytes + n);
        return ReadStatus::frame;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return ReadStatus::timeout;
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    pollfd p{fd, POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(wait, 1 << 30)));
    if (rc < 0 && errno != EINTR) return ReadStatus::closed;
    if (rc <= 0) continue;
    const ssize_t got = recv(fd, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return ReadStatus::closed;
    buffer.append(chunk, static_cast<size_t>(got));
  }
}

}  // namespace r1kit::rewards::wire
