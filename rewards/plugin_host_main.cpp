// r1kit-plugin-host: the process a reward plug-in runs in when it is isolated (the default;
// plugin_host.h is the r1kit side). r1kit starts it with the socket on fd 3, sends `hello`
// (library path, options), then batches; it answers `ready`, then `results` per batch. A
// crash of the plug-in reaches the signal handler, which sends `crash` (the signal and the
// row the crashing thread was scoring) and dies of the same signal; SIGUSR1 (r1kit's timeout)
// answers `stuck` with the rows in flight. Plug-in output on stdout goes to stderr (fd 1 is
// not the socket). Not a user-facing command.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "rewards/plugin_library.h"
#include "rewards/plugin_wire.h"
#include "src/error.h"

namespace {

using namespace r1kit::rewards;

constexpr int kSocket = 3;
constexpr int kMaxThreads = 256;

// The row each scoring thread is on (-1: none): read by the signal handlers, so plain
// lock-free atomics and a thread_local index, nothing that allocates.
std::atomic<int64_t> g_in_flight[kMaxThreads];
std::atomic<int> g_threads{0};
thread_local int64_t t_row = -1;

// Async-signal-safe frame assembly: a fixed buffer, memcpy, write.
struct SignalFrame {
  char bytes[wire::kHeaderBytes + 8 + 8 * kMaxThreads];
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

void on_stuck(int) {
  SignalFrame f;
  uint32_t count = 0;
  int64_t rows[kMaxThreads];
  for (int t = 0; t < g_threads.load(); ++t) {
    const int64_t row = g_in_flight[t].load();
    if (row >= 0) rows[count++] = row;
  }
  f.put(&count, sizeof count);
  f.put(rows, count * sizeof(int64_t));
  f.send(wire::Kind::stuck);
}

// The crash handler must run even when the plug-in overflowed its stack: while a thread
// scores it has an alternate signal stack (sigaltstack is per thread), and the previous one
// (a sanitizer runtime may own it) is put back before the memory goes or the thread ends.
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

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_crash;
  sa.sa_flags = SA_ONSTACK;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP}) sigaction(sig, &sa, nullptr);
  sa.sa_handler = on_stuck;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
}

struct Row {
  std::string prompt, completion, fields;
};

// Scores the rows on `threads` threads, each taking the next row; every thread records the
// row it is on for the handlers.
std::vector<RewardResult> score_rows(const PluginLibrary& lib, const std::vector<Row>& rows, int threads) {
  std::vector<RewardResult> out(rows.size());
  std::atomic<size_t> next{0};
  threads = std::max(1, std::min({threads, kMaxThreads, static_cast<int>(rows.size())}));
  for (int t = 0; t < threads; ++t) g_in_flight[t] = -1;
  g_threads = threads;
  auto work = [&](int t) {
    const AltSignalStack alt;
    for (size_t i; (i = next.fetch_add(1)) < rows.size();) {
      t_row = static_cast<int64_t>(i);
      g_in_flight[t] = t_row;
      out[i] = lib.score(rows[i].prompt.c_str(), rows[i].completion.c_str(), rows[i].fields.c_str());
      g_in_flight[t] = -1;
      t_row = -1;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  return out;
}

std::string results_frame(const std::vector<RewardResult>& results) {
  wire::Writer w;
  for (const RewardResult& r : results) {
    const uint32_t status = r.failure == RewardResult::Failure::error ? 2 : r.value ? 0 : 1;
    w.u32(status);
    w.f64(r.value.value_or(0.0));
    w.str(r.why);
  }
  return w.frame(wire::Kind::results);
}

}  // namespace

int main() {
  const AltSignalStack alt;
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
    if (!wire::write_all(kSocket, ready.frame(wire::Kind::ready)) || !lib) return 0;
  }
  while (wire::read_frame(kSocket, buffer, forever, kind, payload) == wire::ReadStatus::frame) {
    if (kind != wire::Kind::batch) return 2;
    wire::Reader in(payload);
    const int threads = static_cast<int>(in.u32());
    std::vector<Row> rows(in.u32());
    for (Row& row : rows) row = {in.str(), in.str(), in.str()};
    if (!wire::write_all(kSocket, results_frame(score_rows(*lib, rows, threads)))) return 0;
  }
  return 0;  // r1kit closed the socket
}
