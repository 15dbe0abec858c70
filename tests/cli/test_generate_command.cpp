// `r1kit generate` end to end (the built binary on a tiny saved model): with its KV pool at a
// quarter of what 64 samples need (--max-kv-tokens), rows are preempted and recomputed and
// every completion has the same token_ids and logprobs (1e-5) as without the cap, with top-p
// and a repetition penalty on (issue 15).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/config.h"
#include "src/jsonl.h"
#include "tests/test_util.h"
#include "tests/tiny_policy.h"

namespace r1kit {
namespace {

std::vector<Json> generate(const std::string& model, const std::string& extra, const std::string& name,
                           std::string* err) {
  const std::string out = model + "/" + name + ".jsonl";
  const testing::Outcome o = testing::run_r1kit("generate --model '" + model +
                                                    "' --prompt '12+5' -n 64 --json --max-new-tokens 300 --ignore-eos "
                                                    "--top-p 0.9 --repetition-penalty 1.2 --seed 3 "
                                                    "--kv-block-size 4 --threads 1 " +
                                                    extra,
                                                model + "/" + name + ".err", out);
  EXPECT_EQ(o.rc, 0) << o.err;
  *err = o.err;
  return read_jsonl(out);
}

TEST(GenerateCommand, AQuarterSizeKvPoolGivesTheSameCompletions) {
  const auto dir = testing::scratch_dir("generate_kv_pool");
  testing::save_tiny_policy(dir / "model");
  const std::string model = (dir / "model").string();
  std::string err;
  const std::vector<Json> free_run = generate(model, "", "free", &err);
  ASSERT_EQ(free_run.size(), 64u);
  EXPECT_NE(err.find(", 0 preemptions"), std::string::npos) << err;
  int64_t needed = 0;  // positions of the 64 rows at their longest
  for (const Json& row : free_run)
    needed += static_cast<int64_t>(row["prompt_token_ids"].size() + row["token_ids"].size());
  const std::vector<Json> quarter = generate(model, "--max-kv-tokens " + std::to_string(needed / 4), "quarter", &err);
  EXPECT_EQ(err.find(", 0 preemptions"), std::string::npos) << "nothing was preempted: " << err;
  ASSERT_EQ(quarter.size(), free_run.size());
  for (size_t i = 0; i < free_run.size(); ++i) {
    SCOPED_TRACE("completion " + std::to_string(i));
    EXPECT_EQ(quarter[i]["token_ids"], free_run[i]["token_ids"]);
    EXPECT_EQ(quarter[i]["finish_reason"], free_run[i]["finish_reason"]);
    const auto& a = quarter[i]["logprobs"];
    const auto& b = free_run[i]["logprobs"];
    ASSERT_EQ(a.size(), b.size());
    for (size_t t = 0; t < a.size(); ++t) EXPECT_NEAR(a[t].get<double>(), b[t].get<double>(), 1e-5) << "token " << t;
  }
}

}  // namespace
}  // namespace r1kit
