// safetensors: byte-exact layout, every dtype round trip, each malformed-file error names
// the file (and tensor), never a crash on corrupt input, HF model directories (sharded too).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "src/config.h"
#include "src/error.h"
#include "src/safetensors.h"
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

void put(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// u64 little-endian length + header text + buffer, for hand-made (malformed) files.
std::string st_bytes(const std::string& header, const std::string& buffer, uint64_t length) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return out + header + buffer;
}
std::string st_bytes(const std::string& header, const std::string& buffer) {
  return st_bytes(header, buffer, header.size());
}

// The r1kit::Error message that opening `path` gives ("" when it opens).
std::string open_error(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const Dtype kAll[] = {Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::I64,     Dtype::I32,
                      Dtype::I16, Dtype::I8,  Dtype::U8,  Dtype::BOOL, Dtype::F8_E4M3, Dtype::F8_E5M2};

TEST(Safetensors, DtypeNamesAndSizes) {
  for (Dtype d : kAll) EXPECT_EQ(dtype_from_name(dtype_name(d)), d) << dtype_name(d);
  EXPECT_STREQ(dtype_name(Dtype::BF16), "BF16");
  EXPECT_STREQ(dtype_name(Dtype::F8_E4M3), "F8_E4M3");
  EXPECT_EQ(dtype_size(Dtype::F64), 8u);
  EXPECT_EQ(dtype_size(Dtype::BF16), 2u);
  EXPECT_EQ(dtype_size(Dtype::I32), 4u);
  EXPECT_EQ(dtype_size(Dtype::BOOL), 1u);
  EXPECT_EQ(dtype_size(Dtype::F8_E5M2), 1u);
  try {
    dtype_from_name("F33");
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "'F33'") && contains(e.what(), "BF16")) << e.what();
  }
}

TEST(Safetensors, ByteExactLayoutOfOneTensor) {
  // Header {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes; padded with
  // two spaces to 56, the next multiple of 8. Then 1.0f = 00 00 80 3F and 2.0f = 00 00 00 40.
  TempDir dir;
  const std::string path = dir / "one.safetensors";
  const float values[2] = {1.0f, 2.0f};
  write_safetensors(path, {{"a", Dtype::F32, {2}, values, sizeof(values)}});
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 54u);
  const std::string expected = st_bytes(header + "  ", std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8));
  EXPECT_EQ(slurp(path), expected);
}

TEST(Safetensors, RoundTripEveryDtypeWithMetadata) {
  TempDir dir;
  const std::string path = dir / "all.safetensors";
  std::vector<std::string> bytes;  // keeps each tensor's data alive
  std::vector<TensorToWrite> tensors;
  for (Dtype d : kAll) {
    std::string b(6 * dtype_size(d), '\0');
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>(i * 37 + 11);
    bytes.push_back(b);
  }
  for (size_t k = 0; k < std::size(kAll); ++k) {
    tensors.push_back({std::string("t_") + dtype_name(kAll[k]), kAll[k], {2, 3}, bytes[k].data(), bytes[k].size()});
  }
  const double scalar = -2.5;
  tensors.push_back({"scalar", Dtype::F64, {}, &scalar, sizeof(scalar)});
  tensors.push_back({"empty", Dtype::F32, {0, 4}, nullptr, 0});
  write_safetensors(path, tensors, {{"format", "pt"}, {"step", "3"}});

  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"step", "3"}}));
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (size_t i = 1; i < f.tensors().size(); ++i) {
    EXPECT_LT(f.tensors()[i - 1].name, f.tensors()[i].name);  // sorted by name
  }
  for (size_t k = 0; k < std::size(kAll); ++k) {
    const TensorView* t = f.find(tensors[k].name);
    ASSERT_NE(t, nullptr) << tensors[k].name;
    EXPECT_EQ(t->dtype, kAll[k]);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
    ASSERT_EQ(t->nbytes, bytes[k].size());
    EXPECT_EQ(std::memcmp(t->data, bytes[k].data(), t->nbytes), 0) << t->name;
    // Header padded to 8 and tensors of size 6*{1,2,4,8} in name order: not all aligned,
    // but the buffer start is, which is all the reference promises.
  }
  const TensorView* s = f.find("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  double back = 0;
  std::memcpy(&back, s->data, sizeof(back));
  EXPECT_EQ(back, -2.5);
  const TensorView* e = f.find("empty");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(e->nbytes, 0u);
  EXPECT_EQ(f.find("t_F3"), nullptr);
  EXPECT_EQ(f.find("zzz"), nullptr);

  // Moving the file keeps the views valid (they point into the mapping, not the object).
  SafetensorsFile moved = SafetensorsFile::open(path);
  const uint8_t* before = moved.find("t_U8")->data;
  SafetensorsFile other = std::move(moved);
  EXPECT_EQ(other.find("t_U8")->data, before);
}

TEST(Safetensors, HeaderLengthIsAMultipleOfEightAndBufferStartsAligned) {
  TempDir dir;
  for (int len = 1; len <= 9; ++len) {  // names of every length mod 8
    const std::string path = dir / ("pad" + std::to_string(len));
    const uint8_t one = 1;
    write_safetensors(path, {{std::string(static_cast<size_t>(len), 'x'), Dtype::U8, {1}, &one, 1}});
    const std::string b = slurp(path);
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
    EXPECT_EQ(n % 8, 0u);
    EXPECT_EQ(b.size(), 8 + n + 1);
    EXPECT_EQ(b[8 + n - 1] == ' ' || b[8 + n - 1] == '}', true);
  }
}

TEST(Safetensors, WriterRejectsBadInput) {
  TempDir dir;
  const std::string path = dir / "w.safetensors";
  const float v[3] = {1, 2, 3};
  try {
    write_safetensors(path, {{"w", Dtype::F32, {2, 2}, v, sizeof(v)}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": tensor 'w': nbytes 12 but shape [2, 2] of F32 needs 16");
  }
  try {
    write_safetensors(path, {{"w", Dtype::F32, {3}, v, sizeof(v)}, {"w", Dtype::F32, {3}, v, sizeof(v)}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": tensor 'w' is given twice");
  }
  EXPECT_FALSE(fs::exists(path));  // nothing half-written
}

// ---- malformed files: each error names the file, and the tensor where there is one ----

struct Malformed {
  const char* what;
  std::string bytes;
  const char* expected;  // part of the message after "PATH: "
};

TEST(Safetensors, MalformedFilesGiveErrorsNamingTheFile) {
  const std::string four(4, '\0'), twelve(12, '\0');
  const std::vector<Malformed> cases = {
      {"truncated", std::string("\x10\x00\x00", 3), "3 bytes is too short"},
      {"empty", "", "0 bytes is too short"},
      {"huge header length", st_bytes("{}", "", 1ull << 40), "header length 1099511627776 runs past the end"},
      {"bad JSON", st_bytes("{\"w\": {", ""), "header is not valid JSON"},
      {"not an object", st_bytes("[1, 2]", ""), "header is not a JSON object"},
      {"unknown dtype", st_bytes(R"({"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", four),
       "tensor 'w': unknown dtype \"F33\""},
      {"negative shape", st_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four),
       "tensor 'w': shape must hold non-negative integers, got [-1]"},
      {"float shape", st_bytes(R"({"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", four),
       "tensor 'w': shape must hold non-negative integers"},
      {"one offset", st_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", four),
       "tensor 'w': data_offsets must be [begin, end]"},
      {"descending offsets", st_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four),
       "tensor 'w': data_offsets must be [begin, end] with 0 <= begin <= end, got [4,0]"},
      {"offsets past end", st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", four),
       "tensor 'w': data_offsets [0, 8] run past the end of the data buffer (4 bytes)"},
      {"wrong nbytes", st_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", twelve),
       "tensor 'w': data_offsets span 8 bytes but shape [3] of F32 needs 12"},
      {"overflowing shape",
       st_bytes(R"({"w":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", twelve),
       "tensor 'w': shape [4611686018427387904, 4] is too large"},
      {"overlapping",
       st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                twelve),
       "tensors 'a' and 'b' overlap"},
      {"entry not an object", st_bytes(R"({"w":3})", ""), "tensor 'w': expected {dtype, shape, data_offsets}"},
      {"metadata value not a string", st_bytes(R"({"__metadata__":{"step":3}})", ""),
       "__metadata__.step is not a string"},
  };
  TempDir dir;
  for (const Malformed& c : cases) {
    const std::string path = dir / "bad.safetensors";
    put(path, c.bytes);
    const std::string msg = open_error(path);
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << c.what << ": " << msg;
    EXPECT_TRUE(contains(msg, c.expected)) << c.what << ": " << msg;
  }
}

TEST(Safetensors, ZeroSizeTensorsAndGapsAreAccepted) {
  // "e" is empty at offset 4, inside "a"'s bytes: it owns no bytes, so no overlap. Bytes
  // 8..12 belong to no tensor: a gap, which we accept (the reference would not).
  TempDir dir;
  const std::string path = dir / "ok.safetensors";
  put(path, st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                     R"("z":{"dtype":"U8","shape":[],"data_offsets":[12,13]}})",
                     std::string(13, '\x07')));
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.find("z")->nbytes, 1u);
  EXPECT_EQ(f.find("z")->data[0], 7);
}

