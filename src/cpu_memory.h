// Live tensor bytes on the CPU, as CUDA's caching allocator counts them on the GPU: a thin
// allocator in front of LibTorch's CPU allocator that adds each allocation's size and
// subtracts it when the tensor's storage is freed, with a resettable peak. The process's
// resident size (RSS) says less about what a step needs: glibc keeps freed blocks resident
// and the peak creeps up from step to step, so `r1kit plan` is checked against this count.
// install() once at start-up (r1kit's main does); allocations made before are not counted.
#pragma once
#include <cstdint>

namespace r1kit::cpu_memory {

void install();
bool installed();
int64_t current_bytes();
int64_t peak_bytes();
void reset_peak();  // peak = current

}  // namespace r1kit::cpu_memory
