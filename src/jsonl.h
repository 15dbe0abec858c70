// JSONL (one JSON object per line): datasets, rollouts, metrics.jsonl.
//
// JsonlReader streams rows and names FILE:LINE in every error; blank lines are skipped and
// every other line must be a JSON object. JsonlWriter writes a whole file atomically
// (AtomicFile), so a crash leaves the previous file. JsonlAppender is for logs: each row is
// one write(2) of one line, so a kill loses at most the row being written.
// Does not: read compressed files, or accept JSON values that span lines.
// Reference: https://jsonlines.org (UTF-8, '\n' separated; a trailing '\r' is tolerated).
#pragma once
#include <cstddef>
#include <fstream>
#include <string>
#include <vector>

#include "src/atomic_file.h"
#include "src/config.h"

namespace r1kit {

class JsonlReader {
 public:
  JsonlReader() = default;
  explicit JsonlReader(const std::string& path) { open(path); }
  // Throws r1kit::Error "PATH: cannot open file" when it cannot be read.
  void open(const std::string& path);
  // Next non-blank row into `row`; false at end of file. A line that is not valid JSON, or
  // not an object, throws r1kit::Error "PATH:LINE: ...".
  bool next(Json& row);
  // The same, keeping the keys in the order of the line (chat rows: a tool schema prints as
  // the user wrote it).
  bool next(nlohmann::ordered_json& row);
  // 1-based line number of the row last returned by next() (0 before the first).
  size_t line() const { return line_; }
  const std::string& path() const { return path_; }

 private:
  template <class J>
  bool next_row(J& row);

  std::string path_;
  std::ifstream in_;
  std::string text_;  // the current line, reused between calls
  size_t line_ = 0;
};

// Every row of the file, in order.
std::vector<Json> read_jsonl(const std::string& path);

class JsonlWriter {
 public:
  explicit JsonlWriter(const std::string& path) : file_(path) {}
  // `row` must be a JSON object (so the file reads back with JsonlReader).
  void write(const Json& row);
  void write(const nlohmann::ordered_json& row);  // keys in their order
  // Makes the file visible at `path`; without it the previous file stays.
  void commit() { file_.commit(); }
  size_t rows() const { return rows_; }

 private:
  AtomicFile file_;
  size_t rows_ = 0;
};

void write_jsonl_atomic(const std::string& path, const std::vector<Json>& rows);

// Resume support for step-keyed logs (metrics, samples): rewrites `path` atomically without
// the rows whose integer "step" is > `step`, and without a partial last row that a killed run
// left (one warning). A row without an integer "step" is an error naming path:line. A missing
// file is left missing.
void drop_rows_after_step(const std::string& path, int64_t step);

class JsonlAppender {
 public:
  // Opens for append, creating the file if absent. If a previous run was killed mid-row,
  // the partial line is ended first so the next row starts on a line of its own.
  explicit JsonlAppender(const std::string& path);
  ~JsonlAppender();
  JsonlAppender(JsonlAppender&& other) noexcept;
  JsonlAppender& operator=(JsonlAppender&& other) noexcept;
  JsonlAppender(const JsonlAppender&) = delete;
  JsonlAppender& operator=(const JsonlAppender&) = delete;

  // One line, one write(2): the row is in the kernel when this returns (no fsync: a power
  // cut may still lose the last rows, a killed process does not).
  void write(const Json& row);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace r1kit
