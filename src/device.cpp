// resolve_device (see device.h).
#include "src/device.h"

#include <ATen/Context.h>

#include "src/error.h"

namespace r1kit {

DeviceChoice resolve_device(const std::string& device, const std::string& dtype) {
  DeviceChoice d;
  const bool have_cuda = at::hasCUDA();
  if (device == "auto") {
    d.device = have_cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  } else if (device == "cpu") {
    d.device = c10::Device(c10::kCPU);
  } else if (device.rfind("cuda", 0) == 0) {
    if (!have_cuda) throw Error("--device " + device + ": this LibTorch sees no CUDA device");
    try {
      d.device = c10::Device(device);
    } catch (const std::exception&) {
      throw Error("--device " + device + ": expected cuda or cuda:<index>");
    }
  } else {
    throw Error("--device " + device + ": expected auto, cpu, cuda or cuda:<index>");
  }
  if (dtype == "auto") {
    d.dtype = d.device.is_cuda() ? c10::kBFloat16 : c10::kFloat;
  } else if (dtype == "float32" || dtype == "fp32") {
    d.dtype = c10::kFloat;
  } else if (dtype == "bfloat16" || dtype == "bf16") {
    d.dtype = c10::kBFloat16;
  } else {
    throw Error("--dtype " + dtype + ": expected auto, float32 or bfloat16");
  }
  return d;
}

std::string to_string(const DeviceChoice& d) { return d.device.str() + "/" + std::string(c10::toString(d.dtype)); }

}  // namespace r1kit
