// libFuzzer target: a Hugging Face config.json as load_model_config reads it (every
// architecture, RoPE in both transformers spellings); a config it accepts writes back and
// reads again to the same JSON.
#include "policy/config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  r1kit::fuzz::InputFile file(data, size);
  r1kit::fuzz::expect_clean([&] {
    const auto c = r1kit::policy::load_model_config(file.path());
    const r1kit::Json written = r1kit::policy::model_config_to_json(c);
    const auto again = r1kit::policy::parse_model_config(written, "written config");
    if (r1kit::policy::model_config_to_json(again) != written) std::abort();  // not a round trip
  });
  return 0;
}
