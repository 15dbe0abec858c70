// r1kit-plugin-host: the process a reward plug-in runs in when it is isolated (the default;
// plugin_host.h is the r1kit side). r1kit starts it with the socket on fd 3, sends `hello`
// (library path, options), then batches; it answers `ready`, then `results` per batch. A
// crash of the plug-in reaches the signal handler, which sends `crash` (the signal and the
// row the crashing thread was scoring) and dies of the same signal; SIGUSR1 (r1kit's timeout)
// answers `stuck` with the rows in flight (from a thread of its own, see report_stuck_rows). Plug-in output on stdout
// goes to stderr (fd 1 is not the socket). Not a user-facing command.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "rewards/plugin_library.h"
#include "rewards/plugin_wire.h"
#include "src/error.h"
#include "src/thread_pool.h"

namespace {

using namespace r1kit::rewards;

constexpr int kSocket = 3;
constexpr int kMaxThreads = 256;

// The row each scoring thread is on (-1: none): read by the crash handler and the stuck
// reporter, so plain lock-free atomics and thread_locals, nothing that allocates. A thread takes its slot the
// first time it scores.
std::atomic<int64_t> g_in_flight[kMaxThreads];
std::atomic<int> g_threads{0};
thread_local int64_t t_row = -1;

// The crash frame, assembled async-signal-safely: a fixed buffer, memcpy, write.
struct SignalFrame {
  char bytes[wire::kHeaderBytes + sizeof(int32_t) + sizeof(int64_t)];
  size_t n = wire::kHeaderBytes;
  void put(const void* p, size_t k) {
    std::memcpy(bytes + n, p, k);
    n += k;
  }
  void send(wire::Kind kind) {
    const auto k = static_cast<uint32_t>(kind);
    const uint64_t len = n - wire::kHeaderBytes;
    std::memcpy(bytes, &k, sizeof k);
    std::memcpy(bytes + sizeof k, &len, sizeof len);
    for (size_t done = 0; done < n;) {
      const ssize_t w = write(kSocket, bytes + done, n - done);
      if (w <= 0) return;
      done += static_cast<size_t>(w);
    }
  }
};

void on_crash(int sig) {
  SignalFrame f;
  const int32_t s = sig;
  const int64_t row = t_row;
  f.put(&s, sizeof s);
  f.put(&row, sizeof row);
  f.send(wire::Kind::crash);
  signal(sig, SIG_DFL);
  raise(sig);
}

// The crash handler must run even when the plug-in overflowed its stack: every scoring thread
// has an alternate signal stack (sigaltstack is per thread). thread_local, so that it is put
// back (a sanitizer runtime may own the previous one) before the thread's memory goes:
// C++ thread_local destructors run before the runtime's own thread-exit handlers.
class AltSignalStack {
 public:
  AltSignalStack() : memory_(1 << 16) {
    stack_t ss{};
    ss.ss_sp = memory_.data();
    ss.ss_size = memory_.size();
    sigaltstack(&ss, &previous_);
  }
  ~AltSignalStack() { sigaltstack(&previous_, nullptr); }
  AltSignalStack(const AltSignalStack&) = delete;
  AltSignalStack& operator=(const AltSignalStack&) = delete;

