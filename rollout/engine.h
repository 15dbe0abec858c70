// rollout::Engine: batched generation over any policy::CausalLM, with G samples per prompt.
//
// Memory is a paged pool (kv_pool.h): each distinct prompt is prefilled once (prompts
// batched, right-padded) into pool blocks that its G samples share; a sample copies only the
// prompt's last partial block. Decoding is continuously batched: up to max_batch_rows slots
// are decoded together, each row takes a block when its next position starts one and gives
// its blocks back when it ends, and a finished row's slot takes the next pending row, so one
// long trace does not hold the batch. When the pool runs dry the youngest rows are preempted
// (their blocks freed) and later resumed by prefilling their prompt + tokens so far; rows are
// admitted only while every active row keeps a block of headroom, so a resumed row does not
// immediately push another one out. A row's tokens and logprobs do not depend on what else is
// in the batch or on preemption (per-row random streams keyed by position, see sampler.h).
// Active slots are kept contiguous and attention reads only up to the longest active position.
// On CUDA the loop's only host syncs are the per-step copy of the new tokens (finish
// detection) and admissions.
// Not here: speculative decoding, prefix sharing between different prompts.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rollout/sampler.h"
#include "src/config.h"

namespace r1kit::policy {
class CausalLM;
}

namespace r1kit::rollout {

struct EngineOptions {
  int64_t max_batch_rows = 64;  // slots decoded together (continuous batching bound)
  // Size of the paged KV pool in tokens (rounded up to whole blocks; vLLM's num_gpu_blocks x
  // block_size). 0: every slot's longest possible row (capped by the memory budget), so
  // nothing is ever preempted. Smaller pools preempt and recompute; one row must fit.
  int64_t max_kv_tokens = 0;
  int64_t kv_block_size = 16;         // positions per pool block
  int64_t max_prefill_tokens = 8192;  // padded prompt tokens prefilled in one forward
  bool retain_cpu_memory = true;      // CPU (glibc): keep freed blocks in the heap (see engine.cpp)
  // The model's window for prompt + completion: max_position_embeddings, or less when set
  // (vLLM's max_model_len). A prompt that leaves no room is an error; a row ends at it.
  int64_t max_model_len = 0;
  // Budget for the KV cache and the per-row logits work, checked before allocating: fewer
  // slots are decoded together when R slots would not fit, and a request of which not even
  // one row fits is an error naming both sizes (never an OOM kill). 0: 90% of the memory
  // available when generate() starts (device.h available_memory_bytes; no check when unknown).
  int64_t max_memory_bytes = 0;
};

enum class FinishReason { kEos, kStopString, kLength };
std::string to_string(FinishReason reason);  // "eos" | "stop" | "length"

struct Rollout {
  int64_t prompt_index = 0;             // the group: index of the prompt in the request
  int64_t sample_index = 0;             // 0..G-1 within the group
  std::vector<int32_t> prompt_ids;      // [P]
  std::vector<int32_t> completion_ids;  // [T]; includes the EOS / stop token that ended it
  std::vector<float> logprobs;          // [T] sampler logprob of each completion token
  FinishReason finish = FinishReason::kLength;
  std::string text;  // completion text when the engine has a detokenizer
};

struct CacheReport {
  int64_t values_per_token_per_layer = 0;  // MLA: kv_lora_rank + qk_rope_head_dim; GQA: 2*Hkv*Dh
  int64_t bytes_per_token = 0;             // across all layers at the cache dtype
  int64_t rows = 0;                        // slots
  int64_t capacity = 0;                    // positions one row may reach (prompt + completion)
  int64_t block_size = 0;                  // positions per pool block
  int64_t blocks = 0;                      // pool blocks
  int64_t total_bytes = 0;                 // the pool, preallocated
  int64_t peak_blocks = 0;                 // most blocks in use at once
  int64_t shared_blocks = 0;       // block references a sample took on its prompt's blocks instead of new blocks
  int64_t preemptions = 0;         // rows preempted when the pool ran dry
  int64_t recomputed_tokens = 0;   // positions prefilled again to resume them
  int64_t free_blocks_at_end = 0;  // == blocks: every block was handed back
};

struct Rollouts {
  std::vector<Rollout> rows;  // N = B*G, row b*G + g
  int64_t group_size = 1;
  CacheReport cache;
  int64_t prefill_tokens = 0;    // prompt tokens run through the model (each prompt once)
  int64_t generated_tokens = 0;  // completion tokens
  int64_t decode_steps = 0;      // batched decode forwards
  double seconds = 0;
};

// Token ids -> text, for stop strings and Rollout::text (e.g. Tokenizer::decode).
using Detokenizer = std::function<std::string(const std::vector<int32_t>&)>;

class Engine {
 public:
  // The model is used as is (its device and dtype); generation runs under inference mode.
  explicit Engine(std::shared_ptr<policy::CausalLM> model, EngineOptions options = {}, Detokenizer detokenizer = {});
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  // prompts: B token id lists; G samples each. prompt_seeds: one seed per prompt (so a
  // prompt's samples do not depend on its index in the request); empty = derived from
  // options.seed and the prompt index.
  Rollouts generate(const std::vector<std::vector<int32_t>>& prompts, int64_t group_size,
                    const SamplingOptions& options, const std::vector<uint64_t>& prompt_seeds = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace r1kit::rollout
