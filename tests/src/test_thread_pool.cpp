// ThreadPool: futures carry values and exceptions, parallel_for visits each index once, runs
// concurrently, rethrows, nests without deadlock; the destructor drains the queue.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "src/error.h"
#include "src/thread_pool.h"

namespace r1kit {
namespace {

TEST(ThreadPool, Size) {
  EXPECT_EQ(ThreadPool(3).size(), 3);
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(ThreadPool(0).size(), hw > 0 ? hw : 1);
  EXPECT_THROW(ThreadPool(-1), Error);
}

TEST(ThreadPool, SubmitReturnsValueAndException) {
  ThreadPool pool(2);
  std::future<int> sum = pool.submit([] { return 20 + 22; });
  std::future<std::string> text = pool.submit([] { return std::string("scored"); });
  std::future<void> fails = pool.submit([] { throw std::runtime_error("bad reward"); });
  EXPECT_EQ(sum.get(), 42);
  EXPECT_EQ(text.get(), "scored");
  EXPECT_THROW(fails.get(), std::runtime_error);
  // A move-only callable works too (std::function alone would reject it).
  auto owned = std::make_unique<int>(7);
  EXPECT_EQ(pool.submit([p = std::move(owned)] { return *p; }).get(), 7);
}

TEST(ThreadPool, ParallelForVisitsEachIndexOnce) {
  ThreadPool pool(4);
  constexpr size_t n = 1000;
  std::vector<std::atomic<int>> hits(n);
  std::atomic<size_t> sum{0};
  pool.parallel_for(n, [&](size_t i) {
    hits[i]++;
    sum += i;
  });
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << i;
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);  // 0 + 1 + ... + 999 = 499500
  pool.parallel_for(0, [](size_t) { FAIL() << "n = 0 calls nothing"; });
}

TEST(ThreadPool, ParallelForRunsConcurrently) {
  // Two indices that each wait until both have started: finishes only if two threads run
  // them at once (the caller and one worker). The timeout turns a hang into a failure.
  ThreadPool pool(2);
  std::atomic<int> started{0};
  std::atomic<bool> both{true};
  pool.parallel_for(2, [&](size_t) {
    started++;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (started.load() < 2) {
      if (std::chrono::steady_clock::now() > deadline) {
        both = false;
        return;
      }
      std::this_thread::yield();
    }
  });
  EXPECT_TRUE(both.load());
}

TEST(ThreadPool, ParallelForRethrowsTheExceptionAndPoolStaysUsable) {
  ThreadPool pool(3);
  try {
    pool.parallel_for(100, [](size_t i) {
      if (i == 7) throw std::runtime_error("index 7 failed");
    });
    FAIL() << "expected the exception of index 7";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "index 7 failed");
  }
  std::atomic<int> count{0};
  pool.parallel_for(10, [&](size_t) { count++; });
  EXPECT_EQ(count.load(), 10);
}

TEST(ThreadPool, NestedParallelForDoesNotDeadlock) {
  // Both workers block in an outer task's inner parallel_for; the callers take the inner
  // indices themselves, so it completes. Sum of 4 x (0 + ... + 99) = 4 x 4950 = 19800.
  ThreadPool pool(2);
  std::atomic<size_t> sum{0};
  pool.parallel_for(4, [&](size_t) { pool.parallel_for(100, [&](size_t j) { sum += j; }); });
  EXPECT_EQ(sum.load(), 19800u);
}

TEST(ThreadPool, DestructorRunsQueuedTasks) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(1);
    for (int i = 0; i < 10; ++i) {
      pool.submit([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ran++;
      });
    }
  }
  EXPECT_EQ(ran.load(), 10);
}

}  // namespace
}  // namespace r1kit