 private:
  std::vector<char> memory_;
  stack_t previous_{};
};

// This thread's in-flight slot, with its alternate signal stack in place.
std::atomic<int64_t>& thread_slot() {
  thread_local const AltSignalStack alt;
  thread_local std::atomic<int64_t>& slot = g_in_flight[std::min(g_threads.fetch_add(1), kMaxThreads - 1)];
  return slot;
}

// One frame at a time on the socket: results (the main thread) and stuck reports.
std::mutex g_write;

// SIGUSR1 (r1kit's timeout) is blocked in every thread and taken here with sigwait, so the
// `stuck` answer is written under the same lock as results and never lands inside one.
void report_stuck_rows() {
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  while (true) {
    int sig = 0;
    if (sigwait(&usr1, &sig) != 0) continue;
    wire::Writer w;
    std::vector<int64_t> rows;
    for (int t = 0; t < std::min(g_threads.load(), kMaxThreads); ++t) {
      if (const int64_t row = g_in_flight[t].load(); row >= 0) rows.push_back(row);
    }
    w.u32(static_cast<uint32_t>(rows.size()));
    for (int64_t row : rows) w.i64(row);
    const std::lock_guard<std::mutex> lock(g_write);
    w.send(kSocket, wire::Kind::stuck);
  }
}

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_crash;
  sa.sa_flags = SA_ONSTACK;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP}) sigaction(sig, &sa, nullptr);
  sigset_t usr1;  // blocked here, so in every thread started from now on
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  std::thread(report_stuck_rows).detach();
}

struct Row {
  const char* prompt;
  const char* completion;
  const char* fields;
};

// Scores the rows on `pool` (the caller's thread count), each thread taking the next row and
// recording it for the handlers. Rows point into the received frame: nothing is copied.
std::vector<RewardResult> score_rows(const PluginLibrary& lib, const std::vector<Row>& rows, r1kit::ThreadPool& pool) {
  std::vector<RewardResult> out(rows.size());
  pool.parallel_for(rows.size(), [&](size_t i) {
    std::atomic<int64_t>& slot = thread_slot();
    t_row = static_cast<int64_t>(i);
    slot = t_row;
    out[i] = lib.score(rows[i].prompt, rows[i].completion, rows[i].fields);
    slot = -1;
    t_row = -1;
  });
  return out;
}

bool send_results(const std::vector<RewardResult>& results) {
  wire::Writer w;
  for (const RewardResult& r : results) {
    const uint32_t status = r.failure == RewardResult::Failure::error ? 2 : r.value ? 0 : 1;
    w.u32(status);
    w.f64(r.value.value_or(0.0));
    w.str(r.why);
  }
  const std::lock_guard<std::mutex> lock(g_write);
  return w.send(kSocket, wire::Kind::results);
}

}  // namespace

int main() {
  for (auto& row : g_in_flight) row = -1;  // before any thread takes a slot
  thread_slot();                           // the main thread scores too: its alternate stack before any handler
  install_handlers();
  std::string buffer, payload;
  wire::Kind kind{};
  const auto forever = std::chrono::steady_clock::time_point::max();
  if (wire::read_frame(kSocket, buffer, forever, kind, payload) != wire::ReadStatus::frame || kind != wire::Kind::hello)
    return 2;
  std::unique_ptr<PluginLibrary> lib;
  {
    wire::Reader in(payload);
    const std::string path = in.str();
    const std::string options = in.str();
    wire::Writer ready;
    try {
      lib = std::make_unique<PluginLibrary>(path, options);
      ready.u32(1);
      ready.str("");
    } catch (const r1kit::Error& e) {
      ready.u32(0);
      ready.str(e.what());
    }
    if (!ready.send(kSocket, wire::Kind::ready) || !lib) return 0;
  }
  std::unique_ptr<r1kit::ThreadPool> pool;  // sized by the first batch; again when r1kit's pool changes
  while (wire::read_frame(kSocket, buffer, forever, kind, payload) == wire::ReadStatus::frame) {
    if (kind != wire::Kind::batch) return 2;
    wire::Reader in(payload);
    const int threads = std::clamp(static_cast<int>(in.u32()), 1, kMaxThreads);
    std::vector<Row> rows(in.u32());
    for (Row& row : rows) row = {in.cstr(), in.cstr(), in.cstr()};
    if (!pool || pool->size() != threads) pool = std::make_unique<r1kit::ThreadPool>(threads);
    if (!send_results(score_rows(*lib, rows, *pool))) return 0;
  }
  return 0;  // r1kit closed the socket
}
