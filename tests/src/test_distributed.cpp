// DistributedContext on 2 real processes with Gloo (CPU): each case re-runs this test binary
// twice as ranks 0 and 1 (RANK, WORLD_SIZE, MASTER_PORT in the environment, the case named by
// --gtest_filter); the parent waits for both and checks what they reported. Covers the
// collectives' results, the single-process short-circuit, the environment parsing, and the
// failure paths: a rank that dies and a rank that never reaches the collective must turn into
// an r1kit::Error on the other rank within the timeout, naming the ranks and the operation.
#include <ATen/ATen.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "src/distributed.h"
#include "src/error.h"
#include "tests/test_util.h"

extern char** environ;

namespace r1kit {
namespace {

using Clock = std::chrono::steady_clock;

bool is_worker() { return std::getenv("R1KIT_TEST_WORKER") != nullptr; }
std::string worker_out() { return std::getenv("R1KIT_TEST_OUT"); }

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

// Runs this binary's `test_name` as `world` ranks; returns each rank's exit status.
std::vector<int> run_ranks(const std::string& test_name, int world, const std::string& out_dir,
                           const std::string& timeout_s) {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) env_s.push_back(*e);
    for (const std::string& kv :
         {"RANK=" + std::to_string(r), "LOCAL_RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(world),
          std::string("MASTER_ADDR=127.0.0.1"), "MASTER_PORT=" + std::to_string(port),
          std::string("R1KIT_TEST_WORKER=1"), "R1KIT_TEST_OUT=" + out_dir + "/rank" + std::to_string(r) + ".txt",
          "R1KIT_DIST_TIMEOUT=" + timeout_s, std::string("R1KIT_DIST_BACKEND=gloo"),
          std::string("OMP_NUM_THREADS=1")}) {
      env_s.push_back(kv);
    }
    std::vector<char*> envp;
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string exe = "/proc/self/exe", filter = "--gtest_filter=" + test_name;
    char* argv[] = {exe.data(), filter.data(), nullptr};
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execve("/proc/self/exe", argv, envp.data());
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  std::vector<int> status(world);
  for (int r = 0; r < world; ++r) ::waitpid(pids[r], &status[r], 0);
  return status;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// ---------------------------------------------------------------------------------------------

TEST(Distributed, EnvironmentParsing) {
  if (is_worker()) return;
  for (const char* k :
       {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS",
        "SLURM_LOCALID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMI_SIZE", "TORCHELASTIC_USE_AGENT_STORE"}) {
    ::unsetenv(k);
  }
  EXPECT_FALSE(read_distributed_env().launched);

  ::setenv("SLURM_PROCID", "3", 1);
  ::setenv("SLURM_NTASKS", "8", 1);
  ::setenv("SLURM_LOCALID", "1", 1);
  ::setenv("MASTER_ADDR", "node07", 1);
  DistributedEnv e = read_distributed_env();
  EXPECT_TRUE(e.launched);
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "node07");
  EXPECT_EQ(e.master_port, 29500);

  // RANK/WORLD_SIZE (torchrun, r1kit launch) win over SLURM's.
  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("MASTER_PORT", "1234", 1);
  e = read_distributed_env();
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 2);
  EXPECT_EQ(e.local_rank, 1);  // LOCAL_RANK unset: the rank
  EXPECT_EQ(e.master_port, 1234);

  ::setenv("RANK", "2", 1);
  EXPECT_THROW(read_distributed_env(), Error);  // rank outside [0, 2)
  ::setenv("RANK", "x", 1);
  EXPECT_THROW(read_distributed_env(), Error);
  ::unsetenv("WORLD_SIZE");
  ::setenv("RANK", "0", 1);
  EXPECT_THROW(read_distributed_env(), Error);  // RANK without WORLD_SIZE
  for (const char* k : {"RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"}) {
    ::unsetenv(k);
  }
}

TEST(Distributed, SingleProcessShortCircuits) {
  if (is_worker()) return;
  DistributedContext single;
  EXPECT_EQ(single.rank(), 0);
  EXPECT_EQ(single.world_size(), 1);
  EXPECT_TRUE(single.is_main());
  EXPECT_FALSE(single.launched());
  at::Tensor t = at::arange(4, at::kFloat);
  single.all_reduce_sum(t);
  single.broadcast(t, 0);
  single.barrier();
  EXPECT_TRUE(at::equal(t, at::arange(4, at::kFloat)));
  const std::vector<Json> all = single.all_gather_json({{"x", 1}});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]["x"], 1);
  EXPECT_FALSE(distributed().launched());  // the process-wide context before anyone sets it
}

