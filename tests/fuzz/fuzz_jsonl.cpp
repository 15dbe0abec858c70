// libFuzzer target: a JSONL dataset as read_jsonl reads it (rows, blank lines, a partial last
// line, invalid UTF-8, deep nesting).
#include "src/jsonl.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  r1kit::fuzz::InputFile file(data, size);
  r1kit::fuzz::expect_clean([&] {
    for (const auto& row : r1kit::read_jsonl(file.path())) (void)r1kit::dump_text(row);
  });
  return 0;
}
