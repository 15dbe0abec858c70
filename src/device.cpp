// resolve_device (see device.h).
#include "src/device.h"

#include <ATen/Context.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <dlfcn.h>

#include <cstring>
#include <fstream>

#include "src/cpu_memory.h"
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

int64_t peak_memory_bytes(const c10::Device& device) {
  if (device.is_cuda()) {
    const auto stats = c10::getDeviceAllocator(c10::kCUDA)->getDeviceStats(device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
  return cpu_memory::installed() ? cpu_memory::peak_bytes() : peak_rss_bytes();
}

namespace {

// A "Vm...:  1234 kB" line of /proc/self/status in bytes; 0 when absent.
int64_t proc_status_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::strlen(key))) * 1024;
  }
  return 0;
}

}  // namespace

int64_t peak_rss_bytes() { return proc_status_bytes("VmHWM:"); }

int64_t resident_bytes() { return proc_status_bytes("VmRSS:"); }

void reset_peak_memory(const c10::Device& device) {
  if (device.is_cuda()) c10::getDeviceAllocator(c10::kCUDA)->resetPeakStats(device.index() < 0 ? 0 : device.index());
  cpu_memory::reset_peak();
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

int64_t available_memory_bytes(const c10::Device& device) {
  if (device.is_cpu()) {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    int64_t kib = 0;
    while (in >> key >> kib >> unit) {
      if (key == "MemAvailable:") return kib * 1024;
    }
    return 0;
  }
  if (device.is_cuda()) {
    // No CUDA headers in r1kit: the runtime's own entry point, if LibTorch loaded it.
    using MemGetInfo = int (*)(size_t*, size_t*);
    static const auto mem_get_info = reinterpret_cast<MemGetInfo>(dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
    size_t free = 0, total = 0;
    if (mem_get_info == nullptr || mem_get_info(&free, &total) != 0) return 0;
    return static_cast<int64_t>(free);
  }
  return 0;
}

}  // namespace r1kit
