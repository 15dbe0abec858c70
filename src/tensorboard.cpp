// TensorBoard event files by hand: CRC32C, TFRecord framing, protobuf wire encoding. See
// tensorboard.h. Deviation from the TF writer: a second writer opened in the same second by
// the same process gets ".001", ".002", ... after the name instead of overwriting the first
// (readers load a directory's event files in name order, and the suffixed name sorts after).
#include "src/tensorboard.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "src/error.h"

namespace r1kit {
namespace tensorboard {
namespace {

// Byte-at-a-time table for the reflected Castagnoli polynomial, built at compile time.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// Protobuf wire types.
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

// Event (event.proto) and the messages it holds; numbers checked against the 2.21 descriptors.
constexpr uint32_t kEventWallTime = 1;     // double
constexpr uint32_t kEventStep = 2;         // int64
constexpr uint32_t kEventFileVersion = 3;  // string (oneof what)
constexpr uint32_t kEventSummary = 5;      // Summary (oneof what)
constexpr uint32_t kEventSessionLog = 7;   // SessionLog (oneof what)
constexpr uint32_t kSummaryValue = 1;      // repeated Summary.Value
constexpr uint32_t kValueTag = 1;          // string
constexpr uint32_t kValueSimpleValue = 2;  // float (oneof value)
constexpr uint32_t kSessionLogStatus = 1;  // enum SessionStatus
constexpr uint64_t kSessionStart = 1;      // SessionLog.START

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, uint32_t field, uint32_t wire_type) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | wire_type);
}

// Little-endian regardless of the host, as protobuf's fixed types and TFRecord want.
void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

// The fields every Event starts with. step 0 is written too: proto3 allows a default value on
// the wire, and it keeps the layout the same for every step.
std::string event_header(double wall_time, int64_t step) {
  std::string out;
  uint64_t bits;
  std::memcpy(&bits, &wall_time, sizeof(bits));
  put_key(out, kEventWallTime, kFixed64);
  put_le(out, bits, 8);
  put_key(out, kEventStep, kVarint);
  put_varint(out, static_cast<uint64_t>(step));  // int64: negative steps as 10-byte varints
  return out;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = kCrc32cTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string tfrecord(std::string_view data) {
  std::string header;
  put_le(header, data.size(), 8);
  std::string out = header;
  put_le(out, mask_crc(crc32c(header)), 4);
  out.append(data);
  put_le(out, mask_crc(crc32c(data)), 4);
  return out;
}

std::string encode_file_version_event(double wall_time, std::string_view version) {
  std::string out = event_header(wall_time, 0);
  put_bytes(out, kEventFileVersion, version);
  return out;
}

std::string encode_scalars_event(double wall_time, int64_t step,
                                 const std::vector<std::pair<std::string, double>>& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string v;
    put_bytes(v, kValueTag, tag);
    const float f = static_cast<float>(value);  // simple_value is a float in the proto
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    put_key(v, kValueSimpleValue, kFixed32);
    put_le(v, bits, 4);
    put_bytes(summary, kSummaryValue, v);
  }
  std::string out = event_header(wall_time, step);
  put_bytes(out, kEventSummary, summary);
  return out;
}

std::string encode_session_start_event(double wall_time, int64_t step) {
  std::string log;
  put_key(log, kSessionLogStatus, kVarint);
  put_varint(log, kSessionStart);
  std::string out = event_header(wall_time, step);
  put_bytes(out, kEventSessionLog, log);
  return out;
}

}  // namespace tensorboard

TensorboardWriter::TensorboardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create TensorBoard directory: " + ec.message());

  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  for (char* p = host; *p; ++p) {
    if (*p == '/') *p = '_';  // a file name, not a path
  }
  const auto seconds = static_cast<long long>(tensorboard::now_seconds());
  const std::string base = fmt::format("{}/events.out.tfevents.{}.{}.{}.r1kit", dir, seconds, host, ::getpid());
  for (int n = 0; fd_ < 0; ++n) {
    path_ = n == 0 ? base : fmt::format("{}.{:03d}", base, n);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || n >= 999)) {
      throw Error(path_ + ": cannot create TensorBoard event file: " + std::strerror(errno));
    }
  }
  write_record(tensorboard::encode_file_version_event(tensorboard::now_seconds(), "brain.Event:2"));
}

TensorboardWriter::~TensorboardWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void TensorboardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  write_record(tensorboard::encode_scalars_event(tensorboard::now_seconds(), step, {{tag, value}}));
}

void TensorboardWriter::add_scalars(const std::map<std::string, double>& values, int64_t step) {
  if (values.empty()) return;  // an Event with an empty Summary shows nothing
  std::vector<std::pair<std::string, double>> list(values.begin(), values.end());
  write_record(tensorboard::encode_scalars_event(tensorboard::now_seconds(), step, list));
}

void TensorboardWriter::add_session_start(int64_t step) {
  write_record(tensorboard::encode_session_start_event(tensorboard::now_seconds(), step));
}

void TensorboardWriter::flush() {
  if (::fdatasync(fd_) != 0) throw Error(path_ + ": fdatasync failed: " + std::strerror(errno));
}

void TensorboardWriter::write_record(const std::string& event) {
  // The whole record in one write(2): a reader (or a kill) never sees half of it, short of a
  // full disk, which we report.
  const std::string record = tensorboard::tfrecord(event);
  const char* p = record.data();
  size_t left = record.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": write failed: " + std::strerror(errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace r1kit
