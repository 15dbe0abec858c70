// CPU kernel dispatch (see dispatch.h).
#include "policy/cpu/dispatch.h"

#include <ATen/ATen.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "src/error.h"

namespace r1kit::policy::cpu {
namespace {

// The switch, from R1KIT_CPU_KERNELS at the first use.
std::atomic<bool>& switched_on() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("R1KIT_CPU_KERNELS");
    if (v == nullptr || std::string(v) == "1") return true;
    if (std::string(v) == "0") return false;
    throw Error(std::string("R1KIT_CPU_KERNELS=") + v + ": expected 0 (ATen only) or 1 (the CPU kernels, the default)");
  }()};
  return on;
}

std::atomic<int64_t> calls{0};

}  // namespace

bool cpu_has_avx2_fma() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
}

bool kernels_enabled() { return cpu_has_avx2_fma() && switched_on().load(std::memory_order_relaxed); }

bool set_kernels_enabled(bool on) { return switched_on().exchange(on); }

namespace {
thread_local bool t_aten_only = false;
}  // namespace

AtenOnly::AtenOnly() : previous_(t_aten_only) { t_aten_only = true; }
AtenOnly::~AtenOnly() { t_aten_only = previous_; }

bool kernels_apply(const at::Tensor& x) {
  return x.is_cpu() && x.scalar_type() == at::kFloat && !at::GradMode::is_enabled() && !t_aten_only &&
         kernels_enabled();
}

int64_t kernel_calls() { return calls.load(std::memory_order_relaxed); }

void note_kernel_call() { calls.fetch_add(1, std::memory_order_relaxed); }

}  // namespace r1kit::policy::cpu