TEST(Distributed, CollectivesOnTwoRanks) {
  if (is_worker()) {
    auto ctx = DistributedContext::init_from_env();
    const int r = ctx->rank();
    std::ostringstream out;
    out << "rank " << r << " of " << ctx->world_size() << " backend " << ctx->backend() << "\n";
    // all_reduce: rank r holds (r+1) * [1, 10, 100] -> 3 * [1, 10, 100].
    at::Tensor a = at::tensor({1.f, 10.f, 100.f}) * (r + 1);
    ctx->all_reduce_sum(a);
    out << "sum " << a[0].item<float>() << " " << a[1].item<float>() << " " << a[2].item<float>() << "\n";
    // Bucketed: three dtypes, a non-contiguous view, a 0-dim tensor, one tensor bigger than a
    // bucket (7M floats = 28 MB > 25 MiB) so the floats go out in two collectives.
    at::Tensor big = at::full({7'000'000}, static_cast<float>(r + 1));
    at::Tensor m = at::arange(6, at::kDouble).view({2, 3}) * (r + 1);
    at::Tensor mt = m.t();
    std::vector<at::Tensor> many = {at::full({2, 2}, r + 1, at::kLong), big, mt, at::scalar_tensor(0.5f * (r + 1))};
    ctx->all_reduce_sum(many);
    out << "long " << many[0].sum().item<int64_t>() << " big " << many[1].min().item<float>() << " "
        << many[1].max().item<float>() << " view " << m[1][2].item<double>() << " scalar " << many[3].item<float>()
        << "\n";
    // broadcast from rank 1.
    at::Tensor b = r == 1 ? at::tensor({7.f, 8.f, 9.f}) : at::zeros({3});
    ctx->broadcast(b, /*root=*/1);
    out << "bcast " << b[0].item<float>() << " " << b[1].item<float>() << " " << b[2].item<float>() << "\n";
    // all_gather_json, many rounds (keys of old rounds are dropped as it goes).
    std::vector<Json> all;
    for (int round = 0; round < 20; ++round) all = ctx->all_gather_json({{"rank", r}, {"round", round}});
    out << "gather " << all.size() << " " << all[0]["rank"] << " " << all[1]["rank"] << " " << all[1]["round"] << "\n";
    ctx->barrier("end");
    ctx->shutdown();
    EXPECT_THROW(ctx->barrier("after"), Error);
    write_text(worker_out(), out.str());
    return;
  }
  testing::TempDir dir;
  const auto t0 = Clock::now();
  const std::vector<int> status = run_ranks("Distributed.CollectivesOnTwoRanks", 2, dir.path, "60");
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(exited_ok(status[r])) << "rank " << r << " status " << status[r];
    const std::string expect = "rank " + std::to_string(r) +
                               " of 2 backend gloo\n"
                               "sum 3 30 300\n"
                               "long 12 big 3 3 view 15 scalar 1.5\n"
                               "bcast 7 8 9\n"
                               "gather 2 0 1 19\n";
    EXPECT_EQ(read_text(dir / ("rank" + std::to_string(r) + ".txt")), expect) << "rank " << r;
  }
  std::printf("2 ranks: %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
}

TEST(Distributed, ReplicaCheckCatchesDivergedWeights) {
  // Equal tensors pass; then rank 1 nudges one element by 1e-6 and both ranks must throw.
  if (is_worker()) {
    auto ctx = DistributedContext::init_from_env();
    std::vector<at::Tensor> w = {at::linspace(-1, 1, 100).view({10, 10}), at::ones({3}, at::kBFloat16)};
    check_replicas_equal(*ctx, w, "step 1");
    if (ctx->rank() == 1) w[0][3][4] += 1e-6;
    std::string what = "no error";
    try {
      check_replicas_equal(*ctx, w, "step 2");
    } catch (const Error& e) {
      what = e.what();
    }
    write_text(worker_out(), what);
    return;
  }
  testing::TempDir dir;
  const std::vector<int> status = run_ranks("Distributed.ReplicaCheckCatchesDivergedWeights", 2, dir.path, "60");
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(exited_ok(status[r]));
    const std::string report = read_text(dir / ("rank" + std::to_string(r) + ".txt"));
    std::printf("rank %d reported: %s\n", r, report.c_str());
    EXPECT_NE(report.find("rank " + std::to_string(r) + ": the ranks' weights diverged (step 2)"), std::string::npos)
        << report;
    EXPECT_NE(report.find("but rank 1 ("), std::string::npos) << report;
  }
}

