// The draw at temperature T with no other processor, fused for the CPU (fp32, AVX2 + FMA):
// per row, one pass for the max, one for exp((x - max) / T) into a row buffer with the
// total summed in double, and a walk of the CDF up to the drawn token. Replaces six ATen
// passes over [N, V] (divide, amax, subtract, exp, a double copy for the sum, gather) that
// together took ~15% of a decode step. Same rule as sampler.cpp's draw: the first token
// whose cumulative mass exceeds u * total, the mode when rounding leaves none.
#pragma once
#include <cstdint>

namespace r1kit::rollout {

// logits [N, V] row-major, uniforms [N] in [0, 1) -> tokens [N], logprobs [N] (of the
// tempered distribution). Callers ask policy::cpu::kernels_apply (policy/cpu/dispatch.h).
void cpu_draw(const float* logits, int64_t N, int64_t V, double temperature, const double* uniforms, int64_t* tokens,
              float* logprobs);

}  // namespace r1kit::rollout
