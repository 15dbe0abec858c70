// safetensors parity with the reference Python package (tests/parity/safetensors_roundtrip.py):
// we read what safetensors.torch.save_file wrote, and safe_open reads what we wrote, single
// file and sharded directory. Python, torch or safetensors missing is a FAILURE, not a skip:
// this is the test that keeps the format honest.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <utility>

#include "src/config.h"
#include "src/safetensors.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;  // tests/test_util.h

// Runs the parity script with `args`; returns (exit status, stdout + stderr).
std::pair<int, std::string> run_script(const std::string& args) {
  const std::string cmd = std::string("'") + R1KIT_SOURCE_DIR + "/.venv/bin/python' '" + R1KIT_SOURCE_DIR +
                          "/tests/parity/safetensors_roundtrip.py' " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed: " + cmd};
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {status, cmd + "\n" + out};
}

std::string to_hex(const uint8_t* data, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[data[i] >> 4];
    s += kDigits[data[i] & 15];
  }
  return s;
}

TEST(SafetensorsParity, ReadsWhatPythonWrote) {
  TempDir dir;
  const auto [status, out] = run_script("write '" + dir.path + "'");
  ASSERT_EQ(status, 0) << out;
  const SafetensorsFile f = SafetensorsFile::open(dir / "python.safetensors");
  Json expect = read_json_file(dir / "python.expect.json");
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"source", "python"}}));
  expect.erase("__metadata__");
  ASSERT_EQ(f.tensors().size(), expect.size());
  for (auto it = expect.begin(); it != expect.end(); ++it) {
    const TensorView* t = f.find(it.key());
    ASSERT_NE(t, nullptr) << it.key();
    EXPECT_EQ(dtype_name(t->dtype), (*it)["dtype"].get<std::string>()) << it.key();
    EXPECT_EQ(t->shape, (*it)["shape"].get<std::vector<int64_t>>()) << it.key();
    EXPECT_EQ(to_hex(t->data, t->nbytes), (*it)["hex"].get<std::string>()) << it.key();
  }
  // First element of each, derived by hand from the encodings (little-endian):
  // 1.0 as F64 3FF0000000000000, F32 3F800000, F16 3C00, BF16 3F80 (the top half of F32),
  // F8_E4M3 0 0111 000 = 38 (bias 7), F8_E5M2 0 01111 00 = 3C (bias 15); -2 as I64.
  auto head = [&](const char* name, size_t n) { return to_hex(f.find(name)->data, n); };
  EXPECT_EQ(head("t_F64", 8), "000000000000f03f");
  EXPECT_EQ(head("t_F32", 4), "0000803f");
  EXPECT_EQ(head("t_F16", 2), "003c");
  EXPECT_EQ(head("t_BF16", 2), "803f");
  EXPECT_EQ(head("t_F8_E4M3", 1), "38");
  EXPECT_EQ(head("t_F8_E5M2", 1), "3c");
  EXPECT_EQ(to_hex(f.find("t_I64")->data + 8, 8), "feffffffffffffff");
  EXPECT_EQ(head("t_BOOL", 6), "010001010000");
  EXPECT_TRUE(f.find("scalar")->shape.empty());
  EXPECT_EQ(f.find("empty")->nbytes, 0u);
}

// Every dtype as [2, 3] with bytes (i * 37 + 11) mod 256, a scalar, an empty tensor; and
// the expectation file the script compares against.
struct OurTensors {
  std::vector<std::string> data;
  std::vector<TensorToWrite> tensors;
  Json expect = Json::object();
  OurTensors() {
    const Dtype all[] = {Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::I64,     Dtype::I32,
                         Dtype::I16, Dtype::I8,  Dtype::U8,  Dtype::BOOL, Dtype::F8_E4M3, Dtype::F8_E5M2};
    data.reserve(std::size(all) + 1);
    for (Dtype d : all) {
      std::string b(6 * dtype_size(d), '\0');
      for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>(i * 37 + 11);
      // BOOL must hold 0 or 1, and torch's bool view would not round-trip other bytes.
      if (d == Dtype::BOOL)
        for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>(i % 2);
      data.push_back(b);
      tensors.push_back({std::string("t_") + dtype_name(d), d, {2, 3}, data.back().data(), b.size()});
    }
    data.push_back(std::string("\0\0\0\0\0\0\x04\xc0", 8));  // -2.5 as F64
    tensors.push_back({"scalar", Dtype::F64, {}, data.back().data(), 8});
    tensors.push_back({"empty", Dtype::F32, {0, 4}, nullptr, 0});
    for (const TensorToWrite& t : tensors) {
      expect[t.name] = {{"dtype", dtype_name(t.dtype)},
                        {"shape", t.shape},
                        {"hex", to_hex(static_cast<const uint8_t*>(t.data), t.nbytes)}};
    }
  }
};

TEST(SafetensorsParity, PythonReadsWhatWeWrote) {
  TempDir dir;
  OurTensors ours;
  write_safetensors(dir / "ours.safetensors", ours.tensors, {{"format", "pt"}, {"step", "7"}});
  ours.expect["__metadata__"] = {{"format", "pt"}, {"step", "7"}};
  std::ofstream(dir / "ours.expect.json") << ours.expect.dump();
  const auto [status, out] = run_script("check '" + dir / "ours.safetensors" + "' '" + dir / "ours.expect.json" + "'");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("\nOK\n"), std::string::npos) << out;
}

TEST(SafetensorsParity, PythonReadsOurShardedDirectory) {
  TempDir dir;
  OurTensors ours;
  // 14 tensors of at most 48 bytes with a 64-byte limit: several shards.
  write_model_weights(dir / "model", ours.tensors, /*max_shard_bytes=*/64);
  ASSERT_TRUE(fs::exists(dir / "model/model.safetensors.index.json"));
  ours.expect["__metadata__"] = {{"format", "pt"}};
  std::ofstream(dir / "expect.json") << ours.expect.dump();
  const auto [status, out] = run_script("check_dir '" + dir / "model" + "' '" + dir / "expect.json" + "'");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("\nOK\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace r1kit
