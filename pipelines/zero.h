// ZeRO-sharded data parallel (DeepSpeed ZeRO / FSDP semantics) on the stage's c10d group:
// every trained tensor is split into W equal chunks of its flat elements (the last padded
// with zeros), and rank r keeps chunk r of what the stage shards:
//  - zero_stage 1: the fp32 master weights and AdamW's moments (optimizer states). Each rank
//    accumulates its full local gradient over the step's micro-batches in fp32; at the step
//    the gradients are reduce-scattered (each rank receives the sum over ranks of its
//    chunk), each rank updates its chunk, and the updated chunks are all-gathered into every
//    rank's (bf16 or fp32) compute copy of the model.
//  - zero_stage 2: + gradients: reduce-scattered after every backward, so the full gradient
//    lives only within one micro-batch's backward. Every rank must then run the same number of
//    backward passes per step (a grpo stage with dynamic_sampling cannot: checked at parse).
//  - zero_stage 3: + the compute copies of the weights (trained or frozen). A decoder layer's
//    weights are all-gathered just before it runs and freed right after, in forward and in
//    backward, whose recompute (activation checkpointing, forced on) gathers them again; its
//    gradients are reduce-scattered as soon as its backward is done. The embeddings, the final
//    norm and lm_head (the loss uses them after the forward) are gathered at the start of a
//    forward and freed after the backward. LoRA adapters stay whole (sharded like stage 2).
//    With fp32 compute a trained tensor's chunk is its master (one copy). Generation needs whole weights:
//    WholeWeights gathers every layer into the compute copy for the rollout and frees it after
//    (one compute copy of the model for as long as the rollout runs).
// Every rank ends a step with bitwise the same compute copy of the replicated tensors; the
// result equals one rank's within float rounding of the summation order. Checkpoints gather
// the fp32 masters into the model for rank 0 to write a normal HF directory (every rank holds
// the whole fp32 model while a checkpoint is written); the optimizer states stay sharded, one
// file per rank.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace r1kit {
class DistributedContext;
}

namespace r1kit::policy {
class CausalLM;
}

namespace r1kit::pipelines {

// Collectives move at most this many bytes at once (the transient copies are twice that).
inline constexpr int64_t kZeroBucketBytes = int64_t{256} << 20;

// Bytes a rank holds between steps, by kind (what `r1kit plan` predicts).
struct PersistentBytes {
  int64_t params = 0;     // compute copies + fp32 masters
  int64_t grads = 0;      // fp32 gradients AdamW reads
  int64_t optimizer = 0;  // AdamW's two moments
  int64_t total() const { return params + grads + optimizer; }
};

class ZeroShards {
 public:
  // The partition of `model`'s tensors (fp32, as loaded) over the group; `trained` are the
  // model's trained tensors (every parameter, or the LoRA adapters). Allocates this rank's
  // fp32 master chunks (for AdamW) but does not fill them: start() does.
  ZeroShards(policy::CausalLM& model, const std::vector<at::Tensor>& trained, int stage, DistributedContext& dist);
  ~ZeroShards();
  ZeroShards(const ZeroShards&) = delete;
  ZeroShards& operator=(const ZeroShards&) = delete;

  // This rank's fp32 master chunks, one [chunk] tensor per trained tensor: AdamW's tensors.
  const std::vector<at::Tensor>& masters() const { return masters_; }
  // Takes the masters from the model's (fp32, possibly resumed) tensors, casts the model to
  // `compute` and, under stage 3, replaces every layer tensor by this rank's chunk and
  // installs the gather/release hooks (policy::CausalLM::LayerResidency).
  void start(at::ScalarType compute);
  // After a micro-batch's backward: stage 1 folds the compute gradients into the full fp32
  // accumulators, stages 2-3 reduce-scatter what is not yet reduced into the masters' grads.
  void after_backward();
  // Before the optimizer step: stage 1 reduce-scatters the accumulated gradients. Returns the
  // global gradient norm (over all ranks' chunks).
  double reduce_for_step();
  // Scales the masters' gradients (clipping); drops them (a skipped step).
  void scale_gradients(double factor);
  void drop_gradients();
  // After the optimizer step: the updated chunks into every rank's compute copy.
  void publish();
  // The first tensor holding a NaN or infinity on any rank ("" when none); every rank agrees.
  std::string first_nonfinite();
  // Tensors every rank holds whole and equal (for the replica check).
  std::vector<at::Tensor> replicated() const;
  PersistentBytes persistent_bytes() const;
  int stage() const { return stage_; }

  // Within its scope every layer's compute weights are whole (generation, a reference sync).
  class WholeWeights {
   public:
    explicit WholeWeights(ZeroShards& z);
    ~WholeWeights();
    WholeWeights(const WholeWeights&) = delete;
    WholeWeights& operator=(const WholeWeights&) = delete;

   private:
    ZeroShards& z_;
  };
  // Within its scope the model's trained tensors hold the whole fp32 masters: what a
  // checkpoint or the final model is written from (frozen tensors are left as they are). Every
  // rank takes part, and holds the whole fp32 trained tensors for the moment.
  class WholeMasters {
   public:
    explicit WholeMasters(ZeroShards& z);
    ~WholeMasters();
    WholeMasters(const WholeMasters&) = delete;
    WholeMasters& operator=(const WholeMasters&) = delete;
    // The model keeps the whole masters after the scope (the final save: nothing trains on).
    void keep() { before_.clear(); }

   private:
    ZeroShards& z_;
    std::vector<at::Tensor> before_;  // each tensor's data before the scope
  };
  // The model whole in its compute dtype from here on, hooks removed (after the final save).
  void finish();

  struct Entry;

 private:
  policy::CausalLM& model_;
  DistributedContext& dist_;
  int stage_;
  int world_, rank_;
  at::ScalarType compute_ = at::kFloat;
  std::vector<Entry> entries_;
  std::vector<at::Tensor> masters_;
  std::vector<std::vector<size_t>> units_;  // stage 3: entry indices per decoder layer, then the outer unit
  std::vector<bool> whole_;                 // per unit: gathered now
  bool pinned_ = false;                     // WholeWeights in scope

  size_t slot(int64_t unit) const;  // index into units_ (layer i, or -1 for the outer tensors)
  // Stage 3: unit (a layer, or -1 for the embeddings, final norm and lm_head) whole / back
  // to its chunks; after a backward (`backward`) its gradients are reduce-scattered first.
  void gather_layer(int64_t unit);
  void release_layer(int64_t unit, bool backward);
  // Reduce-scatters the fp32 gradients `grads[k]` of entries `which[k]` into their masters'.
  void reduce_scatter_into_masters(const std::vector<size_t>& which, const std::vector<at::Tensor>& grads);
  // All-gathers `chunks[k]` ([chunk] each) of entries `which[k]` into whole tensors.
  std::vector<at::Tensor> gather_whole(const std::vector<size_t>& which, const std::vector<at::Tensor>& chunks);
};

}  // namespace r1kit::pipelines