TEST(Safetensors, EveryTruncationAndCorruptionIsAnErrorNotACrash) {
  TempDir dir;
  const std::string good_path = dir / "good.safetensors";
  const int32_t v[3] = {1, 2, 3};
  write_safetensors(good_path, {{"a", Dtype::I32, {3}, v, sizeof(v)}, {"b", Dtype::I32, {1}, v, 4}}, {{"k", "v"}});
  const std::string good = slurp(good_path);
  const std::string path = dir / "cut.safetensors";
  for (size_t len = 0; len < good.size(); ++len) {
    put(path, good.substr(0, len));
    EXPECT_TRUE(contains(open_error(path), path)) << "truncated to " << len;
  }
  // Overwrite each byte of the length and header with values that break it in different
  // ways; any outcome but a crash or a foreign exception type is fine.
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(good[i])) << (8 * i);
  for (size_t pos = 0; pos < 8 + n; ++pos) {
    for (char c : {'\0', '"', '9', '-', '{', '\xff'}) {
      std::string bad = good;
      bad[pos] = c;
      put(path, bad);
      try {
        // If it opens, every view must be readable: touching a byte outside the mapping
        // would crash this test.
        SafetensorsFile f = SafetensorsFile::open(path);
        size_t total = 0;
        for (const TensorView& t : f.tensors()) {
          EXPECT_EQ(t.nbytes, static_cast<size_t>(shape_numel(t.shape)) * dtype_size(t.dtype));
          for (size_t i = 0; i < t.nbytes; ++i) total += t.data[i];
        }
        EXPECT_LE(total, 255 * bad.size());
      } catch (const Error&) {
      }
    }
  }
}

TEST(Safetensors, OpenMissingFileNamesIt) {
  TempDir dir;
  EXPECT_TRUE(contains(open_error(dir / "nope.safetensors"), dir / "nope.safetensors: cannot open"));
}

// ---- model directories -------------------------------------------------------------------

// Four 16-byte tensors "a".."d" holding bytes of 'a'..'d'.
struct FourTensors {
  std::vector<std::string> data;
  std::vector<TensorToWrite> tensors;
  FourTensors() {
    for (char c : {'a', 'b', 'c', 'd'}) data.emplace_back(16, c);
    for (size_t i = 0; i < 4; ++i) {
      tensors.push_back({std::string(1, "abcd"[i]), Dtype::F32, {4}, data[i].data(), 16});
    }
  }
};

TEST(ModelWeights, SingleFileRoundTrip) {
  TempDir dir;
  FourTensors four;
  write_model_weights(dir.path, four.tensors, /*max_shard_bytes=*/1000);
  EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.index.json"));
  const ModelWeights w = ModelWeights::open(dir.path);
  EXPECT_EQ(w.names(), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_TRUE(w.contains("c"));
  EXPECT_FALSE(w.contains("e"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(w.at("c").data), 16), std::string(16, 'c'));
  EXPECT_EQ(w.files()[0].metadata().at("format"), "pt");  // transformers requires it
  try {
    w.at("e");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.path + ": no tensor 'e'");
  }
}

