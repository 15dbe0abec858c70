// pipelines/schedule: learning_rate_at for constant, linear and cosine decay after a linear
// warm-up, checked against values derived by hand in the comments; stream_indices: every
// epoch is a permutation of the dataset, the stream is a pure function of (seed, position),
// and any window of it equals the same slice of one long read, across epoch boundaries too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "pipelines/schedule.h"

namespace r1kit::pipelines {
namespace {

// base 0.5, 4 warm-up steps, decay over steps 4..14 (span 10), cosine floor 0.2 * base.
LrSchedule schedule(ScheduleType type) {
  LrSchedule s;
  s.base = 0.5;
  s.type = type;
  s.warmup_steps = 4;
  s.max_steps = 14;
  s.min_ratio = 0.2;
  return s;
}

TEST(LearningRate, WarmupRampsFromBaseOverWarmupToBase) {
  // step < warmup: base * (step + 1) / warmup = 0.5 * {1, 2, 3, 4} / 4; the first step already
  // trains (0.125, not 0), and the ramp is the same for every decay type.
  for (ScheduleType type : {ScheduleType::kConstant, ScheduleType::kLinear, ScheduleType::kCosine}) {
    const LrSchedule s = schedule(type);
    EXPECT_DOUBLE_EQ(learning_rate_at(s, 0), 0.125);
    EXPECT_DOUBLE_EQ(learning_rate_at(s, 1), 0.25);
    EXPECT_DOUBLE_EQ(learning_rate_at(s, 2), 0.375);
    EXPECT_DOUBLE_EQ(learning_rate_at(s, 3), 0.5);
    EXPECT_DOUBLE_EQ(learning_rate_at(s, 4), 0.5) << "progress 0: the peak";
  }
}

TEST(LearningRate, ConstantStaysAtBase) {
  const LrSchedule s = schedule(ScheduleType::kConstant);
  for (int64_t step : {4, 9, 14, 1000}) EXPECT_DOUBLE_EQ(learning_rate_at(s, step), 0.5) << step;
}

TEST(LearningRate, LinearDecaysToZeroAtMaxSteps) {
  // progress p = (step - 4) / 10, lr = 0.5 * (1 - p): step 6 -> 0.4, 9 -> 0.25, 13 -> 0.05,
  // 14 -> 0, and past max_steps p stays 1.
  LrSchedule s = schedule(ScheduleType::kLinear);
  s.min_ratio = 0.0;
  EXPECT_DOUBLE_EQ(learning_rate_at(s, 6), 0.4);
  EXPECT_DOUBLE_EQ(learning_rate_at(s, 9), 0.25);
  EXPECT_NEAR(learning_rate_at(s, 13), 0.05, 1e-15);
  EXPECT_DOUBLE_EQ(learning_rate_at(s, 14), 0.0);
  EXPECT_DOUBLE_EQ(learning_rate_at(s, 50), 0.0);
}

TEST(LearningRate, CosineDecaysToMinRatio) {
  // lr = 0.5 * (0.2 + 0.8 * (1 + cos(pi p)) / 2):
  //   p = 0.2 (step 6): cos(0.2 pi) = 0.809017 -> 0.5 * (0.2 + 0.4 * 1.809017) = 0.4618034
  //   p = 0.5 (step 9): cos = 0 -> 0.5 * (0.2 + 0.4) = 0.3
  //   p = 1 (step 14 and after): cos = -1 -> 0.5 * 0.2 = 0.1
  const LrSchedule s = schedule(ScheduleType::kCosine);
  EXPECT_NEAR(learning_rate_at(s, 6), 0.4618034, 1e-7);
  EXPECT_NEAR(learning_rate_at(s, 9), 0.3, 1e-15);
  EXPECT_NEAR(learning_rate_at(s, 14), 0.1, 1e-15);
  EXPECT_NEAR(learning_rate_at(s, 100), 0.1, 1e-15);
  // min_ratio 0: the plain half cosine, 0.5 * (1 + cos(0.5 pi)) / 2 = 0.25 at mid-way.
  LrSchedule zero = s;
  zero.min_ratio = 0.0;
  EXPECT_NEAR(learning_rate_at(zero, 9), 0.25, 1e-15);
  EXPECT_NEAR(learning_rate_at(zero, 14), 0.0, 1e-15);
  // Decreasing all the way down.
  for (int64_t step = 4; step < 14; ++step) EXPECT_GT(learning_rate_at(s, step), learning_rate_at(s, step + 1)) << step;
}

TEST(LearningRate, NoWarmupStartsAtBase) {
  LrSchedule s = schedule(ScheduleType::kLinear);
  s.warmup_steps = 0;
  s.max_steps = 10;
  EXPECT_DOUBLE_EQ(learning_rate_at(s, 0), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate_at(s, 5), 0.25);  // p = 5 / 10
}

bool is_permutation_of_range(std::vector<int64_t> v, int64_t n) {
  std::sort(v.begin(), v.end());
  std::vector<int64_t> range(n);
  std::iota(range.begin(), range.end(), 0);
  return v == range;
}

TEST(StreamIndices, EachEpochIsAPermutationOfItsOwn) {
  const int64_t n = 7;
  const std::vector<int64_t> s = stream_indices(/*seed=*/3, /*position=*/0, /*count=*/4 * n, n);
  ASSERT_EQ(s.size(), static_cast<size_t>(4 * n));
  std::vector<std::vector<int64_t>> epochs;
  for (int64_t e = 0; e < 4; ++e) {
    epochs.emplace_back(s.begin() + e * n, s.begin() + (e + 1) * n);
    EXPECT_TRUE(is_permutation_of_range(epochs.back(), n)) << "epoch " << e;
  }
  // Reshuffled per epoch (1 in 5040 to repeat by chance; fixed seed, so this is checked once).
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
  std::vector<int64_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(epochs[0], identity) << "not shuffled";
  // A one-row dataset is all row 0.
  EXPECT_EQ(stream_indices(3, 5, 3, 1), (std::vector<int64_t>{0, 0, 0}));
}

TEST(StreamIndices, PureFunctionOfSeedAndPosition) {
  const int64_t n = 10;
  EXPECT_EQ(stream_indices(42, 0, 30, n), stream_indices(42, 0, 30, n));
  EXPECT_NE(stream_indices(42, 0, n, n), stream_indices(43, 0, n, n)) << "the seed must matter";
  // A far position needs no replay of what came before: epoch 1000 read directly equals
  // epoch 1000 inside a read starting one epoch earlier.
  const std::vector<int64_t> direct = stream_indices(42, 1000 * n, n, n);
  const std::vector<int64_t> longer = stream_indices(42, 999 * n, 2 * n, n);
  EXPECT_EQ(direct, std::vector<int64_t>(longer.begin() + n, longer.end()));
  EXPECT_TRUE(is_permutation_of_range(direct, n));
}

TEST(StreamIndices, WindowsAcrossEpochBoundariesEqualTheConcatenation) {
  // n = 7: epochs start at 7, 14, 21. Windows [5, 9) [9, 16) [16, 23) each cross one.
  const int64_t n = 7;
  const std::vector<int64_t> whole = stream_indices(11, 5, 18, n);  // [5, 23)
  std::vector<int64_t> joined;
  for (auto [position, count] : std::vector<std::pair<int64_t, int64_t>>{{5, 4}, {9, 7}, {16, 7}}) {
    const std::vector<int64_t> w = stream_indices(11, position, count, n);
    joined.insert(joined.end(), w.begin(), w.end());
  }
  EXPECT_EQ(joined, whole);
  // And one position at a time (what a resumed run at any step reads).
  for (int64_t p = 5; p < 23; ++p) EXPECT_EQ(stream_indices(11, p, 1, n)[0], whole[p - 5]) << "position " << p;
}

}  // namespace
}  // namespace r1kit::pipelines
