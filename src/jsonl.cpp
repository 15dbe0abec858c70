// JSONL reading and writing: see jsonl.h.
#include "src/jsonl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "src/error.h"
#include "src/logging.h"

namespace r1kit {
namespace {

bool is_blank(const std::string& s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

// The part of nlohmann's message a human needs: from "syntax error" on, without the
// "[json.exception.parse_error.101] parse error at line 1, column 5: " prefix.
std::string short_message(const std::string& what) {
  const auto pos = what.find("syntax error");
  if (pos != std::string::npos) return what.substr(pos);
  const auto bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

// `row` as one line, invalid UTF-8 replaced (dump_text). `where` names the row in errors
// ("out.jsonl: row 3").
std::string dump_row(const Json& row, const std::string& where) {
  if (!row.is_object()) {
    throw Error(where + ": expected a JSON object, got " + row.type_name());
  }
  return dump_text(row) + "\n";
}

}  // namespace

void JsonlReader::open(const std::string& path) {
  path_ = path;
  line_ = 0;
  in_.close();
  in_.clear();
  in_.open(path, std::ios::binary);
  if (!in_) throw Error(path + ": cannot open file: " + std::strerror(errno));
}

template <class J>
bool JsonlReader::next_row(J& row) {
  while (std::getline(in_, text_)) {
    ++line_;
    if (is_blank(text_)) continue;
    const std::string where = path_ + ":" + std::to_string(line_);
    try {
      row = J::parse(text_);
    } catch (const Json::parse_error& e) {
      // One line, so the byte offset is the column.
      throw Error(where + ": invalid JSON: " + short_message(e.what()) + " (column " + std::to_string(e.byte) + ")");
    } catch (const Json::exception& e) {  // e.g. a number out of range
      throw Error(where + ": invalid JSON: " + short_message(e.what()));
    }
    if (!row.is_object()) {
      throw Error(where + ": expected a JSON object, got " + std::string(row.type_name()));
    }
    return true;
  }
  if (in_.bad()) throw Error(path_ + ": read error after line " + std::to_string(line_));
  return false;
}

bool JsonlReader::next(Json& row) { return next_row(row); }
bool JsonlReader::next(nlohmann::ordered_json& row) { return next_row(row); }

std::vector<Json> read_jsonl(const std::string& path) {
  JsonlReader reader(path);
  std::vector<Json> rows;
  Json row;
  while (reader.next(row)) rows.push_back(std::move(row));
  return rows;
}

void JsonlWriter::write(const Json& row) {
  file_.write(dump_row(row, file_.path() + ": row " + std::to_string(rows_)));
  ++rows_;
}

void JsonlWriter::write(const nlohmann::ordered_json& row) {
  const std::string where = file_.path() + ": row " + std::to_string(rows_);
  if (!row.is_object()) throw Error(where + ": expected a JSON object, got " + row.type_name());
  file_.write(row.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  ++rows_;
}

void write_jsonl_atomic(const std::string& path, const std::vector<Json>& rows) {
  JsonlWriter writer(path);
  for (const Json& row : rows) writer.write(row);
  writer.commit();
}

JsonlAppender::JsonlAppender(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path + ": cannot open for append: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_size > 0) {
    char last = '\n';
    if (::pread(fd_, &last, 1, st.st_size - 1) == 1 && last != '\n') {
      // The previous writer died mid-row: end that line so it stays the only bad one.
      if (::write(fd_, "\n", 1) != 1) {
        throw Error(path + ": write failed: " + std::strerror(errno));
      }
    }
  }
}

JsonlAppender::~JsonlAppender() {
  if (fd_ >= 0) ::close(fd_);
}

JsonlAppender::JsonlAppender(JsonlAppender&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

JsonlAppender& JsonlAppender::operator=(JsonlAppender&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

void JsonlAppender::write(const Json& row) {
  if (fd_ < 0) throw Error(path_ + ": write to a closed appender");
  const std::string line = dump_row(row, path_ + ": appended row");
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {  // a short write is rare on a regular file, but possible (disk full)
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": write failed: " + std::strerror(errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void drop_rows_after_step(const std::string& path, int64_t step) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  // Not read_jsonl: a run killed mid-row may leave one unparseable line, and resuming must
  // drop it, not refuse to start.
  std::vector<Json> keep;
  std::string text;
  for (size_t line = 1; std::getline(in, text); ++line) {
    const std::string where = path + ":" + std::to_string(line);
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json row = Json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) {
      log::warn("{}: dropping a partial row (a run killed while writing it)", where);
      continue;
    }
    const Json* s = row.is_object() && row.contains("step") ? &row["step"] : nullptr;
    if (s == nullptr || !s->is_number_integer()) throw Error(where + ": row without an integer \"step\"");
    if (s->get<int64_t>() <= step) keep.push_back(std::move(row));
  }
  in.close();
  write_jsonl_atomic(path, keep);
}

}  // namespace r1kit
