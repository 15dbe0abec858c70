// DistributedContext (see distributed.h). The only translation unit that includes c10d.
//
// Which backends exist is decided at build time (src/CMakeLists.txt):
//   R1KIT_C10D_GLOO  the gloo headers were found (LibTorch's wheel ships libtorch_cpu with
//                    Gloo inside but not gloo's headers; Debian's libgloo-dev provides them;
//                    only declarations are used, the code is LibTorch's own);
//   R1KIT_C10D_NCCL  LibTorch was built with CUDA (torch_cuda) and nccl.h was found.
// Failure diagnosis: before each collective a rank writes "<seq> <op>" to the key
// progress/<rank> in the store; when a collective fails or times out, the ranks whose
// sequence number is behind are the ones this rank was waiting for, and the error names them.
#include "src/distributed.h"

// LibTorch's CMake config defines USE_C10D_GLOO/NCCL for every TU of a distributed build.
#if defined(R1KIT_C10D_GLOO) && !defined(USE_C10D_GLOO)
#define USE_C10D_GLOO 1
#endif
#if defined(R1KIT_C10D_NCCL) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL 1
#endif

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#ifdef R1KIT_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef R1KIT_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>

#include "src/error.h"
#include "src/logging.h"

namespace r1kit {
namespace {

using Clock = std::chrono::steady_clock;

// Gradient buckets: large enough that per-collective latency vanishes, small enough that the
// flattened copy stays a small fraction of memory (DDP's default is 25 MiB).
constexpr int64_t kBucketBytes = 25 << 20;

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

int parse_env_int(const char* name, const char* text) {
  try {
    size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == std::string(text).size()) return v;
  } catch (const std::exception&) {
  }
  throw Error(fmt::format("distributed: {}={:?} is not an integer", name, text));
}

int env_int(const char* name, int fallback) {
  const char* v = env_or_null(name);
  return v != nullptr ? parse_env_int(name, v) : fallback;
}

std::vector<uint8_t> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string from_bytes(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

// One line of an exception, without LibTorch's C++ backtrace.
std::string first_line(const std::exception& e) {
  const auto* c10e = dynamic_cast<const c10::Error*>(&e);
  std::string s = c10e != nullptr ? c10e->what_without_backtrace() : e.what();
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  if (s.size() > 300) s = s.substr(0, 300) + "...";
  return s;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

DistributedEnv read_distributed_env() {
  DistributedEnv e;
  const char* rank = env_or_null("RANK");
  const char* world = env_or_null("WORLD_SIZE");
  if (rank != nullptr || world != nullptr) {
    // torchrun, `r1kit launch`, or a user's own script.
    if (rank == nullptr || world == nullptr) {
      throw Error(fmt::format("distributed: {} is set but {} is not; set both (or neither)",
                              rank ? "RANK" : "WORLD_SIZE", rank ? "WORLD_SIZE" : "RANK"));
    }
    e.rank = parse_env_int("RANK", rank);
    e.world_size = parse_env_int("WORLD_SIZE", world);
    e.local_rank = env_int("LOCAL_RANK", e.rank);
  } else if (env_or_null("SLURM_PROCID") != nullptr && env_or_null("SLURM_NTASKS") != nullptr) {
    // srun: one task per rank.
    e.rank = env_int("SLURM_PROCID", 0);
    e.world_size = env_int("SLURM_NTASKS", 1);
    e.local_rank = env_int("SLURM_LOCALID", 0);
  } else if (env_or_null("OMPI_COMM_WORLD_RANK") != nullptr) {
    // Open MPI's mpirun.
    e.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    e.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    e.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  } else if (env_or_null("PMI_RANK") != nullptr && env_or_null("PMI_SIZE") != nullptr) {
    // MPICH / Intel MPI.
    e.rank = env_int("PMI_RANK", 0);
    e.world_size = env_int("PMI_SIZE", 1);
    e.local_rank = env_int("MPI_LOCALRANKID", 0);
  } else {
    return e;  // a single process
  }
  e.launched = true;
  if (e.world_size < 1) throw Error(fmt::format("distributed: world size {} must be at least 1", e.world_size));
  if (e.rank < 0 || e.rank >= e.world_size) {
    throw Error(
        fmt::format("distributed: rank {} is outside [0, {}) (world size {})", e.rank, e.world_size, e.world_size));
  }
  if (e.local_rank < 0) throw Error(fmt::format("distributed: LOCAL_RANK {} is negative", e.local_rank));
  if (const char* addr = env_or_null("MASTER_ADDR")) e.master_addr = addr;
  e.master_port = env_int("MASTER_PORT", e.master_port);
  if (e.master_port <= 0 || e.master_port > 65535) {
    throw Error(fmt::format("distributed: MASTER_PORT={} is not a TCP port", e.master_port));
  }
  if (const char* v = env_or_null("TORCHELASTIC_USE_AGENT_STORE")) e.agent_store = std::string(v) == "True";
  if (const char* v = env_or_null("TORCHELASTIC_RESTART_COUNT")) e.restart = v;
  return e;
}

struct DistributedContext::Impl {
  DistributedEnv env;
  std::chrono::milliseconds timeout{0};
  std::string backend_name = "none";
  c10::intrusive_ptr<c10d::Store> store;
  // PyTorch's default pairing ("cpu:gloo,cuda:nccl"): CPU tensors go through Gloo, CUDA
  // tensors through NCCL; a tensor whose kind has no backend is copied to the other one.
  c10::intrusive_ptr<c10d::Backend> gloo, nccl;
  c10::Device cuda_device{c10::kCUDA, 0};  // NCCL's device: cuda:<LOCAL_RANK % GPUs>
  uint64_t seq = 0;                        // collectives so far; the same on every rank
  uint64_t last_gather = 0;                // seq of this rank's previous all_gather_json (its key is still stored)
  bool closed = false;

  std::string progress_key(int r) const { return "progress/" + std::to_string(r); }

  void check_open(const std::string& op) const {
    if (closed) throw Error(fmt::format("rank {}: {} after the distributed context was shut down", env.rank, op));
  }

  // Records that this rank entered collective number `seq` (see the file comment).
  void enter(const std::string& op) {
    ++seq;
    store->set(progress_key(env.rank), to_bytes(std::to_string(seq) + " " + op));
  }

  // The error for a collective that threw or ran out of time, naming the ranks behind.
  [[noreturn]] void fail(const std::string& op, Clock::time_point t0, const std::string& cause) const {
    const double waited = seconds(Clock::now() - t0);
    const double limit = std::chrono::duration<double>(timeout).count();
    std::vector<std::string> behind;
    std::string store_note;
    try {
      for (int r = 0; r < env.world_size; ++r) {
        if (r == env.rank) continue;
        if (!store->check({progress_key(r)})) {
          behind.push_back(fmt::format("rank {} (never reached a collective)", r));
          continue;
        }
        const std::string p = from_bytes(store->get(progress_key(r)));
        const uint64_t their = std::stoull(p);
        if (their < seq) behind.push_back(fmt::format("rank {} (last at {} #{})", r, p.substr(p.find(' ') + 1), their));
      }
    } catch (const std::exception&) {
      store_note = fmt::format("; the store at {}:{} is unreachable, so rank 0 (its host) has likely exited",
                               env.master_addr, env.master_port);
    }
    const std::string what = waited >= 0.95 * limit ? fmt::format("timed out after {:.0f} s", waited)
                                                    : fmt::format("failed after {:.1f} s", waited);
    const std::string waiting =
        behind.empty() ? std::string() : " waiting for " + fmt::format("{}", fmt::join(behind, ", "));
    throw Error(fmt::format("rank {}: {} #{} {}{}{}: {}", env.rank, op, seq, what, waiting, store_note, cause));
  }

  // Enters `op`, starts it, waits for it within the timeout; any failure becomes fail().
  void run(const std::string& op, const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
    check_open(op);
    const auto t0 = Clock::now();
    try {
      enter(op);
      c10::intrusive_ptr<c10d::Work> work = start();
      if (!work->wait(timeout)) fail(op, t0, "the backend reported no completion");
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(op, t0, first_line(e));
    }
  }

  // The backend for a tensor on `device`, and the device its tensors must be on.
  std::pair<c10d::Backend*, c10::Device> backend_for(c10::Device device) const {
    if (device.is_cuda() && nccl) return {nccl.get(), cuda_device};
    if (gloo) return {gloo.get(), c10::Device(c10::kCPU)};
    return {nccl.get(), cuda_device};
  }

  // `t` on its backend's device, contiguous; the caller copies results back when it differs.
  at::Tensor on_backend(const at::Tensor& t) const {
    const c10::Device d = backend_for(t.device()).second;
    at::Tensor x = t.device() == d ? t : t.to(d);
    return x.contiguous();
  }

  void all_reduce_flat(at::Tensor& flat, const std::string& op, c10d::ReduceOp::RedOpType red = c10d::ReduceOp::SUM) {
    c10d::Backend* backend = backend_for(flat.device()).first;
    run(op, [&] {
      std::vector<at::Tensor> v{flat};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp(red);
      o.timeout = timeout;
      return backend->allreduce(v, o);
    });
  }

  // `values` reduced element-wise over ranks as one float64 tensor (sum_over_ranks and
  // max_over_ranks). Without a group the values are already the result.
  std::vector<double> reduce_values(std::vector<double> values, const std::string& op, c10d::ReduceOp::RedOpType red) {
    if (!env.launched || values.empty()) return values;
    check_open(op);
    at::Tensor t = on_backend(at::tensor(values, at::kDouble));
    all_reduce_flat(t, op, red);
    const at::Tensor host = t.cpu().contiguous();
    return {host.data_ptr<double>(), host.data_ptr<double>() + host.numel()};
  }
};

DistributedContext::DistributedContext() : impl_(std::make_unique<Impl>()) {}

DistributedContext::~DistributedContext() {
  try {
    shutdown();
  } catch (...) {
  }
}

std::unique_ptr<DistributedContext> DistributedContext::init_from_env(const DistributedOptions& options) {
  auto ctx = std::make_unique<DistributedContext>();
  Impl& s = *ctx->impl_;
  s.env = read_distributed_env();
  if (!s.env.launched) return ctx;
  const DistributedEnv& e = s.env;
  s.timeout = options.timeout;
  if (const char* v = env_or_null("R1KIT_DIST_TIMEOUT"))
    s.timeout = std::chrono::seconds(parse_env_int("R1KIT_DIST_TIMEOUT", v));
  if (s.timeout.count() <= 0) throw Error("distributed: the timeout must be positive");
  std::string backend = options.backend;
  if (const char* v = env_or_null("R1KIT_DIST_BACKEND")) backend = v;
  if (backend != "auto" && backend != "gloo" && backend != "nccl") {
    throw Error(fmt::format("distributed: backend {:?} is not one of auto, gloo, nccl (R1KIT_DIST_BACKEND)", backend));
  }
  const std::string rank_s = fmt::format("rank {}", e.rank);

  // Rendezvous: rank 0 hosts the TCPStore (unless torchrun's agent already does) and waits
  // until every rank has connected.
  const auto t0 = Clock::now();
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(e.master_port);
    so.isServer = e.rank == 0 && !e.agent_store;
    so.numWorkers = static_cast<size_t>(e.world_size);
    so.waitWorkers = !e.agent_store;
    so.timeout = s.timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(e.master_addr, so);
    s.store = c10::make_intrusive<c10d::PrefixStore>("r1kit/" + e.restart, tcp);
  } catch (const std::exception& ex) {
    throw Error(
        fmt::format("{}: rendezvous of {} ranks at {}:{} failed after {:.1f} s ({}); check that every rank "
                    "started and that MASTER_ADDR/MASTER_PORT name rank 0's machine and a free port",
                    rank_s, e.world_size, e.master_addr, e.master_port, seconds(Clock::now() - t0), first_line(ex)));
  }

#ifdef R1KIT_C10D_GLOO
  constexpr bool have_gloo = true;
#else
  constexpr bool have_gloo = false;
#endif
#ifdef R1KIT_C10D_NCCL
  const bool have_nccl = at::hasCUDA();
#else
  constexpr bool have_nccl = false;
#endif
  // auto: Gloo for CPU tensors when built with it, NCCL for CUDA tensors when a GPU is seen.
  const bool use_gloo = backend == "gloo" || (backend == "auto" && have_gloo);
  const bool use_nccl = backend == "nccl" || (backend == "auto" && have_nccl);
  if (use_gloo && !have_gloo) {
    throw Error(rank_s +
                ": this r1kit was built without Gloo (install the gloo headers, Debian: libgloo-dev, and "
                "configure again)");
  }
  if (use_nccl && !have_nccl) {
    throw Error(rank_s +
                ": NCCL needs a CUDA LibTorch built with nccl.h found, and a GPU (this build or machine lacks one)");
  }
  if (!use_gloo && !use_nccl) {
    throw Error(rank_s + ": no backend: this r1kit has no Gloo (libgloo-dev headers) and no GPU is seen for NCCL");
  }
  try {
#ifdef R1KIT_C10D_GLOO
    if (use_gloo) {
      auto opts = c10d::ProcessGroupGloo::Options::create_default(s.timeout);
      s.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", s.store),
                                                           e.rank, e.world_size, opts);
    }
#endif
#ifdef R1KIT_C10D_NCCL
    if (use_nccl) {
      const int count = static_cast<int>(c10::cuda::device_count());
      s.cuda_device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(e.local_rank % count));
      c10::cuda::set_device(s.cuda_device.index());
      // Blocking wait: Work::wait throws at the timeout instead of the watchdog killing the
      // process, so a hang becomes this file's error message.
      ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = s.timeout;
      s.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", s.store),
                                                           e.rank, e.world_size, opts);
    }
#endif
  } catch (const std::exception& ex) {
    throw Error(fmt::format("{}: creating the process group of {} ranks failed after {:.1f} s: {}", rank_s,
                            e.world_size, seconds(Clock::now() - t0), first_line(ex)));
  }
  s.backend_name = use_gloo && use_nccl ? "gloo+nccl" : use_gloo ? "gloo" : "nccl";
  // The first collective proves the group works (through Gloo when there is one). NCCL
  // connects at its first CUDA collective: ranks of a CPU recipe sharing one GPU never do.
  ctx->barrier("init");
  if (e.rank == 0) {
    log::info("distributed: {} ranks, backend {}, store {}:{}, timeout {} s", e.world_size, s.backend_name,
              e.master_addr, e.master_port, std::chrono::duration_cast<std::chrono::seconds>(s.timeout).count());
  }
  return ctx;
}

