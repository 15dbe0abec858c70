// ZeroShards (see zero.h). Layout of a collective over several tensors: each tensor's flat
// elements padded to W * chunk and viewed [W, chunk]; the views concatenated along dim 1 give
// [W, C]: row r holds every tensor's chunk r, so one all-gather / reduce-scatter of the
// flattened [W * C] moves all of them.
#include "pipelines/zero.h"

#include <ATen/ATen.h>

#include <cmath>
#include <unordered_map>

#include "pipelines/mixed_precision.h"
#include "policy/causal_lm.h"
#include "policy/lora.h"
#include "src/distributed.h"

namespace r1kit::pipelines {

struct ZeroShards::Entry {
  std::string name;
  at::Tensor param;  // the model's tensor object (its data changes, the object stays)
  std::vector<int64_t> shape;
  int64_t numel = 0, chunk = 0;  // chunk = ceil(numel / W)
  // Stage 3: the unit its compute copy is gathered with: a decoder layer (>= 0) or the
  // tensors outside the layers (kOuter); kWhole: never sharded (stages 1-2, LoRA adapters).
  int64_t unit = -2;
  int64_t master = -1;  // index into masters_ (a trained tensor), else -1
  at::Tensor shard;     // a sharded unit's tensor: this rank's compute chunk [chunk]
  at::Tensor grad_sum;  // stage 1: the full fp32 gradient over the step's micro-batches
};

namespace {

constexpr int64_t kOuter = -1, kWhole = -2;

// "model.layers.12.mlp..." -> 12; -1 outside the decoder layers.
int64_t layer_of(const std::string& name) {
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) != 0) return -1;
  return std::stoll(name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size()));
}

// Points `param` at `data`. Its version is bumped: caches keyed by (data pointer, version),
// such as the CPU kernels' packed weights, must not take a new tensor that the allocator
// placed where a freed one was for the old one.
void point_at(at::Tensor& param, const at::Tensor& data) {
  param.set_data(data);
  param.unsafeGetTensorImpl()->bump_version();
}

// `t` flat, zero-padded to W * chunk, as [W, chunk].
at::Tensor padded_rows(const at::Tensor& t, int64_t world, int64_t chunk) {
  const at::Tensor flat = t.reshape({-1});
  return at::constant_pad_nd(flat, {0, world * chunk - flat.numel()}).view({world, chunk});
}

}  // namespace

ZeroShards::ZeroShards(policy::CausalLM& model, const std::vector<at::Tensor>& trained, int stage,
                       DistributedContext& dist)
    : model_(model), dist_(dist), stage_(stage), world_(dist.world_size()), rank_(dist.rank()) {
  std::unordered_map<const void*, size_t> trained_index;  // TensorImpl -> position in `trained`
  for (size_t i = 0; i < trained.size(); ++i) trained_index[trained[i].unsafeGetTensorImpl()] = i;
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const auto& p : model.named_parameters()) all.emplace_back(p.key(), p.value());
  std::vector<bool> named(trained.size(), false);
  for (const auto& [name, t] : all) {
    if (auto it = trained_index.find(t.unsafeGetTensorImpl()); it != trained_index.end()) named[it->second] = true;
  }
  const size_t num_named = all.size();
  for (size_t i = 0; i < trained.size(); ++i) {  // LoRA adapters live outside the module tree
    if (!named[i]) all.emplace_back("lora adapter tensor " + std::to_string(i), trained[i]);
  }
  const int64_t num_layers = model.config().num_hidden_layers;
  units_.resize(num_layers + 1);  // the layers, then kOuter
  whole_.assign(num_layers + 1, true);
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& [name, t] = all[i];
    Entry e;
    e.name = name;
    e.param = t;
    e.shape = t.sizes().vec();
    e.numel = t.numel();
    e.chunk = (e.numel + world_ - 1) / world_;
    const bool adapter = i >= num_named;
    if (stage_ == 3 && !adapter) e.unit = layer_of(name);  // -1 (kOuter) outside the layers
    if (trained_index.count(t.unsafeGetTensorImpl()) != 0) {
      e.master = static_cast<int64_t>(masters_.size());
      masters_.push_back(at::zeros({e.chunk}, t.options().dtype(at::kFloat)));
    }
    if (e.unit != kWhole) units_[slot(e.unit)].push_back(entries_.size());
    entries_.push_back(std::move(e));
  }
}

