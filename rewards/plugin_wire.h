// The byte protocol between r1kit and its reward plug-in host (plugin_host.h) over a
// socket: frames of [u32 kind][u64 payload length][payload]. Payloads are fixed-width
// native-endian numbers and length-prefixed strings: both ends are the same build on the
// same machine, so nothing needs a portable encoding, and strings carry any bytes (no NUL
// termination, no UTF-8 requirement).
//
//   hello    r1kit -> host  str library path, str options JSON
//   ready    host -> r1kit  u32 ok, str error (create failed, missing symbol, ...)
//   batch    r1kit -> host  u32 threads, u32 rows, rows x (cstr prompt, cstr completion, cstr fields JSON)
//   results  host -> r1kit  rows x (u32 status: 0 value, 1 skip, 2 error; f64 value; str why)
//   crash    host -> r1kit  i32 signal, i64 row   (from the host's signal handler, then it dies)
//   stuck    host -> r1kit  u32 n, n x i64 row    (answer to SIGUSR1: the rows being scored)
// A cstr is a str followed by a NUL byte, so the host hands the plug-in pointers into the
// received frame without copying a row.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace r1kit::rewards::wire {

enum class Kind : uint32_t { hello = 1, ready, batch, results, crash, stuck };
constexpr size_t kHeaderBytes = sizeof(uint32_t) + sizeof(uint64_t);
constexpr uint64_t kMaxFrameBytes = uint64_t{1} << 34;  // 16 GiB: a larger length means a broken stream

// Builds one frame's payload, the fields in order; send() writes it behind its header.
class Writer {
 public:
  void u32(uint32_t v) { put(&v, sizeof v); }
  void i32(int32_t v) { put(&v, sizeof v); }
  void i64(int64_t v) { put(&v, sizeof v); }
  void f64(double v) { put(&v, sizeof v); }
  void str(std::string_view s) {
    i64(static_cast<int64_t>(s.size()));
    put(s.data(), s.size());
  }
  void cstr(std::string_view s) {
    str(s);
    payload_.push_back('\0');
  }
  // Fields another Writer encoded (rows built in parallel, joined in order).
  void append(std::string_view encoded) { put(encoded.data(), encoded.size()); }
  std::string take() { return std::move(payload_); }
  void reserve(size_t bytes) { payload_.reserve(bytes); }
  // Sends the header and the payload as one frame; false when the other end is gone.
  bool send(int fd, Kind kind) const;

 private:
  void put(const void* p, size_t n) { payload_.append(static_cast<const char*>(p), n); }
  std::string payload_;
};

// Reads a payload's fields in order; a short or malformed payload throws r1kit::Error.
class Reader {
 public:
  explicit Reader(std::string_view payload) : rest_(payload) {}
  uint32_t u32() { return get<uint32_t>(); }
  int32_t i32() { return get<int32_t>(); }
  int64_t i64() { return get<int64_t>(); }
  double f64() { return get<double>(); }
  std::string str();
  // A cstr's text, pointing into the payload (which must outlive it).
  const char* cstr();

 private:
  template <class T>
  T get() {
    T v;
    take(&v, sizeof v);
    return v;
  }
  void take(void* out, size_t n);  // throws when fewer than n bytes are left
  std::string_view rest_;
};

// Writes all of `bytes` to `fd` (retrying on EINTR and short writes); `more`: more follows
// at once (MSG_MORE). False when the other end is gone (no SIGPIPE: MSG_NOSIGNAL).
bool write_all(int fd, std::string_view bytes, bool more = false);

// Reads one whole frame from `fd`, waiting until `deadline`. `buffer` keeps bytes read past
// the frame for the next call.
enum class ReadStatus { frame, closed, timeout };
ReadStatus read_frame(int fd, std::string& buffer, std::chrono::steady_clock::time_point deadline, Kind& kind,
                      std::string& payload);

}  // namespace r1kit::rewards::wire
