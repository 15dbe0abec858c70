// Device and dtype as a runtime choice (`--device auto|cpu|cuda[:i]`, `--dtype
// auto|float32|bfloat16`): auto picks CUDA when LibTorch sees a GPU, and bf16 on CUDA,
// fp32 on CPU (CPU bf16 matmuls are slow and parity tests need fp32).
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace r1kit {

struct DeviceChoice {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;
};

// Throws r1kit::Error for an unknown spelling or "cuda" without a GPU.
DeviceChoice resolve_device(const std::string& device, const std::string& dtype = "auto");
std::string to_string(const DeviceChoice& d);

}  // namespace r1kit