ZeroShards::~ZeroShards() {
  if (stage_ == 3) model_.set_layer_residency({});
}

void ZeroShards::start(at::ScalarType compute) {
  at::NoGradGuard no_grad;
  compute_ = compute;
  for (Entry& e : entries_) {
    if (e.master >= 0) masters_[e.master].copy_(padded_rows(e.param.detach().to(at::kFloat), world_, e.chunk)[rank_]);
  }
  cast_parameters(model_, compute);
  if (stage_ < 3) return;
  for (Entry& e : entries_) {
    if (e.unit == kWhole) continue;
    // fp32 compute: a trained tensor's chunk is its master (one copy, updated in place).
    const bool shared = e.master >= 0 && compute == at::kFloat;
    e.shard = shared ? masters_[e.master] : padded_rows(e.param.detach(), world_, e.chunk)[rank_].clone();
    point_at(e.param, e.shard);
  }
  whole_.assign(whole_.size(), false);
  model_.set_layer_residency({[this](int64_t layer) { gather_layer(layer); },
                              [this](int64_t layer, bool backward) { release_layer(layer, backward); }});
}

std::vector<at::Tensor> ZeroShards::gather_whole(const std::vector<size_t>& which,
                                                 const std::vector<at::Tensor>& chunks) {
  std::vector<at::Tensor> out;
  size_t begin = 0;
  while (begin < which.size()) {
    size_t end = begin;
    int64_t bytes = 0;
    while (end < which.size() && (end == begin || bytes < kZeroBucketBytes)) {
      bytes += entries_[which[end]].chunk * world_ * chunks[end].element_size();
      ++end;
    }
    std::vector<at::Tensor> local;
    for (size_t k = begin; k < end; ++k) local.push_back(chunks[k].reshape({-1}));
    const at::Tensor rows = dist_.all_gather(at::cat(local), "zero all-gather").view({world_, -1});  // [W, C]
    int64_t offset = 0;
    for (size_t k = begin; k < end; ++k) {
      const Entry& e = entries_[which[k]];
      out.push_back(rows.narrow(1, offset, e.chunk).reshape({-1}).narrow(0, 0, e.numel).view(e.shape));
      offset += e.chunk;
    }
    begin = end;
  }
  return out;
}

void ZeroShards::reduce_scatter_into_masters(const std::vector<size_t>& which, const std::vector<at::Tensor>& grads) {
  // Which tensors have a gradient on some rank: the others stay without one, as on one rank
  // (AdamW then leaves them alone).
  std::vector<double> present(which.size());
  for (size_t k = 0; k < which.size(); ++k) present[k] = grads[k].defined() ? 1 : 0;
  present = dist_.sum_over_ranks(present, "zero gradient presence");
  std::vector<size_t> kept;
  std::vector<at::Tensor> kept_grads;
  for (size_t k = 0; k < which.size(); ++k) {
    if (present[k] == 0) continue;
    const Entry& e = entries_[which[k]];
    kept.push_back(which[k]);
    kept_grads.push_back(grads[k].defined() ? grads[k].to(at::kFloat)
                                            : at::zeros(e.shape, masters_[e.master].options()));
  }
  size_t begin = 0;
  while (begin < kept.size()) {
    size_t end = begin;
    int64_t bytes = 0;
    while (end < kept.size() && (end == begin || bytes < kZeroBucketBytes)) {
      bytes += entries_[kept[end]].chunk * world_ * 4;
      ++end;
    }
    std::vector<at::Tensor> rows;
    for (size_t k = begin; k < end; ++k) rows.push_back(padded_rows(kept_grads[k], world_, entries_[kept[k]].chunk));
    const at::Tensor mine = dist_.reduce_scatter_sum(at::cat(rows, 1), "zero reduce-scatter");  // [C]
    int64_t offset = 0;
    for (size_t k = begin; k < end; ++k) {
      const Entry& e = entries_[kept[k]];
      at::Tensor& g = masters_[e.master].mutable_grad();
      const at::Tensor part = mine.narrow(0, offset, e.chunk);
      if (g.defined()) {
        g.add_(part);
      } else {
        g = part.clone();
      }
      offset += e.chunk;
    }
    begin = end;
  }
}