int DistributedContext::rank() const { return impl_->env.rank; }
int DistributedContext::world_size() const { return impl_->env.world_size; }
int DistributedContext::local_rank() const { return impl_->env.local_rank; }
bool DistributedContext::launched() const { return impl_->env.launched; }
std::string DistributedContext::backend() const { return impl_->backend_name; }

c10::Device DistributedContext::place(c10::Device requested) const {
  if (!requested.is_cuda() || !launched()) return requested;
  const int count = static_cast<int>(at::getNumGPUs());
  if (count <= 0) return requested;
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank() % count));
}

void DistributedContext::barrier(const std::string& what) {
  if (!launched()) return;
  impl_->check_open(what);
  // An all-reduce of one number: the same code path (and the same diagnosis) as gradients.
  at::Tensor one = impl_->on_backend(at::ones({1}, at::kFloat));  // Gloo when there is one
  impl_->all_reduce_flat(one, what);
}

void DistributedContext::all_reduce_sum(at::Tensor& tensor, const std::string& what) {
  if (!launched()) return;
  impl_->check_open(what);
  TORCH_CHECK(tensor.defined(), "all_reduce_sum: undefined tensor (", what, ")");
  at::Tensor x = impl_->on_backend(tensor);
  const bool copy_back = !x.is_same(tensor);
  impl_->all_reduce_flat(x, what);
  if (copy_back) tensor.copy_(x);
}

