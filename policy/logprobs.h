// Log-probabilities (and entropies) of given tokens without materialising [N, T, V] logits.
//
// The logits of a chunk of positions are computed, reduced to (log p(target), entropy) and
// dropped; backward recomputes each chunk's logits instead of saving them (a custom autograd
// function), so peak memory is one [chunk, V] block instead of the [N, T, V] tensor that
// makes peers run out of memory on long completions. Math in fp32 whatever the model dtype.
// Temperature divides the logits first, as the sampler does, so these are the logprobs of
// the distribution generation sampled from (before top-k/top-p truncation).
#pragma once
#include <ATen/core/Tensor.h>

namespace r1kit::policy {

struct LogprobOptions {
  double temperature = 1.0;   // logits / temperature before the softmax
  int64_t chunk_rows = 1024;  // positions per chunk: peak extra memory = chunk_rows * V floats
};

struct TokenLogprobs {
  at::Tensor logprobs;  // [N, T] fp32 log p(target)
  at::Tensor entropy;   // [N, T] fp32 entropy of the whole distribution
};

// hidden [N, T, D] (final-norm output), lm_head [V, D], targets [N, T] int64.
// Differentiable with respect to hidden and lm_head through both outputs.
TokenLogprobs token_logprobs(const at::Tensor& hidden, const at::Tensor& lm_head, const at::Tensor& targets,
                             const LogprobOptions& options = {});

// Forward KL(teacher_T || student_T) per position between the temperature-softened
// distributions (knowledge distillation), chunked the same way: the student's and the
// teacher's [chunk, V] logits exist one chunk at a time, in forward and in backward.
// hidden [N, T, D] and lm_head [V, D] (the student's; differentiable), teacher_hidden
// [N, T, Dt] and teacher_head [V, Dt] (not differentiated) -> [N, T] fp32.
at::Tensor token_kl(const at::Tensor& hidden, const at::Tensor& lm_head, const at::Tensor& teacher_hidden,
                    const at::Tensor& teacher_head, const LogprobOptions& options = {});

// The straightforward version (full log_softmax), for tests and tiny inputs.
TokenLogprobs token_logprobs_naive(const at::Tensor& hidden, const at::Tensor& lm_head, const at::Tensor& targets,
                                   double temperature = 1.0);

}  // namespace r1kit::policy
