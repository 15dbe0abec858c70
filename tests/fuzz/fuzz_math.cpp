// libFuzzer target: the math reward's text path. The input is "GOLD\nCOMPLETION": answer
// extraction (boxed, "answer is", last number), LaTeX/plain parsing, equality, and the whole
// `math` reward as GRPO calls it. Every path must end in bounded time (libFuzzer's -timeout)
// and every string it returns must be valid UTF-8.
#include "rewards/math_equal.h"
#include "rewards/math_extract.h"
#include "rewards/math_parse.h"
#include "rewards/scorer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit::rewards;
  static const Scorer scorer = Scorer::from_spec("math");
  const std::string_view text = r1kit::fuzz::text_of(data, size);
  const size_t cut = text.find('\n');
  const std::string_view gold = cut == std::string_view::npos ? std::string_view() : text.substr(0, cut);
  const std::string_view completion = cut == std::string_view::npos ? text : text.substr(cut + 1);

  const auto pred = math::extract_answer(completion);
  const auto want = math::extract_gold(gold);
  (void)math::find_boxed(completion);
  (void)math::extract_choice(completion);
  math::NodePtr p = pred ? math::parse_math(pred->text) : nullptr;
  math::NodePtr g = want ? math::parse_math(want->text) : nullptr;
  if (p) (void)math::to_string(*p);
  if (p && g) (void)math::math_equal(g, p);

  const r1kit::Json row = {{"answer", std::string(gold)}};
  RewardInput in{.prompt = "", .completion = completion, .fields = &row};
  const RewardResult r = scorer.score(in);
  r1kit::fuzz::require_utf8(r.why);
  return 0;
}