void DistributedContext::all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what) {
  if (!launched()) return;
  impl_->check_open(what);
  // Buckets of one dtype and device, in the caller's order (the same on every rank).
  std::map<std::pair<int, std::string>, std::vector<size_t>> by_kind;
  for (size_t i = 0; i < tensors.size(); ++i) {
    TORCH_CHECK(tensors[i].defined(), "all_reduce_sum: tensor ", i, " of ", tensors.size(), " is undefined (", what,
                ")");
    by_kind[{static_cast<int>(tensors[i].scalar_type()), tensors[i].device().str()}].push_back(i);
  }
  for (const auto& [kind, indices] : by_kind) {
    size_t start = 0;
    while (start < indices.size()) {
      size_t end = start;
      int64_t bytes = 0;
      while (end < indices.size() && (end == start || bytes < kBucketBytes)) {
        bytes += tensors[indices[end]].numel() * tensors[indices[end]].element_size();
        ++end;
      }
      std::vector<at::Tensor> flat_parts;
      for (size_t k = start; k < end; ++k) flat_parts.push_back(tensors[indices[k]].reshape({-1}));
      at::Tensor flat = impl_->on_backend(at::cat(flat_parts, 0));  // [sum of numel]
      impl_->all_reduce_flat(flat, what);
      int64_t offset = 0;
      for (size_t k = start; k < end; ++k) {
        at::Tensor& t = tensors[indices[k]];
        t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
        offset += t.numel();
      }
      start = end;
    }
  }
}

