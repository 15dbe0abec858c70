// libFuzzer target: a safetensors file (8-byte header length, JSON header, tensor data) as
// SafetensorsFile::open maps it; every tensor it accepts must lie inside the file.
#include "src/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  r1kit::fuzz::InputFile file(data, size);
  r1kit::fuzz::expect_clean([&] {
    const auto f = r1kit::SafetensorsFile::open(file.path());
    for (const auto& t : f.tensors()) {
      if (t.nbytes != static_cast<size_t>(r1kit::shape_numel(t.shape)) * r1kit::dtype_size(t.dtype)) std::abort();
      volatile uint8_t sink = 0;
      if (t.nbytes > 0) sink = static_cast<uint8_t>(t.data[0] ^ t.data[t.nbytes - 1]);  // in the mapping
      (void)sink;
    }
  });
  return 0;
}
