// `r1kit launch --nproc N [--master-addr A] [--master-port P] -- <r1kit args...>`: runs N
// copies of this r1kit executable on this machine as the ranks of one data-parallel group
// (src/distributed.h), like `torchrun --no-python --nproc-per-node N r1kit ...`.
// Each child gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
// (a free port unless given) and OMP_NUM_THREADS=1 unless set (torchrun's default: N
// processes of all-cores OpenMP oversubscribe the machine). Every output line of every rank is
// passed through prefixed with "[rank i] ", stdout to stdout and stderr to stderr.
// SIGINT/SIGTERM are forwarded to all ranks (children sit in their own process group, so a
// terminal's Ctrl-C reaches them once, through here). When a rank exits non-zero, the others
// get SIGTERM (SIGKILL after 10 s) and launch fails naming that rank. Children die with the
// launcher (PR_SET_PDEATHSIG). Not here: several machines (use torchrun or srun there).
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "src/cli/commands.h"
#include "src/error.h"
#include "src/files.h"

extern char** environ;

namespace r1kit::cli {
namespace {

struct LaunchArgs {
  int nproc = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;               // 0: a free port
  std::vector<std::string> command;  // r1kit arguments after `--`
};

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

// A port nobody listens on right now (the kernel's choice for port 0).
int free_port(const std::string& addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  if (fd < 0 || ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error(fmt::format("launch: cannot bind a free port on {} (pass --master-port)", addr));
  }
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

// One child's output stream: bytes are cut into lines, each written with the rank prefix.
struct Stream {
  int fd = -1;
  int out_fd = 1;
  std::string prefix;
  std::string partial;

  void emit(std::string_view line) const {
    std::string s = prefix;
    s.append(line);
    s.push_back('\n');
    for (size_t off = 0; off < s.size();) {
      const ssize_t w = ::write(out_fd, s.data() + off, s.size() - off);
      if (w <= 0) {
        if (errno == EINTR) continue;
        return;
      }
      off += static_cast<size_t>(w);
    }
  }
  // Reads what is there; false at end of stream.
  bool pump() {
    char buf[65536];
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      if (!partial.empty()) emit(partial);
      partial.clear();
      ::close(fd);
      fd = -1;
      return false;
    }
    partial.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      emit(std::string_view(partial).substr(start, nl - start));
    }
    partial.erase(0, start);
    return true;
  }
};

struct Child {
  pid_t pid = -1;
  bool running = false;
  int status = 0;
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "stopped";
}

int run_launch(const LaunchArgs& a) {
  if (a.nproc < 1) throw Error(fmt::format("launch: --nproc {} must be at least 1", a.nproc));
  if (a.command.empty()) throw Error("launch: nothing to run; usage: r1kit launch --nproc N -- run RECIPE.json ...");
  const std::string exe = executable_path();
  if (exe.empty()) throw Error("launch: cannot read /proc/self/exe");
  const int port = a.master_port > 0 ? a.master_port : free_port(a.master_addr);

  // argv and envp of every child, built before fork (only async-signal-safe calls after it).
  std::vector<std::string> argv_s = {exe};
  argv_s.insert(argv_s.end(), a.command.begin(), a.command.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::vector<std::string> ours = {
      "RANK=", "LOCAL_RANK=", "WORLD_SIZE=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT=", "TORCHELASTIC_"};
  std::vector<std::string> base_env;
  bool has_omp = false;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    bool skip = false;
    for (const auto& p : ours) skip = skip || kv.rfind(p, 0) == 0;
    if (!skip) base_env.push_back(kv);
    has_omp = has_omp || kv.rfind("OMP_NUM_THREADS=", 0) == 0;
  }
  if (!has_omp) base_env.push_back("OMP_NUM_THREADS=1");
  std::vector<std::vector<std::string>> envs_s(a.nproc, base_env);
  std::vector<std::vector<char*>> envs(a.nproc);
  for (int r = 0; r < a.nproc; ++r) {
    for (const std::string& kv : {fmt::format("RANK={}", r), fmt::format("LOCAL_RANK={}", r),
                                  fmt::format("WORLD_SIZE={}", a.nproc), fmt::format("LOCAL_WORLD_SIZE={}", a.nproc),
                                  "MASTER_ADDR=" + a.master_addr, fmt::format("MASTER_PORT={}", port)}) {
      envs_s[r].push_back(kv);
    }
    for (auto& s : envs_s[r]) envs[r].push_back(s.data());
    envs[r].push_back(nullptr);
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::vector<Child> children(a.nproc);
  std::vector<Stream> streams;
  const pid_t launcher = ::getpid();
  for (int r = 0; r < a.nproc; ++r) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw Error("launch: pipe() failed");
    const pid_t pid = ::fork();
    if (pid < 0) throw Error("launch: fork() failed");
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != launcher) ::_exit(127);  // the launcher died before prctl
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::execve(exe.c_str(), argv.data(), envs[r].data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    children[r] = {pid, true, 0};
    streams.push_back({out[0], 1, fmt::format("[rank {}] ", r), {}});
    streams.push_back({err[0], 2, fmt::format("[rank {}] ", r), {}});
  }
  std::fprintf(stderr, "r1kit launch: %d ranks at %s:%d: %s\n", a.nproc, a.master_addr.c_str(), port,
               fmt::format("{}", fmt::join(a.command, " ")).c_str());

  using Clock = std::chrono::steady_clock;
  int failed_rank = -1;
  int forwarded = 0;
  Clock::time_point stop_sent{};
  bool killed = false;
  auto running = [&] {
    int n = 0;
    for (const auto& c : children) n += c.running;
    return n;
  };
  auto signal_all = [&](int sig) {
    for (const auto& c : children) {
      if (c.running) ::kill(c.pid, sig);
    }
  };
  while (running() > 0 || std::any_of(streams.begin(), streams.end(), [](const Stream& s) { return s.fd >= 0; })) {
    if (g_signal != 0 && forwarded != g_signal) {
      forwarded = g_signal;
      signal_all(forwarded);
      if (stop_sent == Clock::time_point{}) stop_sent = Clock::now();
    }
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < streams.size(); ++i) {
      if (streams[i].fd >= 0) {
        fds.push_back({streams[i].fd, POLLIN, 0});
        which.push_back(i);
      }
    }
    const int ready = ::poll(fds.data(), fds.size(), 100);
    for (size_t k = 0; ready > 0 && k < fds.size(); ++k) {
      if (fds[k].revents != 0) streams[which[k]].pump();
    }
    for (int r = 0; r < a.nproc; ++r) {
      Child& c = children[r];
      if (!c.running) continue;
      if (::waitpid(c.pid, &c.status, WNOHANG) != c.pid) continue;
      c.running = false;
      const bool ok = WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0;
      if (!ok && failed_rank < 0 && g_signal == 0) {
        failed_rank = r;
        signal_all(SIGTERM);  // one rank is gone: the others would only wait for it
        stop_sent = Clock::now();
      }
    }
    if (!killed && stop_sent != Clock::time_point{} && Clock::now() - stop_sent > std::chrono::seconds(10)) {
      signal_all(SIGKILL);
      killed = true;
    }
  }
  if (failed_rank >= 0) {
    int others = 0;
    for (int r = 0; r < a.nproc; ++r) others += r != failed_rank;
    throw Error(fmt::format("launch: rank {} {}; stopped the other {} rank(s)", failed_rank,
                            describe_status(children[failed_rank].status), others));
  }
  if (g_signal != 0) {
    std::fprintf(stderr, "r1kit launch: interrupted (%s), forwarded to every rank\n", strsignal(g_signal));
    return 128 + g_signal;
  }
  for (int r = 0; r < a.nproc; ++r) {
    if (!(WIFEXITED(children[r].status) && WEXITSTATUS(children[r].status) == 0)) {
      throw Error(fmt::format("launch: rank {} {}", r, describe_status(children[r].status)));
    }
  }
  return 0;
}

}  // namespace

void add_launch_command(CLI::App& app) {
  auto a = std::make_shared<LaunchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "launch", "run N ranks of an r1kit command on this machine (data-parallel), e.g. launch --nproc 2 -- run R.json");
  cmd->add_option("--nproc,-n", a->nproc, "number of ranks (processes)")->capture_default_str();
  cmd->add_option("--master-addr", a->master_addr, "address of rank 0's rendezvous store")->capture_default_str();
  cmd->add_option("--master-port", a->master_port, "port of the rendezvous store (0 = a free one)")
      ->capture_default_str();
  cmd->add_option("command", a->command, "the r1kit arguments each rank runs, after --")->required();
  cmd->callback([a] { exit_code() = run_launch(*a); });
}

}  // namespace r1kit::cli
