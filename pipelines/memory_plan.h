// `r1kit plan`'s arithmetic: the bytes one rank of a training stage holds, from the model's
// config and the stage's options alone (nothing allocated), by the rules the trainer follows:
// mixed_precision.h (bf16 over fp32 masters), zero.h (what each zero_stage shards and what
// it gathers for a moment), checkpointing.h (what a layer keeps for backward), the chunked
// logprobs, the rollout's KV cache. Activations are counted per token from the tensors
// r1kit's layers keep for backward (attention through SDPA: nothing quadratic in T).
// The CPU figure adds the process's own footprint (LibTorch's code and allocator), which
// memory/peak_bytes (peak RSS) includes; on CUDA the context (~0.5 GiB) is outside
// max_memory_allocated and outside the plan.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/config.h"
#include "policy/lora.h"

namespace r1kit::pipelines {

// What a training stage runs, in the terms that size its memory.
struct TrainingShape {
  policy::ModelConfig model;
  policy::LoraOptions lora;  // r 0: full fine-tuning
  bool bf16 = false;         // bf16 compute over fp32 masters (else fp32)
  int zero_stage = 0;
  bool gradient_checkpointing = false;
  // Sequences per forward/backward on a rank: sft runs its whole share of the batch at once
  // (global_rows / W), grpo micro-batches of micro_rows.
  int64_t global_rows = 0;
  int64_t micro_rows = 1;
  int64_t tokens_per_row = 1;                  // their length (prompt + completion, or seq_len)
  bool reference_copy = false;                 // grpo beta > 0 without LoRA: a second (compute) model
  std::optional<policy::ModelConfig> teacher;  // distill with kd_weight > 0
  // Generation (grpo): each rank decodes its share of rollout_rows (prompts x G) together,
  // at most rollout_cap_rows at a time (generation_batch_rows; 0 = all), each up to
  // rollout_tokens long.
  int64_t rollout_rows = 0, rollout_cap_rows = 0, rollout_tokens = 0;

  int64_t rows_per_forward(int world_size) const {
    return global_rows > 0 ? (global_rows + world_size - 1) / world_size : micro_rows;
  }
};

// Bytes per rank. The peak is the persistent states plus the larger of the training step's
// and the rollout's working sets (they do not overlap in time).
struct MemoryPlan {
  int64_t params = 0, grads = 0, optimizer = 0;  // persistent model states (zero.h PersistentBytes)
  int64_t frozen_models = 0;                     // GRPO's reference / distill's teacher (compute dtype)
  int64_t activations = 0;                       // kept for backward at the micro-batch
  int64_t activations_without_checkpointing = 0;
  int64_t activations_with_checkpointing = 0;
  int64_t step_transient = 0;  // gathered layers, unfolded gradients, AdamW temporaries, logits chunks
  int64_t inference_copy = 0;  // zero_stage 3: whole weights while generating
  int64_t kv_cache = 0;        // the rollout's KV cache and last-position logits
  // zero_stage >= 1: a checkpoint (and the final save) gathers the whole fp32 trained tensors
  // on every rank for the moment it is written (between steps).
  int64_t checkpoint_save = 0;
  int64_t runtime = 0;  // CPU: the process's own footprint

  int64_t persistent() const { return params + grads + optimizer + frozen_models; }
  int64_t train_peak() const { return activations + step_transient; }
  int64_t rollout_peak() const { return inference_copy + kv_cache; }
  // Live tensor bytes at the peak: what memory/peak_bytes measures (CUDA max allocated, CPU
  // live tensors).
  int64_t tensors() const { return persistent() + std::max(train_peak(), rollout_peak()); }
  int64_t total() const { return runtime + std::max(tensors(), persistent() + checkpoint_save); }
};

MemoryPlan plan_memory(const TrainingShape& shape, int world_size, int64_t runtime_bytes = 0);

// The first setting, in this order, that fits `budget` bytes: the fewest ranks (powers of two
// up to max_world), then the lowest zero_stage, then the largest micro-batch (halving; grpo's
// per_device_train_batch_size), checkpointing off before on. None: nothing up to max_world fits.
struct FitChoice {
  int world_size = 1;
  int zero_stage = 0;
  int64_t micro_rows = 1;
  bool gradient_checkpointing = false;
  MemoryPlan plan;
};
std::optional<FitChoice> smallest_fit(TrainingShape shape, int64_t budget, int max_world, int64_t runtime_bytes);

}  // namespace r1kit::pipelines
