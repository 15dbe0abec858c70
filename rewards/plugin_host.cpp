// The r1kit side of an isolated reward plug-in (see plugin_host.h).
#include "rewards/plugin_host.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "rewards/plugin_wire.h"
#include "src/config.h"
#include "src/error.h"
#include "src/files.h"
#include "src/thread_pool.h"

namespace r1kit::rewards {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kHostName = "r1kit-plugin-host";

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// "SIGSEGV (Segmentation fault)".
std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return fmt::format("{}{} ({})", abbrev ? "SIG" : "signal ", abbrev ? abbrev : std::to_string(sig), strsignal(sig));
}

}  // namespace

std::string plugin_host_program() {
  std::vector<std::string> tried;
  if (const char* env = std::getenv("R1KIT_PLUGIN_HOST"); env != nullptr && *env != '\0') {
    if (access(env, X_OK) == 0) return env;
    tried.push_back(fmt::format("$R1KIT_PLUGIN_HOST={}", env));
  }
  if (const std::string self = executable_path(); !self.empty()) {
    const fs::path beside = fs::path(self).parent_path() / kHostName;
    if (access(beside.c_str(), X_OK) == 0) return beside.string();
    tried.push_back(beside.string());
  }
#ifdef R1KIT_PLUGIN_HOST_PATH
  if (access(R1KIT_PLUGIN_HOST_PATH, X_OK) == 0) return R1KIT_PLUGIN_HOST_PATH;
  tried.push_back(R1KIT_PLUGIN_HOST_PATH);
#endif
  throw Error(fmt::format("cannot find the {} program (looked for {}); set R1KIT_PLUGIN_HOST or use \"isolate\": false",
                          kHostName, fmt::join(tried, ", ")));
}

PluginHost::PluginHost(std::string path, std::string options_json)
    : path_(std::move(path)), options_json_(std::move(options_json)) {
  start();
}

PluginHost::~PluginHost() { stop(); }

void PluginHost::start() {
  const std::string program = plugin_host_program();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    throw Error(fmt::format("reward plugin {}: socketpair failed: {}", path_, std::strerror(errno)));
  }
  // A batch of long completions in one go where the kernel allows (capped by wmem_max).
  for (int fd : sv) {
    const int bytes = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  char* const argv[] = {const_cast<char*>(kHostName), nullptr};
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]), close(sv[1]);
    throw Error(fmt::format("reward plugin {}: fork failed: {}", path_, std::strerror(errno)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec: the parent may have many threads.
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive r1kit
    if (getppid() != parent) _exit(1);
    if (sv[1] == 3) {
      fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep close-on-exec
    } else {
      dup2(sv[1], 3);
    }
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(2, 1);  // the plug-in's printf must not reach anything r1kit reads
    execv(program.c_str(), argv);
    const char msg[] = "r1kit: cannot exec r1kit-plugin-host\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(127);
  }
  close(sv[1]);
  fd_ = sv[0];
  pid_ = pid;
  buffer_.clear();

  wire::Writer hello;
  hello.str(path_);
  hello.str(options_json_);
  wire::Kind kind{};
  std::string payload;
  if (!hello.send(fd_, wire::Kind::hello) ||
      wire::read_frame(fd_, buffer_, after(60), kind, payload) != wire::ReadStatus::frame ||
      kind != wire::Kind::ready) {
    stop();
    throw Error(fmt::format("reward plugin {}: the plug-in host ({}) did not start", path_, program));
  }
  wire::Reader ready(payload);
  const bool ok = ready.u32() != 0;
  const std::string error = ready.str();
  if (!ok) {
    stop();
    throw Error(error);
  }
}

void PluginHost::stop() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

namespace {

// Rows [begin, end) of `batch` as one batch frame's payload, encoded on the caller's pool (the
// fields' JSON text is most of the work, as in-process) and joined in order.
wire::Writer encode_rows(const std::vector<RewardInput>& batch, size_t begin, size_t end, int threads,
                         ThreadPool* pool) {
  std::vector<std::string> rows(end - begin);
  auto encode = [&](size_t k) {
    const RewardInput& in = batch[begin + k];
    const std::string fields = in.fields_json();
    wire::Writer w;
    w.reserve(in.prompt.size() + in.completion.size() + fields.size() + 3 * (sizeof(int64_t) + 1));
    w.cstr(in.prompt);
    w.cstr(in.completion);
    w.cstr(fields);
    rows[k] = w.take();
  };
  if (pool != nullptr) {
    pool->parallel_for(rows.size(), encode);
  } else {
    for (size_t k = 0; k < rows.size(); ++k) encode(k);
  }
  size_t bytes = 2 * sizeof(uint32_t);
  for (const std::string& row : rows) bytes += row.size();
  wire::Writer req;
  req.reserve(bytes);
  req.u32(static_cast<uint32_t>(threads));
  req.u32(static_cast<uint32_t>(rows.size()));
  for (const std::string& row : rows) req.append(row);
  return req;
}

}  // namespace

