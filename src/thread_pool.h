// A fixed pool of worker threads: submit() one task for a future, or parallel_for over
// indices. Used by rewards/ for batched scoring and by data loading.
//
// parallel_for lets the calling thread take indices too and waits only for indices already
// taken, so it may be called from inside a pool task (nesting) without deadlock. After an
// exception the remaining untaken indices are skipped and the first exception is rethrown.
// Not done: priorities, cancellation of submitted tasks, work stealing.
// The destructor runs every task already queued, then joins.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace r1kit {

class ThreadPool {
 public:
  // threads == 0: std::thread::hardware_concurrency() (at least 1). Negative: r1kit::Error.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs fn() on a worker; its result or exception arrives through the future.
  template <class F>
  auto submit(F&& fn) -> std::future<std::invoke_result_t<std::decay_t<F>&>> {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    // std::function must be copyable and packaged_task is not: share it.
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(fn));
    std::future<R> result = task->get_future();
    enqueue([task] { (*task)(); });
    return result;
  }

  // fn(0) ... fn(n-1), in any order, on up to size() threads (the caller is one of them).
  // Returns when every started call has returned; rethrows the first exception.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void enqueue(std::function<void()> task);
  void work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> workers_;         // declared last: started once the rest exists
};

}  // namespace r1kit