TEST(ModelWeights, ShardedRoundTrip) {
  // 4 x 16 bytes with a 40-byte limit: a+b = 32, +c would be 48 > 40 -> c starts shard 2.
  TempDir dir;
  FourTensors four;
  write_model_weights(dir.path, four.tensors, /*max_shard_bytes=*/40);
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  const Json index = read_json_file(dir / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"], 64);
  EXPECT_EQ(index["weight_map"], (Json{{"a", "model-00001-of-00002.safetensors"},
                                       {"b", "model-00001-of-00002.safetensors"},
                                       {"c", "model-00002-of-00002.safetensors"},
                                       {"d", "model-00002-of-00002.safetensors"}}));
  EXPECT_EQ(SafetensorsFile::open(dir / "model-00002-of-00002.safetensors").tensors().size(), 2u);

  ModelWeights w = ModelWeights::open(dir.path);
  EXPECT_EQ(w.files().size(), 2u);
  EXPECT_EQ(w.names(), (std::vector<std::string>{"a", "b", "c", "d"}));
  for (const std::string& name : w.names()) {
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(w.at(name).data), 16), std::string(16, name[0]));
  }
  // Moving the whole set keeps every view valid.
  ModelWeights moved = std::move(w);
  EXPECT_EQ(moved.at("d").data[0], 'd');
}

TEST(ModelWeights, TensorOverTheLimitGetsItsOwnShard) {
  // Limit 20: each 16-byte tensor fits alone, never two together -> 4 shards.
  TempDir dir;
  FourTensors four;
  write_model_weights(dir.path, four.tensors, /*max_shard_bytes=*/20);
  EXPECT_TRUE(fs::exists(dir / "model-00004-of-00004.safetensors"));
  // Limit 8: every tensor is over it, and still each is written, alone.
  TempDir dir2;
  write_model_weights(dir2.path, four.tensors, /*max_shard_bytes=*/8);
  EXPECT_EQ(ModelWeights::open(dir2.path).files().size(), 4u);
}

TEST(ModelWeights, RewritingRemovesTheOtherLayout) {
  TempDir dir;
  FourTensors four;
  write_model_weights(dir.path, four.tensors, /*max_shard_bytes=*/20);  // 4 shards
  write_model_weights(dir.path, four.tensors, /*max_shard_bytes=*/40);  // 2 shards
  EXPECT_FALSE(fs::exists(dir / "model-00001-of-00004.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "model-00001-of-00002.safetensors"));
  write_model_weights(dir.path, four.tensors, /*max_shard_bytes=*/1000);  // single file
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "model-00001-of-00002.safetensors"));
  EXPECT_EQ(ModelWeights::open(dir.path).files().size(), 1u);
}

TEST(ModelWeights, MissingShardIsAnError) {
  TempDir dir;
  FourTensors four;
  write_model_weights(dir.path, four.tensors, /*max_shard_bytes=*/40);
  fs::remove(dir / "model-00002-of-00002.safetensors");
  try {
    ModelWeights::open(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir / "model.safetensors.index.json" +
                                         ": shard 'model-00002-of-00002.safetensors' in weight_map is missing (" +
                                         dir / "model-00002-of-00002.safetensors" + ")");
  }
}

TEST(ModelWeights, NameMissingFromItsShardIsAnError) {
  TempDir dir;
  FourTensors four;
  write_model_weights(dir.path, four.tensors, /*max_shard_bytes=*/40);
  Json index = read_json_file(dir / "model.safetensors.index.json");
  index["weight_map"]["c"] = "model-00001-of-00002.safetensors";  // c lives in shard 2
  put(dir / "model.safetensors.index.json", index.dump());
  try {
    ModelWeights::open(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir / "model.safetensors.index.json" +
                                         ": weight_map puts 'c' in 'model-00001-of-00002.safetensors'"
                                         ", which has no such tensor");
  }
}

TEST(ModelWeights, EmptyDirectoryIsAnError) {
  TempDir dir;
  try {
    ModelWeights::open(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.path + ": no model.safetensors or model.safetensors.index.json");
  }
}

}  // namespace
}  // namespace r1kit