std::vector<double> DistributedContext::sum_over_ranks(std::vector<double> values, const std::string& what) {
  return impl_->reduce_values(std::move(values), what, c10d::ReduceOp::SUM);
}

std::vector<double> DistributedContext::max_over_ranks(std::vector<double> values, const std::string& what) {
  return impl_->reduce_values(std::move(values), what, c10d::ReduceOp::MAX);
}

double DistributedContext::sum_over_ranks(double value, const std::string& what) {
  return sum_over_ranks(std::vector<double>{value}, what)[0];
}

double DistributedContext::max_over_ranks(double value, const std::string& what) {
  return max_over_ranks(std::vector<double>{value}, what)[0];
}

at::Tensor DistributedContext::all_gather(const at::Tensor& local, const std::string& what) {
  if (!launched() || world_size() == 1) return local.reshape({-1}).clone();
  impl_->check_open(what);
  at::Tensor in = impl_->on_backend(local.reshape({-1}));
  at::Tensor out = at::empty({world_size() * in.numel()}, in.options());
  c10d::Backend* backend = impl_->backend_for(in.device()).first;
  impl_->run(what, [&] {
    c10d::AllgatherOptions o;
    o.timeout = impl_->timeout;
    return backend->_allgather_base(out, in, o);
  });
  return out.to(local.device());
}

