// AtomicFile: write a file so that a reader sees the old contents or the new, never a mix.
// Bytes go to `path.tmp.<pid>` in the same directory; commit() flushes, fsyncs the file,
// renames it over `path` (atomic within one filesystem, POSIX rename(2)) and fsyncs the
// directory so the rename itself survives a power cut. Destroying an AtomicFile without
// commit() (an exception, an early return) removes the temp file and leaves `path` as it was.
// Not done: atomicity across several files (a sharded checkpoint); write those into a fresh
// directory and rename the directory. One writer per path at a time (the temp name is per
// process).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace r1kit {

class AtomicFile {
 public:
  // Creates the temp file; throws r1kit::Error naming the path and strerror on failure.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // without commit(): closes and removes the temp file, never throws
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view bytes);
  void write(const void* data, size_t nbytes);
  // Flush + fsync + rename over path() + fsync(directory). At most once; a failure throws
  // and leaves the target untouched (the destructor then removes the temp file).
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  size_t bytes_written() const { return bytes_written_; }

 private:
  void flush_buffer();
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
  size_t bytes_written_ = 0;
  // Small writes (JSONL rows) are gathered here so each one is not a syscall.
  std::string buffer_;
};

// The whole of `bytes` to `path`, atomically (AtomicFile + commit()).
void write_file_atomic(const std::string& path, std::string_view bytes);

// mkdir -p; throws r1kit::Error naming the path when it cannot be created.
void make_dirs(const std::string& path);

}  // namespace r1kit
