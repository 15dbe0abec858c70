// What every trainer stage shares about time: the learning-rate schedule and the seeded,
// epoch-wise shuffled order of a dataset. Both are pure functions of the step / position,
// which is what makes resume exact without saving any generator state.
#pragma once
#include <cstdint>
#include <vector>

#include "src/config.h"

namespace r1kit::pipelines {

// The decay after warm-up (TRL's lr_scheduler_type).
enum class ScheduleType { kConstant, kLinear, kCosine };
inline constexpr EnumName<ScheduleType> kScheduleTypeNames[] = {
    {"constant", ScheduleType::kConstant}, {"linear", ScheduleType::kLinear}, {"cosine", ScheduleType::kCosine}};

struct LrSchedule {
  double base = 1e-3;  // peak learning rate
  ScheduleType type = ScheduleType::kConstant;
  int64_t warmup_steps = 0;  // linear ramp from base/warmup to base
  int64_t max_steps = 1;     // the decay ends here
  double min_ratio = 0.0;    // cosine decays to base * min_ratio
};

double learning_rate_at(const LrSchedule& s, int64_t step);

// Indices into a dataset of n rows for stream positions [position, position + count): epoch
// e = position / n is a permutation of 0..n-1 seeded by (seed, e).
std::vector<int64_t> stream_indices(uint64_t seed, int64_t position, int64_t count, int64_t n);

}  // namespace r1kit::pipelines
