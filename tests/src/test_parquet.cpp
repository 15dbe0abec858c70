// Parquet rows (src/parquet_rows.h) against pyarrow: tests/parity/parquet_rows.py writes a
// chunked file of TRL-style and nested columns plus expected.jsonl from to_pylist(); every row
// must dump() to the same text, key order included. Errors name the file first. A build
// without Arrow skips the parity cases (nothing to compare) and checks its own error instead.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "src/error.h"
#include "src/parquet_rows.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

using Json = nlohmann::ordered_json;
using testing::TempDir;  // tests/test_util.h

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The message of the r1kit::Error that read_parquet_rows(path) throws ("" if none).
std::string read_error(const std::string& path) {
  try {
    read_parquet_rows(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The parity script's files in `dir` (FAILS the test when python or pyarrow is missing).
void write_reference(const TempDir& dir) {
  ASSERT_EQ(testing::run_python("tests/parity/parquet_rows.py '" + dir.path + "'"), 0)
      << "tests/parity/parquet_rows.py failed (is pyarrow in .venv? run scripts/setup)";
}

TEST(ParquetParity, RowsMatchPyarrowToPylist) {
  if (!parquet_available()) GTEST_SKIP() << "r1kit built without Arrow: no Parquet reader to compare";
  TempDir dir;
  write_reference(dir);
  const std::vector<Json> rows = read_parquet_rows(dir / "data.parquet");
  std::vector<Json> expected;
  std::ifstream in(dir / "expected.jsonl");
  for (std::string line; std::getline(in, line);) expected.push_back(Json::parse(line));
  ASSERT_EQ(expected.size(), 5u);  // the script's 5 rows, in 3 row groups
  ASSERT_EQ(rows.size(), expected.size());
  for (size_t r = 0; r < rows.size(); ++r) EXPECT_EQ(rows[r].dump(), expected[r].dump()) << "row " << r;
  // Spot checks by hand, so a script that wrote the wrong thing cannot pass both sides:
  // uint64 above INT64_MAX stays unsigned, dictionary values decode, maps are [key, value].
  EXPECT_EQ(rows[0]["big"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(rows[0]["source"], "gsm8k");
  EXPECT_EQ(rows[0]["attrs"].dump(), R"([["lang","en"]])");
  EXPECT_EQ(rows[1]["messages"][0]["content"], "");
  EXPECT_TRUE(rows[2]["meta"].is_null());
  EXPECT_EQ(rows[0].begin().key(), "prompt");  // schema order, not sorted
}

TEST(ParquetParity, RefusesNanAndBinaryNamingFileAndColumn) {
  if (!parquet_available()) GTEST_SKIP() << "r1kit built without Arrow";
  TempDir dir;
  write_reference(dir);
  const std::string nan = dir / "nan.parquet";
  EXPECT_EQ(read_error(nan), nan + ": row 2, column 'x': the float nan has no JSON form");
  const std::string binary = dir / "binary.parquet";
  const std::string msg = read_error(binary);
  EXPECT_TRUE(starts_with(msg, binary + ": column 'blob' holds binary values")) << msg;
  const std::string garbage = dir / "not_parquet.parquet";
  EXPECT_TRUE(starts_with(read_error(garbage), garbage + ": not a Parquet file (")) << read_error(garbage);
}

TEST(Parquet, NotParquetAndMissingFileNameThePath) {
  TempDir dir;
  const std::string garbage = dir / "rows.parquet";
  std::ofstream(garbage, std::ios::binary) << "{\"prompt\": \"this is JSONL\"}\n";
  const std::string missing = dir / "missing.parquet";
  const std::string msg_garbage = read_error(garbage);
  const std::string msg_missing = read_error(missing);
  if (parquet_available()) {
    EXPECT_TRUE(starts_with(msg_garbage, garbage + ": not a Parquet file (")) << msg_garbage;
    EXPECT_TRUE(starts_with(msg_missing, missing + ": cannot open (")) << msg_missing;
  } else {
    EXPECT_TRUE(starts_with(msg_garbage, garbage + ": reading Parquet needs Apache Arrow")) << msg_garbage;
    EXPECT_TRUE(starts_with(msg_missing, missing + ": reading Parquet needs Apache Arrow")) << msg_missing;
  }
  EXPECT_EQ(msg_garbage.find('\n'), std::string::npos) << msg_garbage;  // one line
}

}  // namespace
}  // namespace r1kit
