// Hostile programs against the code sandbox. Each one must score 0, come back within its
// wall-clock limit plus a second, and leave the host as it was: no process of a sandbox
// uid left, no task directory left, no file written outside the sandbox.
// Every program ends by asserting that its attack worked, so a leaking sandbox scores 1.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "code_test_util.h"
#include "rewards/sandbox.h"

using namespace r1kit;
using namespace r1kit::rewards;

namespace {
constexpr double kWall = 3.0;

// Processes whose real uid is one of the sandbox uids (root runs sandboxes as 990000+).
int sandbox_processes() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream st(e.path() / "status");
    std::string line;
    while (std::getline(st, line)) {
      if (line.rfind("Uid:", 0) == 0) {
        long uid = std::stol(line.substr(4));
        if (uid >= 990000 && uid < 991000) ++n;
        break;
      }
    }
  }
  return n;
}

int task_dirs() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
    if (e.path().filename().string().rfind("r1kit-sbx-", 0) == 0) ++n;
  return n;
}

struct Hostile {
  const char* name;
  std::string program;
};

// Not /tmp: inside the sandbox /tmp is its own tmpfs, where writing is allowed.
std::string marker() { return "/var/tmp/r1kit-sandbox-escape-marker"; }

}  // namespace

TEST(Sandbox, HostilePrograms) {
  std::string why;
  if (!sandbox_available(&why)) GTEST_SKIP() << "bubblewrap unavailable here: " << why;
  std::filesystem::remove(marker());
  std::string src_dir = R1KIT_SOURCE_DIR;
  std::vector<Hostile> programs = {
      {"infinite loop", "while True:\n    pass\n"},
      {"fork bomb",
       "import os\nn = 0\nwhile True:\n    try:\n        os.fork()\n        n += 1\n    except OSError:\n        "
       "pass\n"},
      {"memory bomb", "x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))\n"},
      {"write outside tmpfs", "ok = False\nfor p in ['" + marker() + "', '/usr/r1kit-escape', '/r1kit-escape', '" +
                                  src_dir +
                                  "/r1kit-escape']:\n"
                                  "    try:\n        open(p, 'w').write('x')\n        ok = True\n    except OSError:\n "
                                  "       pass\nassert ok\n"},
      {"network", "import socket\ns = socket.create_connection(('1.1.1.1', 53), timeout=2)\n"},
      {"kill parent",
       "import os, signal\nfor pid in [os.getppid(), 1, -1]:\n    try:\n        os.kill(pid, signal.SIGKILL)\n    "
       "except OSError:\n        pass\nos._exit(0)\n"},
      {"read files not given",
       "data = ''\nfor p in ['/etc/passwd', '/etc/shadow', '/root/.bashrc', '" + src_dir +
           "/CMakeLists.txt']:\n"
           "    try:\n        data += open(p).read()\n    except OSError:\n        pass\nassert data\n"},
      {"print gigabytes", "import sys\nb = 'x' * 65536\nwhile True:\n    sys.stdout.write(b)\n"},
      {"exit 0 early", "import os\nos._exit(0)\n"},
      {"sys.exit early", "import sys\nsys.exit(0)\n"},
  };
  Scorer s = code_scorer(R"(, "run_timeout_s": 3, "cpu_s": 3, "memory_mb": 512)");
  int procs_before = sandbox_processes(), dirs_before = task_dirs();
  std::vector<std::thread> threads;
  std::vector<double> seconds(programs.size());
  std::vector<RewardResult> results(programs.size());
  std::vector<Json> rows(programs.size());
  for (size_t i = 0; i < programs.size(); ++i) {
    rows[i] = {{"completion", "```python\n" + programs[i].program + "```"}, {"tests", {"assert True"}}};
    threads.emplace_back([&, i] {
      auto t0 = std::chrono::steady_clock::now();
      results[i] = score_row(s, rows[i]);
      seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < programs.size(); ++i) {
    std::printf("hostile %-22s -> %g in %.2fs (%s)\n", programs[i].name, results[i].value.value_or(-1), seconds[i],
                results[i].why.c_str());
    ASSERT_TRUE(results[i].value) << programs[i].name;
    EXPECT_EQ(*results[i].value, 0.0) << programs[i].name << ": " << results[i].why;
    // Parallel runs queue for sandbox slots: allow one wall limit per queued position.
    EXPECT_LT(seconds[i], (kWall + 1.0) * (1 + static_cast<double>(programs.size()) / 2)) << programs[i].name;
  }
  // Nothing left behind.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_LE(sandbox_processes(), procs_before);  // none added (older zombies may have been reaped meanwhile)
  EXPECT_EQ(task_dirs(), dirs_before);
  EXPECT_FALSE(std::filesystem::exists(marker()));
  EXPECT_FALSE(std::filesystem::exists("/usr/r1kit-escape"));
  EXPECT_FALSE(std::filesystem::exists("/r1kit-escape"));
  EXPECT_FALSE(std::filesystem::exists(src_dir + "/r1kit-escape"));
}

TEST(Sandbox, EachHostileAloneReturnsWithinItsLimit) {
  // One at a time, the bound is the wall limit plus one second.
  std::string why;
  if (!sandbox_available(&why)) GTEST_SKIP() << "bubblewrap unavailable here: " << why;
  SandboxLimits limits;
  limits.wall_s = kWall;
  limits.cpu_s = 3;
  limits.memory_mb = 512;
  for (const char* prog : {"while True: pass", "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
                           "import sys\nwhile True: sys.stdout.write('x' * 65536)"}) {
    SandboxResult r = run_sandboxed({"/usr/bin/python3", "-I", "/task/p.py"}, "", {{"p.py", prog}}, limits);
    EXPECT_FALSE(r.exited_zero()) << prog;
    EXPECT_LT(r.wall_s, kWall + 1.0) << prog;
  }
}

TEST(Sandbox, NormalProgramRunsWithStdin) {
  std::string why;
  if (!sandbox_available(&why)) GTEST_SKIP() << "bubblewrap unavailable here: " << why;
  SandboxResult r =
      run_sandboxed({"/usr/bin/python3", "-I", "/task/p.py"}, "21\n",
                    {{"p.py", "import os\nprint(int(input()) * 2, os.getcwd())\nopen('f', 'w').write('ok')\n"}}, {});
  EXPECT_TRUE(r.exited_zero()) << r.err;
  EXPECT_EQ(r.out, "42 /tmp\n");  // cwd is the private tmpfs, which is writable
}

TEST(Sandbox, ManyShortRunsNeverRunOutOfProcesses) {
  // bwrap exits before its namespace init; an init nobody reaps stays a zombie of the
  // sandbox uid, and a few dozen of them exhaust RLIMIT_NPROC so that bwrap cannot fork
  // ("Can't fork for pid 1"). One slot (one uid) and a cap of 6: a leak of one task per
  // run fails within a handful of runs.
  std::string why;
  if (!sandbox_available(&why)) GTEST_SKIP() << "bubblewrap unavailable here: " << why;
  set_sandbox_parallelism(1);
  SandboxLimits limits;
  limits.processes = 6;
  for (int i = 0; i < 40; ++i) {
    SandboxResult r = run_sandboxed({"/usr/bin/true"}, "", {}, limits);
    ASSERT_TRUE(r.exited_zero()) << "run " << i << ": " << r.err;
  }
  set_sandbox_parallelism(static_cast<int>(std::thread::hardware_concurrency()));
}

TEST(Sandbox, ASandboxThatCannotStartThrowsInsteadOfScoringTheProgram) {
  // Room for bwrap alone: it cannot fork the namespace's init. That is a failure of the
  // machine, not of the program, and must not come back as an ordinary failed run.
  std::string why;
  if (!sandbox_available(&why)) GTEST_SKIP() << "bubblewrap unavailable here: " << why;
  SandboxLimits limits;
  limits.processes = 1;
  try {
    run_sandboxed({"/usr/bin/true"}, "", {}, limits);
    FAIL() << "expected r1kit::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bwrap could not start the program"), std::string::npos) << e.what();
  }
}
