// Activation checkpointing (TRL / transformers' gradient_checkpointing): a decoder layer runs
// forward without keeping its activations for backward (only its input is saved), and
// backward runs it again with gradients on, then backpropagates through that second run.
// Memory: one layer's activations at a time instead of every layer's, for one more forward
// per layer (about +33% of a training step's compute).
// The recompute must equal the first run: the default generator of the input's device (LoRA
// dropout) is put back to its state at the first run, and MoE blocks do not count the
// recomputed tokens into their expert load (in_recompute()).
// A layer's outputs always require grad (a frozen embedding under LoRA gives an input that
// does not), so the parameters inside it get their gradients.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace r1kit::policy {

// The checkpointed computation: input [N, T, D] -> its outputs (e.g. the hidden states and a
// MoE balance loss). Outputs may not be undefined; the function must depend on nothing that
// changes between forward and backward but the generator state.
using CheckpointedFn = std::function<std::vector<at::Tensor>(const at::Tensor& input)>;

// Called after each run of fn: after the forward (false), and in backward after the recompute
// has been backpropagated (true: the gradients of the tensors fn used are complete). ZeRO-3
// frees a layer's gathered weights here (pipelines/zero.h).
using CheckpointedDone = std::function<void(bool backward)>;

// fn(input) now with no activations kept; differentiable with respect to `input` and to every
// tensor fn uses that requires grad (its gradient is accumulated into .grad in backward).
std::vector<at::Tensor> checkpointed(const CheckpointedFn& fn, const at::Tensor& input,
                                     const CheckpointedDone& done = {});

// True while a checkpointed function runs for the second time (in backward), on this thread.
bool in_recompute();

}  // namespace r1kit::policy
