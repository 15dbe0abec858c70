// MetricsLogger: rows in metrics.jsonl ({"step": s, ...}, non-finite -> null), the same
// scalars readable by TensorBoard's loader, truncate_after for resume (jsonl and TensorBoard
// both end up with one value per step), disabled ranks write nothing, and format_progress.
// TensorBoard missing from .venv is a FAILURE (see test_tensorboard.cpp).
#include <gtest/gtest.h>
#include <stdio.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "src/config.h"
#include "src/error.h"
#include "src/files.h"
#include "src/jsonl.h"
#include "src/metrics.h"
#include "tests/read_tensorboard.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

using testing::read_with_tensorboard;
using testing::TempDir;  // tests/test_util.h

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<int64_t> steps_of(const std::vector<Json>& rows) {
  std::vector<int64_t> out;
  for (const Json& r : rows) out.push_back(r.at("step").get<int64_t>());
  return out;
}

TEST(MetricsLogger, AppendsRowsWithNullForNonFinite) {
  TempDir tmp;
  const std::string run = tmp / "run";  // created by the logger
  {
    MetricsLogger logger(run, /*enabled=*/true);
    logger.log(1, {{"reward", 0.5}, {"loss", 1.25}});
    logger.log(2, {{"reward", kNaN}, {"loss", kInf}});
    logger.log(3, {{"reward", -kInf}, {"loss", 0.0}});
  }
  const std::vector<Json> rows = read_jsonl(run + "/metrics.jsonl");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], Json::parse(R"({"step": 1, "reward": 0.5, "loss": 1.25})"));
  EXPECT_EQ(rows[1], Json::parse(R"({"step": 2, "reward": null, "loss": null})"));
  EXPECT_EQ(rows[2], Json::parse(R"({"step": 3, "reward": null, "loss": 0.0})"));

  // A second logger on the same run appends (a restart without truncation keeps old rows).
  MetricsLogger again(run, /*enabled=*/true);
  again.log(4, {{"reward", 1.0}});
  EXPECT_EQ(steps_of(read_jsonl(run + "/metrics.jsonl")), (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST(MetricsLogger, ScalarsReachTensorboard) {
  TempDir tmp;
  MetricsLogger logger(tmp.path, /*enabled=*/true);
  logger.log(1, {{"reward", 0.25}, {"kl", 0.001}});
  logger.log(2, {{"reward", 0.75}, {"kl", kNaN}});
  const Json read = read_with_tensorboard(tmp.path);
  ASSERT_TRUE(read.is_object());
  EXPECT_EQ(read.at("reward"), Json::parse("[[1, 0.25], [2, 0.75]]"));
  // NaN stays NaN in TensorBoard (the script prints non-finite values as strings).
  ASSERT_EQ(read.at("kl").size(), 2u);
  EXPECT_EQ(read.at("kl")[0][1].get<float>(), 0.001f);
  EXPECT_EQ(read.at("kl")[1][1], "nan");
}

TEST(MetricsLogger, TruncateAfterKeepsStepsUpToN) {
  TempDir tmp;
  {
    MetricsLogger logger(tmp.path, /*enabled=*/true);
    for (int64_t s = 1; s <= 5; ++s) logger.log(s, {{"x", 100.0 + static_cast<double>(s)}});
  }
  // The resumed run: checkpoint at step 3, so steps 4 and 5 are replayed with new values.
  MetricsLogger logger(tmp.path, /*enabled=*/true);
  logger.truncate_after(3);
  const std::vector<Json> kept = read_jsonl(tmp / "metrics.jsonl");
  EXPECT_EQ(steps_of(kept), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(kept[2].at("x"), 103.0);
  logger.log(4, {{"x", 4.0}});
  logger.log(5, {{"x", 5.0}});
  const std::vector<Json> rows = read_jsonl(tmp / "metrics.jsonl");
  EXPECT_EQ(steps_of(rows), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(rows[3].at("x"), 4.0);

  // TensorBoard: three event files (first run, second logger, the one truncate started);
  // the restart marker at step 4 drops the first run's 104 and 105.
  EXPECT_EQ(list_dir(tmp.path).size(), 4u);  // + metrics.jsonl
  const Json read = read_with_tensorboard(tmp.path);
  ASSERT_TRUE(read.is_object());
  EXPECT_EQ(read.at("x"), Json::parse("[[1, 101.0], [2, 102.0], [3, 103.0], [4, 4.0], [5, 5.0]]"));
}

TEST(MetricsLogger, TruncateDropsAPartialRowFromAKilledRun) {
  TempDir tmp;
  {
    MetricsLogger logger(tmp.path, /*enabled=*/true);
    logger.log(1, {{"x", 1.0}});
    logger.log(2, {{"x", 2.0}});
  }
  std::ofstream(tmp / "metrics.jsonl", std::ios::app) << R"({"step": 3, "x)";  // killed here
  MetricsLogger logger(tmp.path, /*enabled=*/true);                            // ends the partial line
  logger.truncate_after(2);
  EXPECT_EQ(steps_of(read_jsonl(tmp / "metrics.jsonl")), (std::vector<int64_t>{1, 2}));
}

TEST(MetricsLogger, TruncateRejectsRowWithoutStep) {
  TempDir tmp;
  std::ofstream(tmp / "metrics.jsonl") << "{\"step\": 1}\n{\"x\": 2}\n";
  MetricsLogger logger(tmp.path, /*enabled=*/true);
  try {
    logger.truncate_after(5);
    FAIL() << "expected r1kit::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(tmp / "metrics.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(MetricsLogger, StepKeyInRowIsRejected) {
  TempDir tmp;
  MetricsLogger logger(tmp.path, /*enabled=*/true);
  EXPECT_THROW(logger.log(1, {{"step", 1.0}}), std::invalid_argument);
}

TEST(MetricsLogger, DisabledWritesNothing) {
  TempDir tmp;
  const std::string run = tmp / "run";
  MetricsLogger logger(run, /*enabled=*/false);
  logger.log(1, {{"x", 1.0}});
  logger.truncate_after(0);
  logger.flush();
  EXPECT_FALSE(logger.enabled());
  EXPECT_TRUE(logger.tensorboard_path().empty());
  EXPECT_FALSE(std::filesystem::exists(run));
}

TEST(FormatProgress, OneLine) {
  const std::map<std::string, double> row = {{"reward", 0.41},           {"acc", 0.38},  {"len", 57.0}, {"kl", 0.0012},
                                             {kSecondsPerStepKey, 12.3}, {"unused", 9.0}};
  EXPECT_EQ(format_progress(12, 100, row, {"reward", "acc", "len", "kl", kSecondsPerStepKey}),
            "step 12/100  reward 0.41  acc 0.38  len 57  kl 0.0012  12.3 s/step");
  // Absent keys are left out; |v| >= 100 has no decimals; 3 significant digits otherwise;
  // no total: no "/total".
  EXPECT_EQ(
      format_progress(3, 0, {{"len", 1234.56}, {"loss", 0.123456}, {"nan", kNaN}}, {"missing", "len", "loss", "nan"}),
      "step 3  len 1235  loss 0.123  nan nan");
}

}  // namespace
}  // namespace r1kit