size_t ZeroShards::slot(int64_t unit) const { return unit == kOuter ? units_.size() - 1 : static_cast<size_t>(unit); }

void ZeroShards::gather_layer(int64_t unit) {
  if (stage_ != 3 || whole_[slot(unit)]) return;
  at::NoGradGuard no_grad;
  const std::vector<size_t>& which = units_[slot(unit)];
  std::vector<at::Tensor> chunks;
  for (size_t i : which) chunks.push_back(entries_[i].shard);
  const std::vector<at::Tensor> whole = gather_whole(which, chunks);
  for (size_t k = 0; k < which.size(); ++k) point_at(entries_[which[k]].param, whole[k]);
  whole_[slot(unit)] = true;
}

void ZeroShards::release_layer(int64_t unit, bool backward) {
  at::NoGradGuard no_grad;
  const std::vector<size_t>& which = units_[slot(unit)];
  if (backward) {
    // The unit's gradients are complete for this backward: reduce-scatter them now, so no
    // rank holds more than one layer's whole gradient.
    std::vector<size_t> trained;
    std::vector<at::Tensor> grads;
    for (size_t i : which) {
      Entry& e = entries_[i];
      if (e.master < 0) continue;
      trained.push_back(i);
      grads.push_back(e.param.grad());
      e.param.mutable_grad().reset();
    }
    reduce_scatter_into_masters(trained, grads);
  }
  if (pinned_ || !whole_[slot(unit)]) return;
  for (size_t i : which) point_at(entries_[i].param, entries_[i].shard);
  whole_[slot(unit)] = false;
}

void ZeroShards::after_backward() {
  at::NoGradGuard no_grad;
  // Stage 3: the layers were reduced in their own backward; the outer tensors now, and they
  // are released until the next forward gathers them.
  if (stage_ == 3) release_layer(kOuter, /*backward=*/true);
  std::vector<size_t> which;
  std::vector<at::Tensor> grads;
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (e.master < 0 || e.unit != kWhole) continue;
    at::Tensor& g = e.param.mutable_grad();
    if (stage_ == 1) {
      if (g.defined()) e.grad_sum = e.grad_sum.defined() ? e.grad_sum.add_(g.to(at::kFloat)) : g.to(at::kFloat);
    } else {
      which.push_back(i);
      grads.push_back(g);
    }
    g.reset();
  }
  if (stage_ >= 2) reduce_scatter_into_masters(which, grads);
}

double ZeroShards::reduce_for_step() {
  at::NoGradGuard no_grad;
  if (stage_ == 1) {
    std::vector<size_t> which;
    std::vector<at::Tensor> grads;
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].master < 0) continue;
      which.push_back(i);
      grads.push_back(entries_[i].grad_sum);
      entries_[i].grad_sum.reset();
    }
    reduce_scatter_into_masters(which, grads);
  }
  at::Tensor sum_sq = at::zeros({}, at::kDouble);  // summed where the masters are: one sync below
  for (const at::Tensor& m : masters_) {
    if (m.grad().defined()) sum_sq = sum_sq.to(m.device()) + m.grad().to(at::kDouble).square().sum();
  }
  return std::sqrt(dist_.sum_over_ranks(sum_sq.item<double>(), "zero gradient norm"));
}

void ZeroShards::scale_gradients(double factor) {
  at::NoGradGuard no_grad;
  for (at::Tensor& m : masters_) {
    if (m.grad().defined()) m.mutable_grad().mul_(factor);
  }
}

void ZeroShards::drop_gradients() {
  for (at::Tensor& m : masters_) m.mutable_grad().reset();
}