std::vector<RewardResult> PluginHost::score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool,
                                                  double timeout_s) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = batch.size();
  if (n == 0) return {};
  if (pid_ < 0) start();  // the previous host was stopped at a timeout
  const int threads = pool != nullptr ? std::max(1, pool->size()) : 1;
  // Up to 4 chunks sent back to back: the host scores one while the next is encoded here.
  // (Their results, at most 4 x rows x 280 bytes, always fit the socket's buffer, so neither
  // side can block the other.)
  const size_t chunk = std::max<size_t>(32, (n + 3) / 4);
  // Each thread scores at most ceil(rows / threads) rows, each within timeout_s.
  const double budget_s = timeout_s * std::ceil(static_cast<double>(n) / threads);
  Clock::time_point deadline = Clock::time_point::max();
  for (size_t begin = 0; begin < n; begin += chunk) {
    if (!encode_rows(batch, begin, std::min(n, begin + chunk), threads, pool).send(fd_, wire::Kind::batch)) break;
    if (begin == 0) deadline = after(budget_s);
  }
  // Results chunk by chunk, in order; a crash or a stuck report names a row of the chunk being
  // scored, which starts at out.size().
  std::vector<RewardResult> out;
  out.reserve(n);
  while (out.size() < n) {
    wire::Kind kind{};
    std::string payload;
    const wire::ReadStatus status = wire::read_frame(fd_, buffer_, deadline, kind, payload);
    if (status == wire::ReadStatus::timeout) return timed_out(std::move(out), n, budget_s);
    if (status == wire::ReadStatus::frame && kind == wire::Kind::crash) {
      wire::Reader in(payload);
      const int sig = in.i32();
      const int64_t row = in.i64();
      crashed(batch, sig, row < 0 ? row : static_cast<int64_t>(out.size()) + row);
    }
    if (status != wire::ReadStatus::frame || kind != wire::Kind::results) crashed(batch, 0, -1);
    wire::Reader in(payload);
    for (size_t k = 0, rows = std::min(chunk, n - out.size()); k < rows; ++k) {
      const uint32_t code = in.u32();
      const double value = in.f64();
      std::string why = in.str();
      out.push_back(code == 0   ? RewardResult::make(value, std::move(why))
                    : code == 1 ? RewardResult::skip(std::move(why))
                                : RewardResult::error(std::move(why)));
    }
  }
  return out;
}

// The host died: of the signal its handler reported, or of whatever waitpid says.
void PluginHost::crashed(const std::vector<RewardInput>& batch, int signal, int64_t row) {
  int status = 0;
  const pid_t pid = pid_;
  if (fd_ >= 0) close(fd_);
  fd_ = -1, pid_ = -1;
  std::string how = "closed its socket";
  if (pid > 0 && waitpid(pid, &status, 0) == pid) {
    if (WIFSIGNALED(status)) signal = WTERMSIG(status);
    if (WIFEXITED(status)) how = fmt::format("exited with status {}", WEXITSTATUS(status));
  }
  if (signal != 0) how = "crashed with " + signal_text(signal);
  std::string where = " while scoring a batch";
  if (row >= 0 && static_cast<size_t>(row) < batch.size()) {
    const std::string start(batch[row].completion.substr(0, 60));
    where = fmt::format(" on row {} of the batch (completion {}...)", row, dump_text(Json(start)));
  }
  throw Error(fmt::format("reward plugin {}: {}{}", path_, how, where));
}

// Past the batch's budget: ask the host which rows it is stuck on, then kill it. The rows
// scored so far (`done`) keep their results; the others score as timeouts.
std::vector<RewardResult> PluginHost::timed_out(std::vector<RewardResult> done, size_t rows, double budget_s) {
  std::vector<int64_t> stuck;
  kill(pid_, SIGUSR1);
  wire::Kind kind{};
  std::string payload;
  while (wire::read_frame(fd_, buffer_, after(0.5), kind, payload) == wire::ReadStatus::frame) {
    if (kind != wire::Kind::stuck) continue;  // a late results frame
    wire::Reader in(payload);
    for (uint32_t n = in.u32(); n > 0; --n) stuck.push_back(static_cast<int64_t>(done.size()) + in.i64());
    break;
  }
  stop();
  const std::string which = stuck.empty() ? "" : fmt::format(", stuck on row(s) {}", fmt::join(stuck, ", "));
  for (size_t i = done.size(); i < rows; ++i) {
    const bool on_it = std::find(stuck.begin(), stuck.end(), static_cast<int64_t>(i)) != stuck.end();
    done.push_back(RewardResult::timeout(
        on_it ? fmt::format("timeout: the plug-in was still scoring this row after {:g}s", budget_s)
              : fmt::format("timeout: not scored (the plug-in host was stopped after {:g}s{})", budget_s, which)));
  }
  return done;
}

}  // namespace r1kit::rewards
