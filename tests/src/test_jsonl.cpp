// JSONL: round trip, blank lines, FILE:LINE errors, atomic writer, crash-tolerant appender.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "src/error.h"
#include "src/jsonl.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;  // tests/test_util.h

void put(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message of the r1kit::Error that read_jsonl(path) throws ("" if none).
std::string read_error(const std::string& path) {
  try {
    read_jsonl(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

TEST(Jsonl, RoundTrip) {
  TempDir dir;
  const std::string path = dir / "rows.jsonl";
  const std::vector<Json> rows = {
      Json{{"prompt", "1+1="}, {"answer", "2"}},
      Json{{"prompt", "caf\u00e9 \"quoted\"\nnewline"}, {"ids", {1, 2, 3}}},
      Json{{"nested", {{"x", 0.5}}}},
  };
  write_jsonl_atomic(path, rows);
  // One row per line: the newline inside the string is escaped, not written raw.
  const std::string text = slurp(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_EQ(read_jsonl(path), rows);
}

TEST(Jsonl, SkipsBlankLinesAndCountsThem) {
  TempDir dir;
  const std::string path = dir / "blank.jsonl";
  put(path, "{\"a\":1}\n\n  \t\n{\"a\":2}\r\n");  // CRLF on the last line is tolerated
  JsonlReader reader(path);
  Json row;
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row["a"], 1);
  EXPECT_EQ(reader.line(), 1u);
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row["a"], 2);
  EXPECT_EQ(reader.line(), 4u);  // lines 2 and 3 were blank
  EXPECT_FALSE(reader.next(row));
}

TEST(Jsonl, MalformedLineNamesFileAndLine) {
  TempDir dir;
  const std::string path = dir / "bad.jsonl";
  put(path, "{\"a\":1}\n\n{\"a\": tru}\n");
  const std::string msg = read_error(path);
  EXPECT_TRUE(starts_with(msg, path + ":3: invalid JSON: ")) << msg;
}

TEST(Jsonl, NonObjectLineIsAnError) {
  TempDir dir;
  const std::string path = dir / "array.jsonl";
  put(path, "{\"a\":1}\n[1, 2]\n");
  EXPECT_EQ(read_error(path), path + ":2: expected a JSON object, got array");
}

TEST(Jsonl, MissingFileNamesPath) {
  TempDir dir;
  const std::string path = dir / "nope.jsonl";
  EXPECT_TRUE(starts_with(read_error(path), path + ": cannot open file")) << read_error(path);
}

TEST(Jsonl, WriterWithoutCommitKeepsPreviousFile) {
  TempDir dir;
  const std::string path = dir / "data.jsonl";
  write_jsonl_atomic(path, {Json{{"v", 1}}});
  {
    JsonlWriter w(path);
    w.write(Json{{"v", 2}});
    EXPECT_EQ(w.rows(), 1u);
  }  // destroyed without commit: the crash case
  EXPECT_EQ(read_jsonl(path), (std::vector<Json>{Json{{"v", 1}}}));
}

TEST(Jsonl, WriterRejectsNonObjectRow) {
  TempDir dir;
  JsonlWriter w(dir / "x.jsonl");
  w.write(Json{{"ok", true}});
  try {
    w.write(Json::array({1, 2}));
    FAIL() << "expected r1kit::Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir / "x.jsonl" + ": row 1: expected a JSON object, got array");
  }
}

// A model's raw byte tokens decode to text that is not UTF-8 (issue 12, case 8: a GRPO run
// stopped at "samples.jsonl: appended row: invalid UTF-8 byte"). Writers replace such bytes
// by U+FFFD, as transformers' decode does, and never stop over text.
TEST(Jsonl, InvalidUtf8IsReplacedNotAnError) {
  TempDir dir;
  const std::string bad = std::string("ab\xff.\xc3") + "z";  // a stray byte and a cut 2-byte sequence
  {
    JsonlAppender log(dir / "samples.jsonl");
    log.write(Json{{"completion", bad}});
  }
  JsonlWriter w(dir / "out.jsonl");
  w.write(Json{{"why", bad}});
  w.commit();
  const std::string replaced = "ab\xef\xbf\xbd.\xef\xbf\xbdz";  // U+FFFD for each
  EXPECT_EQ(read_jsonl(dir / "samples.jsonl")[0]["completion"], replaced);
  EXPECT_EQ(read_jsonl(dir / "out.jsonl")[0]["why"], replaced);
}

TEST(Jsonl, AppenderAppendsAcrossReopen) {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  {
    JsonlAppender log(path);
    log.write(Json{{"step", 1}});
    // Written through to the file at once, not held in a buffer until close.
    EXPECT_EQ(slurp(path), "{\"step\":1}\n");
    log.write(Json{{"step", 2}});
  }
  JsonlAppender again(path);
  again.write(Json{{"step", 3}});
  EXPECT_EQ(slurp(path), "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
}

TEST(Jsonl, AppenderEndsAPartialLineLeftByAKilledRun) {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  put(path, "{\"step\":1}\n{\"step\":");  // the previous run died mid-row
  JsonlAppender(path).write(Json{{"step", 2}});
  EXPECT_EQ(slurp(path), "{\"step\":1}\n{\"step\":\n{\"step\":2}\n");
  // Only the torn row is bad, and the error says which line it is.
  EXPECT_TRUE(starts_with(read_error(path), path + ":2: invalid JSON")) << read_error(path);
}

}  // namespace
}  // namespace r1kit

namespace r1kit {
namespace {

// Resume of step-keyed logs: rows after the checkpoint's step and a row torn by a kill go;
// a row without a step is an error naming the line.
TEST(Jsonl, DropRowsAfterStep) {
  testing::TempDir dir;
  const std::string path = dir / "samples.jsonl";
  std::ofstream(path) << "{\"step\": 1, \"x\": \"a\"}\n{\"step\": 2}\n{\"step\": 3}\n{\"step\": 2, \"late\": "
                         "true}\n{\"step\": 4, \"x\": \"tor";
  drop_rows_after_step(path, 2);
  const std::vector<Json> rows = read_jsonl(path);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["x"], "a");
  EXPECT_EQ(rows[2]["late"], true);
  drop_rows_after_step(dir / "absent.jsonl", 2);  // nothing to do
  EXPECT_FALSE(std::filesystem::exists(dir / "absent.jsonl"));
  std::ofstream(path) << "{\"step\": 1}\n{\"no_step\": 1}\n";
  try {
    drop_rows_after_step(path, 5);
    FAIL() << "a row without a step must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("samples.jsonl:2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit
