// libFuzzer target: a tokenizer.json as Tokenizer::load reads it; a tokenizer it accepts then
// encodes and decodes a fixed mixed-script text, which must not crash and must decode to
// valid UTF-8.
#include "src/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  r1kit::fuzz::InputFile file(data, size);
  r1kit::fuzz::expect_clean([&] {
    const auto tok = r1kit::Tokenizer::load(file.path());
    const auto ids = tok.encode("Hello, world! 12.5 <think>x</think> \xE4\xBD\xA0\xE5\xA5\xBD \n\n  tabs\t", true);
    r1kit::fuzz::require_utf8(tok.decode(ids));
    r1kit::fuzz::require_utf8(tok.decode(ids, true));
    for (int32_t id : {0, 1, tok.vocab_size() - 1, tok.vocab_size()}) (void)tok.id_to_token(id);
  });
  return 0;
}
