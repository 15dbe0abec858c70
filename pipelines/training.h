// What every training stage (sft, distill, grpo) sets up and does around its step the same
// way, written once: AdamW from OptimizerOptions, the learning-rate schedule, the checkpoint
// root and --resume from the newest complete checkpoint (agreed over ranks), the metrics
// logger (replayed steps dropped on resume), the gradient sum over ranks + clipping + step,
// the periodic replica check, due checkpoints, and the final model, and how the model is held
// (MemoryOptions: bf16 over fp32 masters, activation checkpointing). The stage keeps its own
// loop body (what a batch is and what the loss is). Not here: data order (schedule.h) and
// the checkpoint format (checkpoint.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipelines/checkpoint.h"
#include "pipelines/mixed_precision.h"
#include "pipelines/options.h"
#include "pipelines/stage.h"
#include "pipelines/zero.h"
#include "src/device.h"

namespace torch::optim {
class AdamW;
}

namespace r1kit {
class MetricsLogger;
}

namespace r1kit::pipelines {

class Training {
 public:
  // AdamW over `model`'s trainable parameters (its LoRA adapters when it has them); on context.resume, the newest
  // complete checkpoint of the stage is loaded into model, optimizer, state and `reference` (GRPO's KL reference, kept
  // in checkpoints when given). `max_steps` ends the schedule. Opens RUN/<stage>/ for metrics.
  // `model` (and `reference`) come in fp32; with memory.bf16 on they compute in bf16 from here
  // on and AdamW updates fp32 masters (mixed_precision.h).
  Training(policy::CausalLM& model, const OptimizerOptions& optimizer, const MemoryOptions& memory,
           const CheckpointOptions& checkpoints, int64_t max_steps, const StageContext& context,
           policy::CausalLM* reference = nullptr);
  ~Training();
  Training(const Training&) = delete;
  Training& operator=(const Training&) = delete;

  TrainerState state;  // step and data position; saved in every checkpoint

  torch::optim::AdamW& optimizer() { return *optimizer_; }
  // The dtype the model computes in (bf16 under mixed precision, else fp32).
  at::ScalarType compute_dtype() const { return compute_dtype_; }
  // loss.backward(), then (mixed precision) the bf16 gradients folded into the fp32 masters'.
  // Every micro-batch's backward goes through here.
  void backward(const at::Tensor& loss);
  // The step's learning rate from the schedule, set on every parameter group; returned.
  double begin_step(int64_t step);
  // Gradients summed over ranks, clipped to max_grad_norm, AdamW step (then the bf16 compute
  // copy refreshed from the masters). Returns the norm
  // before clipping. A non-finite norm (the same on every rank: the gradients are summed
  // first) skips the update; max_nonfinite_steps of those in a row throw an r1kit::Error
  // naming the stage and step (the last checkpoint stays as it was).
  double step_optimizer();
  // state.step = step + 1 (the caller's step); logs `row` plus `nonfinite_skipped_steps` and
  // `memory/peak_bytes` (the step's peak over ranks; the window restarts here) and
  // `memory/persistent_bytes` (persistent_bytes() of the busiest rank);
  // every `replica_check_steps` steps and at the end checks that the ranks' weights agree;
  // writes a checkpoint when due. No checkpoint or model is written with a non-finite weight
  // (an r1kit::Error names the tensor).
  void end_step(int64_t step, const std::map<std::string, double>& row, const Tokenizer& tokenizer,
                int64_t replica_check_steps);
  // The final model and tokenizer into RUN/models/<stage> (rank 0, then a barrier) in
  // save_dtype: with LoRA the PEFT adapter directory, or with `merge_adapter` the merged plain
  // model.
  std::string save_final(const Tokenizer& tokenizer, bool merge_adapter = false);
  // ZeRO-3: every decoder layer's weights whole while the result lives (generation; one
  // compute copy of the model); null (nothing to do) otherwise.
  std::unique_ptr<ZeroShards::WholeWeights> whole_weights();
  // What this rank holds between steps: parameters (compute copy + masters), fp32 gradients
  // and AdamW's moments. Logged per rank at the start.
  PersistentBytes persistent_bytes() const;

 private:
  policy::CausalLM& model_;
  policy::CausalLM* reference_;
  OptimizerOptions options_;
  MemoryOptions memory_;
  at::ScalarType compute_dtype_ = at::kFloat;
  CheckpointOptions checkpoints_;
  int64_t max_steps_;
  StageContext context_;
  std::string checkpoint_root_;
  std::vector<at::Tensor> replica_;         // views of the parameters: follow the updates
  std::vector<at::Tensor> trained_;         // the model's trained tensors: every parameter, or the LoRA adapters
  std::unique_ptr<MasterWeights> masters_;  // mixed precision without ZeRO
  std::unique_ptr<ZeroShards> zero_;        // zero_stage >= 1
  std::vector<at::Tensor> updated_;         // what AdamW updates: the masters, or trained_
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<MetricsLogger> metrics_;
  int64_t nonfinite_in_a_row_ = 0, nonfinite_total_ = 0;
  double persistent_max_ = 0;  // persistent_bytes().total() of the busiest rank

  void check_finite(const std::string& what) const;
  void log_persistent_bytes();
};

// The device of a training stage (`device`: auto|cpu|cuda, cuda -> cuda:<LOCAL_RANK>) with
// fp32: a trained model is loaded in fp32 whatever the device (Training casts it to bf16 under
// mixed precision, keeping the fp32 values as masters).
DeviceChoice training_device(const std::string& spec);

// The longest of every rank's `local` row length (at least 1). Data-parallel ranks pad their
// batches to it: padding tokens pass through the MoE router too, and the expert load (the
// bias rule's input) must count the same tokens as on one rank.
int64_t padded_length_over_ranks(int64_t local);

}  // namespace r1kit::pipelines
