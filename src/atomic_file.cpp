// AtomicFile: temp file + fsync + rename + fsync(dir). See atomic_file.h.
#include "src/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "src/error.h"

namespace r1kit {
namespace {

constexpr size_t kBufferBytes = 1 << 20;  // writes at least this big bypass the buffer

std::string errno_text() { return std::strerror(errno); }

std::string parent_dir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// write(2) may write less than asked or be interrupted; loop until all of it is out.
void write_all(int fd, const char* data, size_t nbytes, const std::string& name) {
  while (nbytes > 0) {
    ssize_t n = ::write(fd, data, nbytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(name + ": write failed: " + errno_text());
    }
    data += n;
    nbytes -= static_cast<size_t>(n);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temp_path_(path_ + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(temp_path_ + ": cannot create file: " + errno_text());
}

AtomicFile::~AtomicFile() { discard(); }

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(std::exchange(other.fd_, -1)),
      committed_(std::exchange(other.committed_, true)),
      bytes_written_(other.bytes_written_),
      buffer_(std::move(other.buffer_)) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    discard();
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
    fd_ = std::exchange(other.fd_, -1);
    committed_ = std::exchange(other.committed_, true);  // moved-from: nothing to remove
    bytes_written_ = other.bytes_written_;
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
  committed_ = true;  // discard once
}

void AtomicFile::write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

void AtomicFile::write(const void* data, size_t nbytes) {
  if (fd_ < 0) throw Error(path_ + ": write after commit");
  const char* p = static_cast<const char*>(data);
  bytes_written_ += nbytes;
  if (buffer_.size() + nbytes < kBufferBytes) {
    buffer_.append(p, nbytes);
    return;
  }
  flush_buffer();
  write_all(fd_, p, nbytes, temp_path_);
}

void AtomicFile::flush_buffer() {
  write_all(fd_, buffer_.data(), buffer_.size(), temp_path_);
  buffer_.clear();
}

void AtomicFile::commit() {
  if (fd_ < 0) throw Error(path_ + ": commit called twice");
  flush_buffer();
  if (::fsync(fd_) != 0) throw Error(temp_path_ + ": fsync failed: " + errno_text());
  if (::close(std::exchange(fd_, -1)) != 0) {
    throw Error(temp_path_ + ": close failed: " + errno_text());
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(path_ + ": cannot rename " + temp_path_ + " over it: " + errno_text());
  }
  committed_ = true;
  // Without this fsync the rename may still be only in the page cache after a power cut.
  const std::string dir = parent_dir(path_);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw Error(dir + ": cannot open directory to fsync: " + errno_text());
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  // Some filesystems (and FUSE mounts) cannot fsync a directory; the rename is done anyway.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) {
    throw Error(dir + ": fsync of directory failed: " + std::strerror(err));
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error(path + ": cannot create directory: " + ec.message());
}

}  // namespace r1kit
