// libFuzzer target: the text rewards as a recipe configures them (format, tag_count,
// repetition, language, length) on one completion, plus the code reward's extraction of
// the program (fenced blocks, think sections, unfenced). Bounded time, valid UTF-8 out.
#include "rewards/code_extract.h"
#include "rewards/format_rewards.h"
#include "rewards/scorer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit::rewards;
  static const Scorer scorer = Scorer::from_spec("format,tag_count,repetition,language,length");
  const std::string_view completion = r1kit::fuzz::text_of(data, size);
  const r1kit::Json row = {{"answer", "1"}, {"completion_tokens", 12}};
  RewardInput in{.prompt = "", .completion = completion, .fields = &row};
  r1kit::fuzz::require_utf8(scorer.score(in).why);
  (void)format_score(completion, true);
  (void)repetition_penalty(completion, 1, 1.0);
  r1kit::fuzz::require_utf8(dominant_script(completion));
  for (bool unfenced : {true, false}) {
    if (const auto code = extract_code(completion, "python", unfenced)) (void)code->size();
  }
  (void)extract_code(completion, "", true);
  return 0;
}