at::Tensor DistributedContext::reduce_scatter_sum(const at::Tensor& full, const std::string& what) {
  if (!launched() || world_size() == 1) return full.reshape({-1}).clone();
  TORCH_CHECK(full.numel() % world_size() == 0, "reduce_scatter: ", full.numel(), " elements do not split over ",
              world_size(), " ranks");
  impl_->check_open(what);
  at::Tensor in = impl_->on_backend(full.reshape({-1}));
  at::Tensor out = at::empty({in.numel() / world_size()}, in.options());
  c10d::Backend* backend = impl_->backend_for(in.device()).first;
  impl_->run(what, [&] {
    c10d::ReduceScatterOptions o;
    o.reduceOp = c10d::ReduceOp(c10d::ReduceOp::SUM);
    o.timeout = impl_->timeout;
    return backend->_reduce_scatter_base(out, in, o);
  });
  return out.to(full.device());
}

void DistributedContext::broadcast(at::Tensor& tensor, int root, const std::string& what) {
  if (!launched()) return;
  impl_->check_open(what);
  TORCH_CHECK(root >= 0 && root < world_size(), "broadcast: root ", root, " outside [0, ", world_size(), ")");
  at::Tensor x = impl_->on_backend(tensor);
  const bool copy_back = !x.is_same(tensor);
  c10d::Backend* backend = impl_->backend_for(x.device()).first;
  impl_->run(what, [&] {
    std::vector<at::Tensor> v{x};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = impl_->timeout;
    return backend->broadcast(v, o);
  });
  if (copy_back) tensor.copy_(x);
}

