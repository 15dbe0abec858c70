// Sandboxed execution (see sandbox.h).
#include "rewards/sandbox.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "src/error.h"
#include "src/files.h"

namespace r1kit::rewards {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Process-wide limit on concurrent sandboxes.
class Slots {
 public:
  static Slots& instance() {
    static Slots s;
    return s;
  }
  void set_capacity(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    capacity_ = std::max(1, n);
    cv_.notify_all();
  }
  // Returns a slot index in [0, capacity) (used for the sandbox uid).
  int acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return static_cast<int>(used_.size()) < capacity_; });
    int slot = 0;
    while (std::find(used_.begin(), used_.end(), slot) != used_.end()) ++slot;
    used_.push_back(slot);
    return slot;
  }
  void release(int slot) {
    std::lock_guard<std::mutex> lock(mu_);
    used_.erase(std::find(used_.begin(), used_.end(), slot));
    cv_.notify_one();
  }

 private:
  Slots() : capacity_(std::max(1u, std::thread::hardware_concurrency())) {}
  std::mutex mu_;
  std::condition_variable cv_;
  int capacity_;
  std::vector<int> used_;
};

struct SlotGuard {
  int slot;
  SlotGuard() : slot(Slots::instance().acquire()) {}
  ~SlotGuard() { Slots::instance().release(slot); }
};

// A private host directory for the task's files, removed afterwards.
struct TaskDir {
  std::string path;
  TaskDir() {
    std::string tmpl = (fs::temp_directory_path() / "r1kit-sbx-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw Error(fmt::format("sandbox: mkdtemp failed: {}", std::strerror(errno)));
    path = tmpl;
    chmod(path.c_str(), 0755);  // readable by the sandbox uid
  }
  ~TaskDir() {
    // remove_tree, not fs::remove_all: the r1kit binary links LibTorch, whose exported copy
    // of remove_all crashes (src/files.h).
    try {
      remove_tree(path);
    } catch (const Error&) {
    }
  }
};

constexpr uid_t kSandboxUidBase = 990000;  // root runs sandboxes as 990000 + slot

void set_limit(int resource, rlim_t value) {
  struct rlimit rl = {value, value};
  setrlimit(resource, &rl);
}

// RLIMIT_NPROC counts every task (process or thread) of the real uid, machine-wide. Root
// runs each sandbox under a uid of its own, so the cap is the program's alone. A normal
// user's sandbox shares the user's uid: the cap is then what the user already runs plus
// `processes`, or a user with a busy session would find every program unable to fork.
// (Tasks in pid namespaces this process cannot see are missed: bwrap may then fail to
// start, which run_sandboxed reports as an error, never as a score.)
rlim_t process_cap(uid_t run_as, int processes) {
  if (run_as != 0) return static_cast<rlim_t>(processes);
  uid_t uid = getuid();
  rlim_t tasks = 0;
  for (const std::string& name : list_dir("/proc")) {
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream st("/proc/" + name + "/status");
    std::string line;
    bool mine = false;
    while (std::getline(st, line)) {
      if (line.rfind("Uid:", 0) == 0) mine = std::strtoul(line.c_str() + 4, nullptr, 10) == uid;
      if (line.rfind("Threads:", 0) == 0) {
        if (mine) tasks += std::strtoul(line.c_str() + 8, nullptr, 10);
        break;
      }
    }
  }
  return tasks + static_cast<rlim_t>(processes);
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::string> bwrap_prefix(const std::string& task_dir) {
  std::vector<std::string> a = {"bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind",
                                "/usr",  "/usr"};
  for (const char* link : {"bin", "lib", "lib64", "sbin"}) {
    std::error_code ec;
    fs::path p = fs::path("/") / link;
    if (fs::is_symlink(p, ec)) {
      a.insert(a.end(), {"--symlink", fs::read_symlink(p, ec).string(), p.string()});
    } else if (fs::exists(p, ec)) {
      a.insert(a.end(), {"--ro-bind", p.string(), p.string()});
    }
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"});
  if (!task_dir.empty()) a.insert(a.end(), {"--ro-bind", task_dir, "/task"});
  a.insert(a.end(), {"--remount-ro", "/", "--chdir", "/tmp", "--"});
  return a;
}

// bwrap exits as soon as the program does, without waiting for its namespace's init,
// which is then orphaned. Orphans go to the nearest subreaper: this process is made one
// (start_reaping_orphans) so the init is reaped here, by pid, instead of lingering as a
// zombie under PID 1 (some container inits never reap, and each zombie counts against the
// sandbox uid's RLIMIT_NPROC until fork fails). Only the pid bwrap reported and members of
// the program's own process group are waited for, so other children's statuses are never
// taken. Pid reuse cannot bite: a reparented orphan stays a zombie until reaped here.
void start_reaping_orphans() {
  static std::once_flag once;
  std::call_once(once, [] { prctl(PR_SET_CHILD_SUBREAPER, 1); });
}

void reap_orphans(pid_t group, pid_t ns_init) {
  while (waitpid(-group, nullptr, WNOHANG) > 0) {  // unsafe mode: the program's own children
  }
  if (ns_init <= 0) return;
  for (int i = 0; i < 400; ++i) {  // the init exits right after the program
    pid_t w = waitpid(ns_init, nullptr, WNOHANG);
    if (w == ns_init || (w < 0 && errno == ECHILD)) return;  // reaped, or never ours
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(ns_init, SIGKILL);
  waitpid(ns_init, nullptr, 0);
}

SandboxResult run_process(std::vector<std::string> argv, std::string_view stdin_data, const SandboxLimits& limits,
                          const std::string& cwd, uid_t run_as) {
  SandboxResult res;
  // bwrap reports the host pid of the namespace's init on fd 3. Killing that init takes the
  // whole PID namespace down and lets bwrap reap it and exit; killing bwrap itself instead
  // would orphan the init (a zombie no one reaps on hosts whose PID 1 does not).
  bool is_bwrap = !argv.empty() && argv[0] == "bwrap";
  if (is_bwrap) argv.insert(argv.begin() + 1, {"--info-fd", "3"});
  std::vector<char*> cargv;
  for (const auto& s : argv) cargv.push_back(const_cast<char*>(s.c_str()));
  cargv.push_back(nullptr);
  // The program gets a fixed, minimal environment (nothing of the host's leaks in).
  std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
                                          "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0"};
  std::vector<char*> cenv;
  for (auto& s : env_strings) cenv.push_back(s.data());
  cenv.push_back(nullptr);
  std::string exe = argv[0];
  if (exe.find('/') == std::string::npos) {
    for (const char* dir : {"/usr/bin/", "/bin/", "/usr/local/bin/"}) {
      if (access((std::string(dir) + exe).c_str(), X_OK) == 0) {
        exe = std::string(dir) + exe;
        break;
      }
    }
  }

  start_reaping_orphans();
  rlim_t nproc = process_cap(run_as, limits.processes);  // before fork: the child may only make signal-safe calls
  int in_pipe[2], out_pipe[2], err_pipe[2], info_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) ||
      pipe2(info_pipe, O_CLOEXEC))
    throw Error(fmt::format("sandbox: pipe failed: {}", std::strerror(errno)));
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid < 0) throw Error(fmt::format("sandbox: fork failed: {}", std::strerror(errno)));
  if (pid == 0) {
    // Child: async-signal-safe calls only (the parent has other threads).
    setsid();  // own process group: the parent kills it as a whole
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (is_bwrap) dup2(info_pipe[1], 3);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    set_limit(RLIMIT_CPU, static_cast<rlim_t>(limits.cpu_s));
    set_limit(RLIMIT_AS, static_cast<rlim_t>(limits.memory_mb) << 20);
    set_limit(RLIMIT_FSIZE, static_cast<rlim_t>(limits.file_size_mb) << 20);
    set_limit(RLIMIT_NOFILE, static_cast<rlim_t>(limits.open_files));
    set_limit(RLIMIT_CORE, 0);
    if (run_as != 0) {
      setgroups(0, nullptr);
      if (setgid(run_as) != 0 || setuid(run_as) != 0) _exit(125);
    }
    set_limit(RLIMIT_NPROC, nproc);
    execve(exe.c_str(), cargv.data(), cenv.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(info_pipe[1]);
  int in_fd = in_pipe[1], out_fd = out_pipe[0], err_fd = err_pipe[0], info_fd = info_pipe[0];
  std::string info;
  pid_t ns_init = 0;
  fcntl(in_fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.wall_s));
  bool killed = false;
  auto kill_all = [&] { killed = true; };
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    auto now = Clock::now();
    if (now >= deadline) {
      res.timed_out = true;
      kill_all();
      break;
    }
    int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
    pollfd fds[4];
    int n = 0;
    int idx_out = -1, idx_err = -1, idx_in = -1, idx_info = -1;
    if (info_fd >= 0) {
      fds[n] = {info_fd, POLLIN, 0};
      idx_info = n++;
    }
    if (out_fd >= 0) {
      fds[n] = {out_fd, POLLIN, 0};
      idx_out = n++;
    }
    if (err_fd >= 0) {
      fds[n] = {err_fd, POLLIN, 0};
      idx_err = n++;
    }
    if (in_fd >= 0) {
      fds[n] = {in_fd, POLLOUT, 0};
      idx_in = n++;
    }
    int rc = poll(fds, static_cast<nfds_t>(n), std::min(wait_ms, 1000));
    if (rc < 0 && errno != EINTR) break;
    if (rc <= 0) continue;
    auto drain = [&](int idx, int& fd, std::string& sink) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t got = read(fd, buf, sizeof(buf));
      if (got <= 0) {
        close(fd);
        fd = -1;
        return;
      }
      size_t room = limits.output_bytes > sink.size() ? limits.output_bytes - sink.size() : 0;
      sink.append(buf, std::min(room, static_cast<size_t>(got)));
      if (static_cast<size_t>(got) > room) {
        res.output_capped = true;
        kill_all();
      }
    };
    if (idx_info >= 0 && (fds[idx_info].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t got = read(info_fd, buf, sizeof(buf));
      if (got <= 0) {
        close(info_fd);
        info_fd = -1;
      } else {
        info.append(buf, static_cast<size_t>(got));
      }
    }
    drain(idx_out, out_fd, res.out);
    drain(idx_err, err_fd, res.err);
    if (res.output_capped) break;
    if (idx_in >= 0 && (fds[idx_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(in_fd, stdin_data.data() + written, stdin_data.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN) written = stdin_data.size();
      if (written >= stdin_data.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (info_fd >= 0) {  // the info line may still be unread: take what is there
    pollfd p{info_fd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      ssize_t got = read(info_fd, buf, sizeof(buf));
      if (got > 0) info.append(buf, static_cast<size_t>(got));
    }
  }
  size_t key = info.find("\"child-pid\"");
  if (key != std::string::npos) ns_init = static_cast<pid_t>(std::atol(info.c_str() + info.find(':', key) + 1));
  for (int fd : {in_fd, out_fd, err_fd, info_fd})
    if (fd >= 0) close(fd);
  int status = 0;
  bool reaped = false;
  if (killed) {
    if (ns_init > 0) {
      kill(ns_init, SIGKILL);
      for (int i = 0; i < 200 && !reaped; ++i) {  // bwrap exits once its init is gone
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
          reaped = true;
        else
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    if (!reaped) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
    }
  }
  while (!reaped && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  kill(-pid, SIGKILL);  // anything left in the group (unsafe mode has no PID namespace)
  reap_orphans(pid, ns_init);
  res.wall_s = seconds_since(t0);
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
  if (killed) res.exit_code = -1;
  // bwrap reports the init's pid once the namespaces exist, before the program runs: no
  // report and a failure means bwrap itself failed (nothing the program did).
  res.not_started = is_bwrap && ns_init <= 0 && !killed && !res.exited_zero();
  return res;
}

}  // namespace

void set_sandbox_parallelism(int n) { Slots::instance().set_capacity(n); }

bool sandbox_available(std::string* why) {
  static std::once_flag once;
  static bool ok = false;
  static std::string reason;
  std::call_once(once, [] {
    SandboxLimits limits;
    limits.wall_s = 10;
    std::vector<std::string> argv = bwrap_prefix("");
    argv.push_back("/usr/bin/true");
    try {
      uid_t run_as = geteuid() == 0 ? kSandboxUidBase : 0;
      SandboxResult r = run_process(argv, "", limits, "", run_as);
      ok = r.exited_zero();
      if (!ok) {
        reason = r.err.substr(0, r.err.find('\n'));
        if (reason.empty()) reason = fmt::format("bwrap exited with status {}", r.exit_code);
      }
    } catch (const std::exception& e) {
      reason = e.what();
    }
  });
  if (why != nullptr) *why = reason;
  return ok;
}

SandboxResult run_sandboxed(const std::vector<std::string>& argv, std::string_view stdin_data,
                            const std::vector<SandboxFile>& files, const SandboxLimits& limits,
                            bool unsafe_no_sandbox) {
  std::string why;
  bool sandboxed = sandbox_available(&why);
  if (!sandboxed && !unsafe_no_sandbox) {
    throw Error(
        fmt::format("code sandbox: bubblewrap cannot create namespaces here ({}); refusing to run untrusted code "
                    "(set \"unsafe_no_sandbox\": true in the reward options to run it without isolation)",
                    why));
  }
  SlotGuard slot;
  TaskDir dir;
  for (const auto& f : files) {
    if (f.name.find("..") != std::string::npos || f.name.empty() || f.name[0] == '/')
      throw Error(fmt::format("sandbox: bad file name '{}'", f.name));
    std::ofstream out(fs::path(dir.path) / f.name, std::ios::binary);
    out << f.content;
    if (!out) throw Error(fmt::format("sandbox: cannot write {}/{}", dir.path, f.name));
    chmod((fs::path(dir.path) / f.name).c_str(), 0644);
  }
  uid_t run_as = geteuid() == 0 ? kSandboxUidBase + static_cast<uid_t>(slot.slot) : 0;
  if (sandboxed) {
    std::vector<std::string> full = bwrap_prefix(dir.path);
    full.insert(full.end(), argv.begin(), argv.end());
    // A sandbox that could not start says nothing about the program: scoring it 0 would
    // feed a wrong reward to training. Retry transient failures (EAGAIN), then fail loudly.
    for (int attempt = 0;; ++attempt) {
      SandboxResult r = run_process(full, stdin_data, limits, "", run_as);
      if (!r.not_started) return r;
      if (attempt == 2) {
        throw Error(fmt::format("code sandbox: bwrap could not start the program 3 times: {}",
                                r.err.substr(0, r.err.find('\n'))));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << (2 * attempt)));
    }
  }
  // Unsafe mode: the files' directory stands in for /task.
  std::vector<std::string> local;
  for (auto s : argv) {
    size_t p = s.find("/task/");
    if (p == 0) s = dir.path + s.substr(5);
    local.push_back(s);
  }
  return run_process(local, stdin_data, limits, dir.path, run_as);
}

}  // namespace r1kit::rewards
