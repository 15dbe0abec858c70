// Device and dtype as a runtime choice (`--device auto|cpu|cuda[:i]`, `--dtype
// auto|float32|bfloat16`): auto picks CUDA when LibTorch sees a GPU, and bf16 on CUDA,
// fp32 on CPU (CPU bf16 matmuls are slow and parity tests need fp32).
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

namespace r1kit {

struct DeviceChoice {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;
};

// Throws r1kit::Error for an unknown spelling or "cuda" without a GPU.
DeviceChoice resolve_device(const std::string& device, const std::string& dtype = "auto");
std::string to_string(const DeviceChoice& d);

// Bytes that can still be allocated on `device` now: CPU, /proc/meminfo's MemAvailable;
// CUDA, the driver's free memory on the current device (cudaMemGetInfo, looked up in the
// CUDA runtime LibTorch loaded; blocks LibTorch's caching allocator holds free are not
// counted, so this errs low). 0 when unknown.
int64_t available_memory_bytes(const c10::Device& device);

// The most tensor memory this process held on `device` since the last reset_peak_memory (or
// since it started): CUDA, the caching allocator's peak of allocated bytes (torch.cuda.
// max_memory_allocated); CPU, the peak of live tensor bytes (src/cpu_memory.h, when
// installed; else the peak resident set). What `r1kit plan` predicts.
int64_t peak_memory_bytes(const c10::Device& device);
// The peak resident set of the process (VmHWM of /proc/self/status) since the last reset:
// everything it maps, libraries and allocator slack included. 0 when unknown.
int64_t peak_rss_bytes();
// The process's resident set now (VmRSS): the runtime every r1kit process carries.
int64_t resident_bytes();
// Starts a new peak window for both (CUDA: resetPeakStats; RSS: /proc/self/clear_refs "5",
// which Linux allows on its own process; where it is refused the RSS peak stays since start).
void reset_peak_memory(const c10::Device& device);

}  // namespace r1kit
