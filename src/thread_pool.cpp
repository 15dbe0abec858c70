// Worker threads over one task queue: see thread_pool.h.
#include "src/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <string>

#include "src/error.h"

namespace r1kit {
namespace {

// Shared by the caller of parallel_for and its helper tasks. A helper that starts after the
// caller returned only sees next >= n and leaves without touching `fn` (which is gone).
struct ForState {
  size_t n = 0;
  const std::function<void(size_t)>* fn = nullptr;
  std::atomic<size_t> next{0};
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;           // indices taken and finished; guarded by mu
  std::exception_ptr error;  // the first one; guarded by mu
};

void take_indices(ForState& s) {
  size_t finished = 0;
  for (size_t i = s.next.fetch_add(1); i < s.n; i = s.next.fetch_add(1)) {
    if (!s.cancel.load(std::memory_order_relaxed)) {
      try {
        (*s.fn)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(s.mu);
        if (!s.error) s.error = std::current_exception();
        s.cancel.store(true, std::memory_order_relaxed);
      }
    }
    ++finished;
  }
  if (finished > 0) {
    std::lock_guard<std::mutex> lock(s.mu);
    s.done += finished;
    if (s.done == s.n) s.cv.notify_all();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads < 0) throw Error("ThreadPool: threads must be >= 0, got " + std::to_string(threads));
  if (threads == 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::enqueue(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();  // submit() tasks catch their own exceptions into the future
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  auto state = std::make_shared<ForState>();
  state->n = n;
  state->fn = &fn;
  // The caller works too, so size() - 1 helpers keep size() threads busy.
  const size_t helpers = std::min(n, workers_.size()) - 1;
  for (size_t h = 0; h < helpers; ++h) enqueue([state] { take_indices(*state); });
  take_indices(*state);
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done == n; });
  if (state->error) std::rethrow_exception(state->error);
}

}  // namespace r1kit
