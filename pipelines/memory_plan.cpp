// plan_memory / smallest_fit (see memory_plan.h).
#include "pipelines/memory_plan.h"

#include <algorithm>

#include "pipelines/zero.h"
#include "policy/logprobs.h"
#include "policy/parameter_count.h"

namespace r1kit::pipelines {
namespace {

constexpr int64_t kLogprobChunkRows = policy::LogprobOptions{}.chunk_rows;  // what the trainers chunk by

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Bytes layer `i` keeps for backward per token (c: the compute dtype's size; RMSNorm works in
// fp32 and keeps its fp32 input; linears keep their input; SDPA keeps q, k, v, its output and
// the log-sum-exp; SwiGLU keeps gate, up, silu(gate) and their product).
int64_t layer_activation_bytes_per_token(const policy::ModelConfig& m, int64_t i, int64_t c) {
  const int64_t D = m.hidden_size, H = m.num_attention_heads;
  const int64_t norm = 4 * D + c * D;  // fp32 input + the normalised output
  int64_t attention = 0;
  if (m.is_mla()) {
    const int64_t q = H * m.qk_head_dim(), k = H * m.qk_head_dim(), v = H * m.v_head_dim;
    attention = c * D;                                                   // q_a / kv_a input
    if (m.q_lora_rank > 0) attention += (4 + 2 * c) * m.q_lora_rank;     // norm + q_b input
    attention += (4 + 2 * c) * m.kv_lora_rank + c * m.qk_rope_head_dim;  // kv norm, kv_b input, rope key
    attention += c * (q + k + v) + c * 2 * v + 4 * H;                    // SDPA, o_proj input
  } else {
    const int64_t Dh = m.head_dim, Hkv = m.num_key_value_heads;
    attention = c * D + c * (H + 2 * Hkv) * Dh + c * 2 * H * Dh + 4 * H;
    if (m.qk_norm) attention += (4 + c) * (H + Hkv) * Dh;
  }
  int64_t mlp = 0;
  if (m.is_moe_layer(i)) {
    const int64_t E = m.num_experts, K = m.num_experts_per_tok, I = m.moe_intermediate_size;
    mlp = c * D + 2 * 4 * E + 8 * K + c * K * (2 * D + 4 * I);  // router scores, routing, expert rows
    const int64_t shared = m.n_shared_experts > 0 ? I * m.n_shared_experts : m.shared_expert_intermediate_size;
    if (shared > 0) mlp += 4 * c * shared;
  } else {
    mlp = c * D + 4 * c * m.intermediate_size;
  }
  return 2 * norm + attention + mlp;
}

}  // namespace

MemoryPlan plan_memory(const TrainingShape& s, int world_size, int64_t runtime_bytes) {
  const policy::ParameterCounts counts = policy::count_parameters(s.model);
  const int64_t W = world_size, P = counts.total;
  const int64_t c = s.bf16 ? 2 : 4;
  const bool lora = s.lora.r > 0;
  const int64_t trained = lora ? policy::lora_parameter_count(counts, s.lora) : P;
  const bool mixed = s.bf16;
  MemoryPlan p;
  p.runtime = runtime_bytes;

  // Persistent model states (zero.h; Training::persistent_bytes for stage 0).
  const int64_t frozen = P - (lora ? 0 : trained);  // LoRA: the whole base
  const int64_t trained_chunk = s.zero_stage > 0 ? ceil_div(trained, W) : trained;
  switch (s.zero_stage) {
    case 0:
      p.params = c * (frozen + trained) + (mixed ? 4 * trained : 0);
      if (lora) p.params = c * P + c * trained + (mixed ? 4 * trained : 0);
      p.grads = 4 * trained;
      break;
    case 1:
    case 2:
      p.params = c * (lora ? P + trained : P) + 4 * trained_chunk;
      p.grads = s.zero_stage == 1 ? 4 * trained : 4 * trained_chunk;
      break;
    default:  // 3: the compute copy sharded too; with fp32 compute a chunk is its master
      p.params = lora ? c * ceil_div(P, W) + c * trained + 4 * trained_chunk
                      : (c == 4 ? 4 * trained_chunk : c * ceil_div(P, W) + 4 * trained_chunk);
      p.grads = 4 * trained_chunk;
      break;
  }
  p.optimizer = 8 * trained_chunk;
  if (s.reference_copy) p.frozen_models += c * P;
  if (s.teacher) p.frozen_models += c * policy::count_parameters(*s.teacher).total;

  // Activations of one micro-batch.
  const int64_t n = s.rows_per_forward(world_size) * s.tokens_per_row;
  const int64_t D = s.model.hidden_size, V = s.model.vocab_size, L = s.model.num_hidden_layers;
  int64_t all_layers = 0, largest_layer = 0;
  for (int64_t i = 0; i < L; ++i) {
    const int64_t a = layer_activation_bytes_per_token(s.model, i, c);
    all_layers += a;
    largest_layer = std::max(largest_layer, a);
  }
  // Outside the layers: the embedding output, the final norm, the logprobs' input; backward
  // of one logprob chunk holds z, p and dz [chunk, V] in fp32 (and the teacher's for KD).
  const int64_t outer =
      n * (c * D + 4 * D + c * D + c * D) + std::min(n, kLogprobChunkRows) * V * 4 * (s.teacher ? 5 : 3);
  p.activations_without_checkpointing = n * all_layers + outer;
  p.activations_with_checkpointing = n * (L * c * D + largest_layer) + outer;
  const bool checkpointing = s.gradient_checkpointing || s.zero_stage == 3;
  p.activations = checkpointing ? p.activations_with_checkpointing : p.activations_without_checkpointing;
  if (s.teacher) p.activations += n * s.teacher->hidden_size * c;  // the teacher's final hidden states

  // The step's short-lived tensors.
  const int64_t largest_layer_params = *std::max_element(counts.layers.begin(), counts.layers.end());
  int64_t transient = 2 * 4 * counts.largest_tensor;  // AdamW's per-tensor temporaries
  if (s.zero_stage == 0 && mixed) transient += c * trained + 4 * counts.largest_tensor;  // bf16 grads before the fold
  if (s.zero_stage == 1 || s.zero_stage == 2) {
    // The compute gradients of one backward before they are folded / reduce-scattered, and
    // one bucket of the all-gather that publishes the update (the received rows + the copies).
    transient += c * trained + 2 * std::min<int64_t>(kZeroBucketBytes, c * trained);
  }
  if (s.zero_stage == 3) {
    // The outer tensors whole; one layer whole, its gradients and their reduce-scatter rows.
    transient += c * counts.outer + 3 * c * largest_layer_params;
  }
  p.step_transient = transient;
  if (s.zero_stage >= 1) p.checkpoint_save = 4 * trained;

  // Generation (grpo): ZeRO-3 gathers whole weights; the KV cache of the rows decoded
  // together at their longest, and one position's logits per row.
  if (s.rollout_rows > 0) {
    if (s.zero_stage == 3) p.inference_copy = c * P - c * ceil_div(P, W);
    int64_t rows = ceil_div(s.rollout_rows, W);
    if (s.rollout_cap_rows > 0) rows = std::min(rows, s.rollout_cap_rows);
    const int64_t per_token = s.model.is_mla() ? L * (s.model.kv_lora_rank + s.model.qk_rope_head_dim) * c
                                               : L * 2 * s.model.num_key_value_heads * s.model.head_dim * c;
    p.kv_cache = rows * s.rollout_tokens * per_token + rows * V * 4 * 2;
  }
  return p;
}

std::optional<FitChoice> smallest_fit(TrainingShape shape, int64_t budget, int max_world, int64_t runtime_bytes) {
  const int64_t wanted_rows = shape.micro_rows;
  for (int W = 1; W <= max_world; W *= 2) {
    for (int zero = 0; zero <= 3; ++zero) {
      for (int64_t rows = wanted_rows; rows >= 1; rows = shape.global_rows > 0 ? 0 : rows / 2) {
        for (const bool checkpointing : {false, true}) {
          TrainingShape s = shape;
          s.zero_stage = zero;
          s.micro_rows = rows;
          s.gradient_checkpointing = checkpointing;
          const MemoryPlan p = plan_memory(s, W, runtime_bytes);
          if (p.total() <= budget) return FitChoice{W, zero, s.rows_per_forward(W), checkpointing || zero == 3, p};
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace r1kit::pipelines
