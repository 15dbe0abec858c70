// The counting CPU allocator (see cpu_memory.h). A block is the inner allocator's raw block
// with a 64-byte header in front that holds the size (64 keeps the data as aligned as
// LibTorch's CPU allocator makes it); the DataPtr stays a plain pointer (context == data),
// which oneDNN's bf16 paths require (raw_allocate), and its deleter subtracts the size and
// hands the block back to the inner allocator's raw deleter.
#include "src/cpu_memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace r1kit::cpu_memory {
namespace {

constexpr size_t kHeader = 64;

std::atomic<int64_t> g_current{0}, g_peak{0};
std::atomic<bool> g_installed{false};
c10::Allocator* g_inner = nullptr;
c10::DeleterFnPtr g_inner_delete = nullptr;

void release(void* data) {
  if (data == nullptr) return;
  char* block = static_cast<char*>(data) - kHeader;
  int64_t bytes = 0;
  std::memcpy(&bytes, block, sizeof(bytes));
  g_current.fetch_sub(bytes, std::memory_order_relaxed);
  g_inner_delete(block);
}

class CountingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    char* block = static_cast<char*>(g_inner->raw_allocate(n + kHeader));
    const auto bytes = static_cast<int64_t>(n);
    std::memcpy(block, &bytes, sizeof(bytes));
    const int64_t now = g_current.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    int64_t peak = g_peak.load(std::memory_order_relaxed);
    while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    void* data = block + kHeader;
    return {data, data, &release, c10::Device(c10::kCPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
};

}  // namespace

void install() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_inner = c10::GetCPUAllocator();
    g_inner_delete = g_inner->raw_deleter();
    if (g_inner_delete == nullptr) return;  // an allocator without plain blocks: not counted (RSS instead)
    static CountingAllocator counting;
    c10::SetCPUAllocator(&counting, /*priority=*/1);
    g_installed = true;
  });
}

bool installed() { return g_installed.load(); }
int64_t current_bytes() { return g_current.load(std::memory_order_relaxed); }
int64_t peak_bytes() { return g_peak.load(std::memory_order_relaxed); }
void reset_peak() { g_peak.store(g_current.load(std::memory_order_relaxed), std::memory_order_relaxed); }

}  // namespace r1kit::cpu_memory