// A worker that runs `op` and writes "<seconds> <error message>" (or "no error").
void run_and_report(DistributedContext& ctx, const std::function<void()>& op) {
  const auto t0 = Clock::now();
  std::string what = "no error";
  try {
    op();
  } catch (const Error& e) {
    what = e.what();
  }
  write_text(worker_out(), std::to_string(std::chrono::duration<double>(Clock::now() - t0).count()) + " " + what);
}

double reported_seconds(const std::string& text) { return std::stod(text.substr(0, text.find(' '))); }

TEST(Distributed, RankThatDiesIsAnErrorNotAHang) {
  // Rank 1 exits right after joining; rank 0's all_reduce must fail fast (the connection
  // closes), naming rank 0, the operation and rank 1 as the one it waited for.
  if (is_worker()) {
    auto ctx = DistributedContext::init_from_env();
    if (ctx->rank() == 1) std::_Exit(3);
    at::Tensor t = at::ones({4});
    run_and_report(*ctx, [&] { ctx->all_reduce_sum(t, "all_reduce"); });
    return;
  }
  testing::TempDir dir;
  const std::vector<int> status = run_ranks("Distributed.RankThatDiesIsAnErrorNotAHang", 2, dir.path, "20");
  EXPECT_TRUE(WIFEXITED(status[1]) && WEXITSTATUS(status[1]) == 3);
  const std::string report = read_text(dir / "rank0.txt");
  std::printf("rank 0 reported: %s\n", report.c_str());
  ASSERT_FALSE(report.empty()) << "rank 0 wrote nothing (status " << status[0] << ")";
  EXPECT_NE(report.find("rank 0: all_reduce #2"), std::string::npos) << report;  // #1 is init's barrier
  EXPECT_NE(report.find("waiting for rank 1 (last at init #1)"), std::string::npos) << report;
  EXPECT_LT(reported_seconds(report), 20 + 5) << report;  // within the timeout, generous
}

TEST(Distributed, RankThatNeverArrivesTimesOut) {
  // Rank 1 stays alive but never calls the collective: rank 0 must give up at the timeout
  // (4 s here) with "timed out", naming rank 1 and where rank 1 was last seen.
  if (is_worker()) {
    auto ctx = DistributedContext::init_from_env();
    ctx->barrier("setup");
    if (ctx->rank() == 1) {
      std::this_thread::sleep_for(std::chrono::seconds(7));  // outlives rank 0's 4 s
      std::_Exit(0);
    }
    at::Tensor t = at::ones({4});
    run_and_report(*ctx, [&] { ctx->all_reduce_sum(t, "all_reduce"); });
    std::_Exit(0);  // do not wait in destructors for the absent rank
  }
  testing::TempDir dir;
  const std::vector<int> status = run_ranks("Distributed.RankThatNeverArrivesTimesOut", 2, dir.path, "4");
  const std::string report = read_text(dir / "rank0.txt");
  std::printf("rank 0 reported: %s\n", report.c_str());
  ASSERT_FALSE(report.empty()) << "rank 0 wrote nothing (status " << status[0] << ")";
  EXPECT_NE(report.find("rank 0: all_reduce #3 timed out after"), std::string::npos) << report;
  EXPECT_NE(report.find("waiting for rank 1 (last at setup #2)"), std::string::npos) << report;
  EXPECT_GE(reported_seconds(report), 3.5) << report;
  EXPECT_LT(reported_seconds(report), 4 + 5) << report;
}

TEST(Distributed, StoreHostThatDiesIsAnError) {
  // Rank 0 hosts the TCPStore; when it exits, rank 1's next collective must say so.
  if (is_worker()) {
    auto ctx = DistributedContext::init_from_env();
    if (ctx->rank() == 0) std::_Exit(3);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    run_and_report(*ctx, [&] { (void)ctx->all_gather_json({{"x", 1}}, "metrics"); });
    std::_Exit(0);
  }
  testing::TempDir dir;
  run_ranks("Distributed.StoreHostThatDiesIsAnError", 2, dir.path, "20");
  const std::string report = read_text(dir / "rank1.txt");
  std::printf("rank 1 reported: %s\n", report.c_str());
  ASSERT_FALSE(report.empty());
  EXPECT_NE(report.find("rank 1: metrics #2"), std::string::npos) << report;
  EXPECT_NE(report.find("rank 0 (its host) has likely exited"), std::string::npos) << report;
  EXPECT_LT(reported_seconds(report), 20 + 5) << report;
}

}  // namespace
}  // namespace r1kit
