// AtomicFile: the target holds the old bytes or the new ones, never a half-written file.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "src/atomic_file.h"
#include "src/error.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;  // tests/test_util.h

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t file_count(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFile, CommitReplacesOldContents) {
  TempDir dir;
  const std::string path = dir / "out.txt";
  write_file_atomic(path, "old");
  AtomicFile f(path);
  f.write("new ");
  f.write("bytes");
  // Before commit the target is untouched and the bytes sit in the temp file beside it.
  EXPECT_EQ(slurp(path), "old");
  EXPECT_EQ(fs::path(f.temp_path()).parent_path(), fs::path(path).parent_path());
  EXPECT_TRUE(fs::exists(f.temp_path()));
  f.commit();
  EXPECT_EQ(slurp(path), "new bytes");
  EXPECT_EQ(f.bytes_written(), 9u);
  EXPECT_FALSE(fs::exists(f.temp_path()));
  EXPECT_EQ(file_count(dir.path), 1u);
}

TEST(AtomicFile, DestroyedWithoutCommitKeepsOldFileAndRemovesTemp) {
  TempDir dir;
  const std::string path = dir / "ckpt.bin";
  write_file_atomic(path, "previous checkpoint");
  std::string temp;
  {
    AtomicFile f(path);
    temp = f.temp_path();
    f.write("half of the new one");
  }
  EXPECT_EQ(slurp(path), "previous checkpoint");
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(file_count(dir.path), 1u);
}

TEST(AtomicFile, ExceptionMidWriteKeepsOldFile) {
  TempDir dir;
  const std::string path = dir / "data.jsonl";
  write_file_atomic(path, "v1");
  try {
    AtomicFile f(path);
    f.write("v2 partial");
    throw std::runtime_error("writer failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(slurp(path), "v1");
  EXPECT_EQ(file_count(dir.path), 1u);
}

TEST(AtomicFile, NoPreviousFileMeansNoFileAfterAbort) {
  TempDir dir;
  {
    AtomicFile f(dir / "new.txt");
    f.write("x");
  }
  EXPECT_EQ(file_count(dir.path), 0u);
}

TEST(AtomicFile, LargeAndSmallWritesKeepOrder) {
  // 3 MiB goes past the 1 MiB gather buffer; the small writes around it must stay in order.
  TempDir dir;
  const std::string path = dir / "big.bin";
  const std::string big(3 << 20, 'b');
  AtomicFile f(path);
  f.write("head");
  f.write(big);
  f.write("tail");
  f.commit();
  EXPECT_EQ(slurp(path), "head" + big + "tail");
}

TEST(AtomicFile, MovedFileCommitsAndMovedFromDoesNotDelete) {
  TempDir dir;
  const std::string path = dir / "m.txt";
  AtomicFile a(path);
  a.write("moved");
  AtomicFile b(std::move(a));
  b.write(" twice");
  AtomicFile c(dir / "other.txt");
  c = std::move(b);  // c's own temp file is discarded
  c.commit();
  EXPECT_EQ(slurp(path), "moved twice");
  EXPECT_EQ(file_count(dir.path), 1u);
}

TEST(AtomicFile, CannotCreateNamesPathAndReason) {
  TempDir dir;
  const std::string path = dir / "missing_dir/out.txt";
  try {
    AtomicFile f(path);
    FAIL() << "expected r1kit::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
}

TEST(AtomicFile, CommitTwiceIsAnError) {
  TempDir dir;
  AtomicFile f(dir / "x");
  f.commit();
  EXPECT_THROW(f.commit(), Error);
  EXPECT_THROW(f.write("late"), Error);
}

TEST(MakeDirs, CreatesNestedAndNamesPathOnFailure) {
  TempDir dir;
  make_dirs(dir / "a/b/c");
  EXPECT_TRUE(fs::is_directory(dir / "a/b/c"));
  make_dirs(dir / "a/b/c");  // already there: fine
  write_file_atomic(dir / "file", "x");
  try {
    make_dirs(dir / "file/sub");
    FAIL() << "expected r1kit::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "file/sub"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit
