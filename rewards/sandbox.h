// Run an untrusted program: bubblewrap namespaces + setrlimit + a wall-clock kill.
//
// Isolation (bwrap --unshare-all --die-with-parent --new-session): no network, own PID /
// IPC / UTS / user namespaces, a read-only root with only /usr (and its /bin, /lib
// links) bound read-only, a private tmpfs at /tmp as the working directory, the task's
// files read-only at /task, an empty environment. When r1kit runs as root the sandbox
// runs as an unprivileged uid of its own (root is exempt from RLIMIT_NPROC, so a fork
// bomb would otherwise not be stopped). Limits (setrlimit, inherited by bwrap and the
// program): CPU seconds, address space, file size, open files, processes, no core dumps.
// The whole process group is SIGKILLed at the wall-clock deadline or when stdout/stderr
// pass the byte cap; killing bwrap takes its PID namespace, so every descendant, with it.
// The process running sandboxes becomes a child subreaper (PR_SET_CHILD_SUBREAPER) so
// that bwrap's namespace init, orphaned when bwrap exits, is reaped here rather than left
// as a zombie counting against RLIMIT_NPROC.
// Where bwrap cannot create namespaces, run_sandboxed refuses (Error) unless the caller
// passes unsafe_no_sandbox, which keeps only the rlimits and the process-group kill.
// Not done: a tmpfs size limit (bwrap 0.8 has no --size; the wall clock and RLIMIT_FSIZE
// bound what a program can write), seccomp filters, cgroups.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace r1kit::rewards {

struct SandboxLimits {
  double wall_s = 10.0;           // wall clock, then SIGKILL of the whole group
  int cpu_s = 10;                 // RLIMIT_CPU
  int64_t memory_mb = 1024;       // RLIMIT_AS
  int64_t file_size_mb = 16;      // RLIMIT_FSIZE
  int open_files = 64;            // RLIMIT_NOFILE
  int processes = 64;             // tasks the program may add (RLIMIT_NPROC, see process_cap)
  size_t output_bytes = 1 << 20;  // per stream; more kills the program
};

struct SandboxFile {
  std::string name;  // relative path under /task (no "..")
  std::string content;
};

struct SandboxResult {
  int exit_code = -1;          // when it exited normally
  int signal = 0;              // when a signal ended it
  bool timed_out = false;      // killed at the wall-clock deadline
  bool output_capped = false;  // killed for printing more than output_bytes
  bool not_started = false;    // bwrap failed before the program ran (run_sandboxed retries, then throws)
  std::string out, err;        // at most output_bytes each
  double wall_s = 0;
  bool exited_zero() const { return exit_code == 0 && signal == 0 && !timed_out && !output_capped; }
};

// Does bubblewrap work here? Probed once per process; `why` gets the first stderr line.
bool sandbox_available(std::string* why = nullptr);

// Runs argv (paths may use "/task/NAME" for the files given). Throws r1kit::Error when
// the sandbox is unavailable and unsafe_no_sandbox is false.
SandboxResult run_sandboxed(const std::vector<std::string>& argv, std::string_view stdin_data,
                            const std::vector<SandboxFile>& files, const SandboxLimits& limits,
                            bool unsafe_no_sandbox = false);

// How many sandboxed programs may run at once in this process (default: hardware threads).
void set_sandbox_parallelism(int n);

}  // namespace r1kit::rewards