std::vector<Json> DistributedContext::all_gather_json(const Json& value, const std::string& what) {
  if (!launched()) return {value};
  Impl& s = *impl_;
  s.check_open(what);
  const auto t0 = Clock::now();
  std::vector<Json> out;
  try {
    s.enter(what);
    auto key = [&](int r, uint64_t seq) { return fmt::format("gather/{}/{}", seq, r); };
    s.store->set(key(s.env.rank, s.seq), to_bytes(value.dump()));
    std::vector<std::string> keys;
    for (int r = 0; r < s.env.world_size; ++r) keys.push_back(key(r, s.seq));
    s.store->wait(keys, s.timeout);
    for (const auto& bytes : s.store->multiGet(keys)) out.push_back(Json::parse(from_bytes(bytes)));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    s.fail(what, t0, first_line(e));
  }
  // Every rank has now written its value for this gather, so every rank has finished reading
  // the previous one: this rank's previous key can go (the store stays small).
  try {
    if (s.last_gather > 0) s.store->deleteKey(fmt::format("gather/{}/{}", s.last_gather, s.env.rank));
  } catch (const std::exception&) {
  }
  s.last_gather = s.seq;
  return out;
}

void DistributedContext::shutdown() {
  Impl& s = *impl_;
  if (!s.env.launched || s.closed) return;
  s.closed = true;
  if (s.nccl) s.nccl->shutdown();
  if (s.gloo) s.gloo->shutdown();
  s.nccl.reset();
  s.gloo.reset();
  s.store.reset();
}

void check_replicas_equal(DistributedContext& context, const std::vector<at::Tensor>& tensors,
                          const std::string& what) {
  if (!context.launched() || context.world_size() == 1) return;
  at::NoGradGuard no_grad;
  double sum = 0, sum_sq = 0;
  for (const at::Tensor& t : tensors) {
    const at::Tensor x = t.detach().to(at::kDouble);
    sum += x.sum().item<double>();
    sum_sq += x.square().sum().item<double>();
  }
  const std::string mine = fmt::format("{:.17g} {:.17g}", sum, sum_sq);  // round-trips exactly
  const std::vector<Json> all = context.all_gather_json(mine, "replica check (" + what + ")");
  std::vector<std::string> differ;
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) differ.push_back(fmt::format("rank {} ({})", r, all[r].get<std::string>()));
  }
  if (!differ.empty()) {
    throw Error(fmt::format("rank {}: the ranks' weights diverged ({}): rank 0 has sum/sum of squares {} but {}",
                            context.rank(), what, all[0].get<std::string>(), fmt::join(differ, ", ")));
  }
}

void all_reduce_gradients(DistributedContext& context, const std::vector<at::Tensor>& parameters) {
  if (!context.launched()) return;
  at::Tensor present = at::zeros({static_cast<int64_t>(parameters.size())}, at::kFloat);  // [P]
  float* pa = present.data_ptr<float>();
  for (size_t i = 0; i < parameters.size(); ++i) pa[i] = parameters[i].grad().defined() ? 1.f : 0.f;
  context.all_reduce_sum(present, "gradient presence");
  pa = present.data_ptr<float>();
  std::vector<at::Tensor> grads;
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (pa[i] == 0) continue;
    at::Tensor p = parameters[i];
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
  }
  context.all_reduce_sum(grads, "gradients");  // bucketed, in place (the tensors are the .grad)
}

namespace {
std::mutex g_mutex;
std::unique_ptr<DistributedContext> g_context;
}  // namespace

DistributedContext& distributed() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_context) g_context = std::make_unique<DistributedContext>();
  return *g_context;
}

DeviceChoice rank_device(const std::string& spec) {
  DeviceChoice device = resolve_device(spec);
  device.device = distributed().place(device.device);
  return device;
}

void set_distributed(std::unique_ptr<DistributedContext> context) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_context = std::move(context);
}

}  // namespace r1kit
