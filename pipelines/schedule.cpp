// learning_rate_at, stream_indices (see schedule.h).
#include "pipelines/schedule.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace r1kit::pipelines {

double learning_rate_at(const LrSchedule& s, int64_t step) {
  if (step < s.warmup_steps) return s.base * static_cast<double>(step + 1) / s.warmup_steps;
  const double span = static_cast<double>(std::max<int64_t>(s.max_steps - s.warmup_steps, 1));
  const double progress = std::min(1.0, static_cast<double>(step - s.warmup_steps) / span);
  switch (s.type) {
    case ScheduleType::kConstant:
      return s.base;
    case ScheduleType::kLinear:
      return s.base * (1.0 - progress);
    case ScheduleType::kCosine:
      return s.base * (s.min_ratio + (1.0 - s.min_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress)));
  }
  return s.base;
}

std::vector<int64_t> stream_indices(uint64_t seed, int64_t position, int64_t count, int64_t n) {
  std::vector<int64_t> out;
  std::vector<int64_t> order(n);
  int64_t epoch = -1;
  for (int64_t p = position; p < position + count; ++p) {
    if (p / n != epoch) {  // a new epoch: its own permutation
      epoch = p / n;
      std::iota(order.begin(), order.end(), 0);
      std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
      std::shuffle(order.begin(), order.end(), rng);
    }
    out.push_back(order[p % n]);
  }
  return out;
}

}  // namespace r1kit::pipelines