void ZeroShards::publish() {
  at::NoGradGuard no_grad;
  // A unit still whole (a forward without backward since, e.g. scoring) would keep the old
  // weights past this update: back to chunks first, so the next use gathers the new ones.
  for (int64_t u = kOuter; stage_ == 3 && !pinned_ && u + 1 < static_cast<int64_t>(units_.size()); ++u) {
    release_layer(u, false);
  }
  std::vector<size_t> which;
  std::vector<at::Tensor> chunks;
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (e.master < 0) continue;
    if (e.unit != kWhole) {
      if (!e.shard.is_same(masters_[e.master])) e.shard.copy_(masters_[e.master]);  // stays sharded
      continue;
    }
    which.push_back(i);
    chunks.push_back(masters_[e.master].to(compute_));
  }
  const std::vector<at::Tensor> whole = gather_whole(which, chunks);
  for (size_t k = 0; k < which.size(); ++k) entries_[which[k]].param.copy_(whole[k]);
}

std::string ZeroShards::first_nonfinite() {
  std::string bad;
  for (const Entry& e : entries_) {
    if (e.master >= 0 && !at::isfinite(masters_[e.master]).all().item<bool>()) {
      bad = e.name;
      break;
    }
  }
  for (const Json& b : dist_.all_gather_json(bad, "zero non-finite check")) {
    if (!b.get<std::string>().empty()) return b.get<std::string>();
  }
  return "";
}

std::vector<at::Tensor> ZeroShards::replicated() const {
  std::vector<at::Tensor> out;
  for (const Entry& e : entries_) {
    if (e.unit == kWhole) out.push_back(e.param);
  }
  for (const at::Tensor& b : model_.buffers()) out.push_back(b);
  return out;
}

PersistentBytes ZeroShards::persistent_bytes() const {
  PersistentBytes b;
  const int64_t compute_size = c10::elementSize(compute_);
  for (const Entry& e : entries_) {
    const bool shared = e.unit != kWhole && e.master >= 0 && compute_ == at::kFloat;  // the chunk is the master
    b.params += (e.unit != kWhole ? e.chunk : e.numel) * compute_size * (shared ? 0 : 1);
    if (e.master < 0) continue;
    b.params += e.chunk * 4;
    b.grads += (stage_ == 1 ? e.numel : e.chunk) * 4;  // stage 1 accumulates the whole gradient
    b.optimizer += 2 * e.chunk * 4;
  }
  return b;
}

ZeroShards::WholeWeights::WholeWeights(ZeroShards& z) : z_(z) {
  for (int64_t u = kOuter; u + 1 < static_cast<int64_t>(z_.units_.size()); ++u) z_.gather_layer(u);
  z_.pinned_ = true;
}

ZeroShards::WholeWeights::~WholeWeights() {
  z_.model_.drop_packed_weights();  // the CPU kernels' copies of the whole weights go with them
  z_.pinned_ = false;
  for (int64_t u = kOuter; u + 1 < static_cast<int64_t>(z_.units_.size()); ++u) z_.release_layer(u, false);
}

ZeroShards::WholeMasters::WholeMasters(ZeroShards& z) : z_(z) {
  at::NoGradGuard no_grad;
  std::vector<size_t> which;
  std::vector<at::Tensor> chunks;
  for (size_t i = 0; i < z_.entries_.size(); ++i) {
    ZeroShards::Entry& e = z_.entries_[i];
    before_.push_back(e.param.detach());
    // Frozen tensors (a LoRA base) are not written: the checkpoint holds the adapters.
    if (e.master >= 0) {
      which.push_back(i);
      chunks.push_back(z_.masters_[e.master]);
    }
  }
  const std::vector<at::Tensor> whole = z_.gather_whole(which, chunks);
  for (size_t k = 0; k < which.size(); ++k) point_at(z_.entries_[which[k]].param, whole[k]);
}

ZeroShards::WholeMasters::~WholeMasters() {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < before_.size(); ++i) point_at(z_.entries_[i].param, before_[i]);
}

void ZeroShards::finish() {
  if (stage_ != 3) return;
  for (int64_t u = kOuter; u + 1 < static_cast<int64_t>(units_.size()); ++u) gather_layer(u);
  model_.set_layer_residency({});
  for (Entry& e : entries_) e.unit = kWhole;  // nothing sharded any more
}

}  // namespace r1kit::pipelines
