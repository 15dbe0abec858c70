// Data-parallel ranks on LibTorch's c10d: a TCPStore rendezvous at MASTER_ADDR:MASTER_PORT,
// ProcessGroupGloo for CPU tensors and ProcessGroupNCCL for CUDA tensors, started by
// `r1kit launch`, `torchrun --no-python`, srun or mpirun (RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT; SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID when RANK is absent).
// Without those variables the context is a single process and every call returns at once.
// Every collective has a deadline: a rank that died or never reached the same call turns into
// an r1kit::Error naming this rank, the operation and the ranks it waited for, never a hang.
// Nothing else in r1kit includes c10d headers (pimpl). Not here: overlapping the gradient
// all-reduce with backward (DDP's Reducer), sub-groups, expert parallelism (README: Scaling).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "src/config.h"
#include "src/device.h"

namespace r1kit {

// What the launcher told this process. `launched` is false when no launcher variable is set
// (a plain `r1kit run`): then the context is the single-process one.
struct DistributedEnv {
  bool launched = false;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;   // torchrun hosts the TCPStore itself (TORCHELASTIC_USE_AGENT_STORE)
  std::string restart = "0";  // TORCHELASTIC_RESTART_COUNT: keys of a restarted group never clash
};

// Reads the variables above; a malformed or inconsistent value is an r1kit::Error naming it.
DistributedEnv read_distributed_env();

struct DistributedOptions {
  // Rendezvous and every collective must finish within this; R1KIT_DIST_TIMEOUT (seconds)
  // overrides it.
  std::chrono::milliseconds timeout = std::chrono::minutes(10);
  // "auto": Gloo for CPU tensors (when built with the gloo headers) and NCCL for CUDA tensors
  // (when LibTorch sees a GPU), PyTorch's "cpu:gloo,cuda:nccl"; "gloo" | "nccl" use only that
  // one (tensors of the other kind are copied over). R1KIT_DIST_BACKEND overrides it.
  std::string backend = "auto";
};

class DistributedContext {
 public:
  // The single-process context: rank 0 of 1; every collective returns at once.
  DistributedContext();
  ~DistributedContext();
  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  // Joins the group the environment describes (blocks until all ranks connected, at most
  // `timeout`); without launcher variables returns the single-process context. A launched
  // world of size 1 is a real group (the store and backend exist), so `r1kit launch --nproc 1`
  // exercises NCCL/Gloo end to end.
  static std::unique_ptr<DistributedContext> init_from_env(const DistributedOptions& options = {});

  int rank() const;
  int world_size() const;
  int local_rank() const;
  bool is_main() const { return rank() == 0; }
  // True when a process group exists (launched, any world size).
  bool launched() const;
  // "none", "gloo", "nccl" or "gloo+nccl".
  std::string backend() const;
  // The device this rank computes on: `cuda` / `cuda:0` become cuda:<LOCAL_RANK> (one process
  // per GPU); CPU stays CPU.
  c10::Device place(c10::Device requested) const;

  // Every rank reaches this point before any leaves it.
  void barrier(const std::string& what = "barrier");
  // Element-wise sum over ranks, in place. Tensors on another device than the backend's are
  // copied there and back.
  void all_reduce_sum(at::Tensor& tensor, const std::string& what = "all_reduce");
  // The same for many tensors, flattened into buckets of one dtype and device (one collective
  // per bucket instead of one per tensor). Every tensor must be defined.
  void all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what = "all_reduce");
  // Numbers summed / maximised element-wise over ranks in one collective (loss normalisers,
  // batch lengths, a step's counters), in float64: sums of counts stay exact.
  std::vector<double> sum_over_ranks(std::vector<double> values, const std::string& what);
  std::vector<double> max_over_ranks(std::vector<double> values, const std::string& what);
  double sum_over_ranks(double value, const std::string& what);
  double max_over_ranks(double value, const std::string& what);
  // ZeRO's two collectives over equal chunks (every rank passes the same sizes and dtype):
  // all_gather: every rank's `local` [n] into [W * n], rank r's at [r*n, (r+1)*n);
  // reduce_scatter_sum: the element-wise sum over ranks of `full` [W * n], of which this rank
  // receives chunk `rank` [n]. Without a group (W = 1) they return a copy of their input.
  at::Tensor all_gather(const at::Tensor& local, const std::string& what = "all_gather");
  at::Tensor reduce_scatter_sum(const at::Tensor& full, const std::string& what = "reduce_scatter");
  // Copies `root`'s tensor into every rank's (same shape and dtype everywhere).
  void broadcast(at::Tensor& tensor, int root, const std::string& what = "broadcast");
  // Every rank's value, indexed by rank (through the TCPStore: meant for small objects such as
  // metrics rows and checksums, not tensors).
  std::vector<Json> all_gather_json(const Json& value, const std::string& what = "all_gather_json");
  // Leaves the group; further collectives are errors. The destructor calls it.
  void shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Checks that every rank holds bitwise the same `tensors` (a model's parameters): each rank's
// float64 sum and sum of squares, exchanged as exact decimal strings. On a mismatch every rank
// throws an r1kit::Error naming `what` and the ranks that differ from rank 0. Data-parallel
// training calls it periodically: replicas drift apart only through a bug (a rank that skipped
// an all-reduce, a non-deterministic update), and then silently train different models.
void check_replicas_equal(DistributedContext& context, const std::vector<at::Tensor>& tensors, const std::string& what);

// Data-parallel gradient sync after backward: every parameter's .grad summed over ranks
// (bucketed). Losses normalised by the GLOBAL batch make this sum the one-rank gradient. A
// parameter without a gradient on some rank (no token reached it there) gets zeros on that
// rank first, unless no rank has one: then it stays without, as on one rank (AdamW skips it).
void all_reduce_gradients(DistributedContext& context, const std::vector<at::Tensor>& parameters);

// The process's context: `r1kit run` joins the group once and installs it here; stages read
// it. Until then it is the single-process context.
DistributedContext& distributed();
void set_distributed(std::unique_ptr<DistributedContext> context);

// resolve_device(spec) on this process's rank: `cuda` becomes cuda:<LOCAL_RANK> (one process
// per GPU). What every stage computes on.
DeviceChoice rank_device(const std::string& spec);

}  // namespace r1kit
