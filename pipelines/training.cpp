// Training (see training.h).
#include "pipelines/training.h"

#include <ATen/ATen.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <filesystem>

#include "policy/causal_lm.h"
#include "policy/lora.h"
#include "src/distributed.h"
#include "src/logging.h"
#include "src/metrics.h"

namespace r1kit::pipelines {

namespace fs = std::filesystem;

Training::Training(policy::CausalLM& model, const OptimizerOptions& optimizer, const CheckpointOptions& checkpoints,
                   int64_t max_steps, const StageContext& context, policy::CausalLM* reference)
    : model_(model),
      reference_(reference),
      options_(optimizer),
      checkpoints_(checkpoints),
      max_steps_(max_steps),
      context_(context),
      checkpoint_root_((fs::path(context.run_dir) / "checkpoints" / context.stage_name).string()),
      replica_(replica_tensors(model)),
      trained_(policy::trainable_parameters(model)) {
  DistributedContext& dist = distributed();
  // With LoRA only the adapters train: the frozen base has no gradients and no AdamW state.
  optimizer_ = std::make_unique<torch::optim::AdamW>(trained_, torch::optim::AdamWOptions(optimizer.learning_rate)
                                                                   .betas({optimizer.adam_beta1, optimizer.adam_beta2})
                                                                   .weight_decay(optimizer.weight_decay));
  if (context.resume) {
    if (const auto chosen = agreed_latest_checkpoint(checkpoint_root_, dist)) {
      state = load_checkpoint(*chosen, model, *optimizer_, reference);
      if (dist.is_main()) log::info("{}: resumed from {} (step {})", context.stage_name, *chosen, state.step);
    }
  }
  // A fresh model is made from the seed on every rank, a resumed one read from one file: the
  // check proves the replicas start equal.
  check_replicas_equal(dist, replica_, context.stage_name + " start");
  // Each stage logs into RUN/<stage>/ (metrics.jsonl + TensorBoard events); rank 0 only.
  metrics_ = std::make_unique<MetricsLogger>((fs::path(context.run_dir) / context.stage_name).string(), dist.is_main());
  if (context.resume) metrics_->truncate_after(state.step);  // replayed steps are not logged twice
}

Training::~Training() = default;

double Training::begin_step(int64_t step) {
  const double lr = learning_rate_at(options_.schedule(max_steps_), step);
  for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  return lr;
}

double Training::step_optimizer() {
  all_reduce_gradients(distributed(), trained_);
  const double grad_norm = torch::nn::utils::clip_grad_norm_(trained_, options_.max_grad_norm);
  if (std::isfinite(grad_norm)) {
    nonfinite_in_a_row_ = 0;
    optimizer_->step();
    return grad_norm;
  }
  // NaN/inf gradients (a loss that overflowed, weights already ruined by a huge learning
  // rate): an update would spread them into every weight and the AdamW moments.
  optimizer_->zero_grad();
  ++nonfinite_in_a_row_, ++nonfinite_total_;
  const int64_t step = state.step + 1;
  if (nonfinite_in_a_row_ >= options_.max_nonfinite_steps) {
    throw Error(
        fmt::format("{}: step {}: the gradient norm was not finite ({}) in {} steps in a row; stopped "
                    "without saving (learning_rate {} too high? the last checkpoint, if any, is intact)",
                    context_.stage_name, step, grad_norm, nonfinite_in_a_row_, options_.learning_rate));
  }
  if (distributed().is_main()) {
    log::warn("{}: step {}: gradient norm {}; update skipped ({} of at most {} in a row)", context_.stage_name, step,
              grad_norm, nonfinite_in_a_row_, options_.max_nonfinite_steps);
  }
  return grad_norm;
}

void Training::check_finite(const std::string& what) const {
  std::string bad = model_.first_nonfinite_parameter();
  if (bad.empty() && policy::has_lora(model_)) {
    const policy::LoraOptions adapters = policy::lora_options(model_);
    for (size_t i = 0; i < trained_.size() && bad.empty(); ++i) {  // A, B per module
      if (!at::isfinite(trained_[i]).all().item<bool>()) {
        bad = adapters.target_modules[i / 2] + (i % 2 == 0 ? ".lora_A.weight" : ".lora_B.weight");
      }
    }
  }
  if (!bad.empty()) {
    throw Error(fmt::format("{}: step {}: weight {} has non-finite values; {} not written", context_.stage_name,
                            state.step, bad, what));
  }
}

void Training::end_step(int64_t step, const std::map<std::string, double>& row, const Tokenizer& tokenizer,
                        int64_t replica_check_steps) {
  DistributedContext& dist = distributed();
  state.step = step + 1;
  std::map<std::string, double> logged = row;
  logged["nonfinite_skipped_steps"] = static_cast<double>(nonfinite_total_);
  metrics_->log(state.step, logged);
  const bool last = state.step == max_steps_;
  if (last || state.step % replica_check_steps == 0) {
    check_replicas_equal(dist, replica_, context_.stage_name + " step " + std::to_string(state.step));
  }
  if (last || (checkpoints_.save_steps > 0 && state.step % checkpoints_.save_steps == 0)) {
    check_finite("checkpoint");
    save_checkpoint_synced(dist, checkpoint_root_, model_, tokenizer, *optimizer_, state, checkpoints_.save_total_limit,
                           reference_);
  }
}

std::string Training::save_final(const Tokenizer& tokenizer, bool merge_adapter) {
  const std::string dir = stage_model_dir(context_.run_dir, context_.stage_name);
  check_finite("model");
  if (merge_adapter && policy::has_lora(model_)) policy::merge_lora(model_);  // a plain HF model
  save_final_model(distributed(), model_, tokenizer, dir);
  return dir;
}

int64_t padded_length_over_ranks(int64_t local) {
  return static_cast<int64_t>(
      distributed().max_over_ranks(static_cast<double>(std::max<int64_t>(local, 1)), "batch length"));
}

}  // namespace r1kit::pipelines
