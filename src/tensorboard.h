// TensorboardWriter: scalar summaries in TensorBoard's event-file format, with no protobuf or
// TensorFlow dependency. The file DIR/events.out.tfevents.<unix s>.<host>.<pid>.r1kit is a
// sequence of TFRecords (u64 length, masked CRC32C of it, data, masked CRC32C of the data,
// all little-endian), each data a hand-encoded tensorboard.Event proto; the first record is
// file_version "brain.Event:2". Each event is one write(2), so a killed run keeps every
// finished event. Does not: write histograms, images, text or graphs (scalars only).
// Reference: tensorboard/compat/proto/{event,summary}.proto (field numbers checked against
// the 2.21 descriptors) and TensorFlow's lib/io/record_writer.cc record framing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace r1kit {

namespace tensorboard {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it.
uint32_t crc32c(std::string_view data);
// TFRecord's masked CRC: rotate right by 15 and add a constant, so a CRC computed over data
// that itself holds CRCs does not degenerate.
uint32_t mask_crc(uint32_t crc);
// One TFRecord: the framing around `data`.
std::string tfrecord(std::string_view data);

// Serialized Event protos (the record data).
std::string encode_file_version_event(double wall_time, std::string_view version);
// Summary with one Value{tag, simple_value} per entry, in order; values are stored as float.
std::string encode_scalars_event(double wall_time, int64_t step,
                                 const std::vector<std::pair<std::string, double>>& values);
// SessionLog{status: START} at `step`.
std::string encode_session_start_event(double wall_time, int64_t step);

}  // namespace tensorboard

class TensorboardWriter {
 public:
  // Creates `dir` if needed and a new event file in it (never appends to an existing one).
  // Throws r1kit::Error naming the path when it cannot be created.
  explicit TensorboardWriter(const std::string& dir);
  ~TensorboardWriter();
  TensorboardWriter(const TensorboardWriter&) = delete;
  TensorboardWriter& operator=(const TensorboardWriter&) = delete;

  void add_scalar(const std::string& tag, double value, int64_t step);
  // One Event holding every entry (TensorBoard shows each tag as its own chart).
  void add_scalars(const std::map<std::string, double>& values, int64_t step);
  // Marks a restart at `step`: TensorBoard's loader then drops the scalars it already read
  // with step >= `step` (EventAccumulator purges on SessionLog.START for file_version 2), so a
  // resumed run does not draw two lines over the same steps.
  void add_session_start(int64_t step);
  // Every event is already in the kernel when add_* returns; flush() also asks the disk
  // (fdatasync), for callers that want the log to survive a power cut, e.g. at a checkpoint.
  void flush();

  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);

  std::string path_;
  int fd_ = -1;
};

}  // namespace r1kit
