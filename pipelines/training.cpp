// Training (see training.h).
#include "pipelines/training.h"

#include <ATen/ATen.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "policy/causal_lm.h"
#include "policy/lora.h"
#include "src/byte_size.h"
#include "src/distributed.h"
#include "src/logging.h"
#include "src/metrics.h"

namespace r1kit::pipelines {

namespace fs = std::filesystem;

namespace {

// save_dtype "auto": the dtype of the directory the model was loaded from (config.json's
// torch_dtype, or transformers 5's dtype); fp32 for a model made here.
std::string saved_dtype(const policy::CausalLM& model, const std::string& save_dtype) {
  if (save_dtype != "auto") return save_dtype;
  const Json& extra = model.config().hf_extra;
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (extra.contains(key) && extra[key] == "bfloat16") return "bfloat16";
  }
  return "float32";
}

}  // namespace

Training::Training(policy::CausalLM& model, const OptimizerOptions& optimizer, const MemoryOptions& memory,
                   const CheckpointOptions& checkpoints, int64_t max_steps, const StageContext& context,
                   policy::CausalLM* reference)
    : model_(model),
      reference_(reference),
      options_(optimizer),
      memory_(memory),
      checkpoints_(checkpoints),
      max_steps_(max_steps),
      context_(context),
      checkpoint_root_((fs::path(context.run_dir) / "checkpoints" / context.stage_name).string()),
      replica_(replica_tensors(model)),
      trained_(policy::trainable_parameters(model)) {
  DistributedContext& dist = distributed();
  const bool mixed = memory.bf16_on(model.lm_head_weight().device());
  compute_dtype_ = mixed ? at::kBFloat16 : at::kFloat;
  // AdamW's tensors: this rank's fp32 master chunks under ZeRO, whole fp32 masters under
  // mixed precision, else the trained tensors themselves. They are made before a resume loads
  // into the model, and take the model's (fp32) values below, after the checkpoint's are in.
  std::vector<at::Tensor> master_values;
  if (memory.zero_stage > 0) {
    zero_ = std::make_unique<ZeroShards>(model, trained_, static_cast<int>(memory.zero_stage), dist);
    master_values = zero_->masters();
  } else {
    for (const at::Tensor& p : trained_) master_values.push_back(mixed ? p.detach().clone() : p);
  }
  updated_ = master_values;
  // With LoRA only the adapters train: the frozen base has no gradients and no AdamW state.
  optimizer_ = std::make_unique<torch::optim::AdamW>(updated_, torch::optim::AdamWOptions(optimizer.learning_rate)
                                                                   .betas({optimizer.adam_beta1, optimizer.adam_beta2})
                                                                   .weight_decay(optimizer.weight_decay));
  if (context.resume) {
    if (const auto chosen = agreed_latest_checkpoint(checkpoint_root_, dist)) {
      state = load_checkpoint(*chosen, model, *optimizer_, reference, zero_ ? dist.world_size() : 0, dist.rank());
      if (dist.is_main()) log::info("{}: resumed from {} (step {})", context.stage_name, *chosen, state.step);
    }
  }
  // A fresh model is made from the seed on every rank, a resumed one read from one file: the
  // check proves the replicas start equal (whole, before ZeRO shards them).
  check_replicas_equal(dist, replica_, context.stage_name + " start");
  // Checkpoints hold fp32 weights: the model (fp32 until now) has the exact masters.
  if (zero_) {
    zero_->start(compute_dtype_);
    replica_ = zero_->replicated();
  } else if (mixed) {
    masters_ = std::make_unique<MasterWeights>(model, trained_, compute_dtype_, std::move(master_values));
  }
  if (reference != nullptr) cast_parameters(*reference, compute_dtype_);  // computes only
  // ZeRO-3 frees a layer's weights after its forward: backward must recompute it.
  const bool checkpointing = memory.gradient_checkpointing || memory.zero_stage == 3;
  if (checkpointing && !memory.gradient_checkpointing && dist.is_main()) {
    log::info("{}: zero_stage 3 recomputes each decoder layer in backward (gradient_checkpointing on)",
              context.stage_name);
  }
  model.set_gradient_checkpointing(checkpointing);
  log_persistent_bytes();
  reset_peak_memory(model.lm_head_weight().device());  // the first step's window
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

void Training::backward(const at::Tensor& loss) {
  loss.backward();
  if (zero_) {
    zero_->after_backward();
  } else if (masters_) {
    masters_->accumulate_gradients();
  }
}

double Training::step_optimizer() {
  double grad_norm = 0;
  if (zero_) {
    grad_norm = zero_->reduce_for_step();
    // clip_grad_norm_'s rule, on the global norm of the sharded gradients.
    const double coefficient = options_.max_grad_norm / (grad_norm + 1e-6);
    if (std::isfinite(grad_norm) && coefficient < 1) zero_->scale_gradients(coefficient);
  } else {
    all_reduce_gradients(distributed(), updated_);
    grad_norm = torch::nn::utils::clip_grad_norm_(updated_, options_.max_grad_norm);
  }
  if (std::isfinite(grad_norm)) {
    nonfinite_in_a_row_ = 0;
    optimizer_->step();
    if (zero_) {
      zero_->publish();
    } else if (masters_) {
      masters_->copy_to_model();
    }
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
  std::string bad = zero_ ? zero_->first_nonfinite() : model_.first_nonfinite_parameter();
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
  // The step's peak memory on the busiest rank (src/device.h: CUDA max allocated, CPU peak
  // RSS), beside what `r1kit plan` predicts.
  const c10::Device device = model_.lm_head_weight().device();
  const std::vector<double> peaks = dist.max_over_ranks(
      {static_cast<double>(peak_memory_bytes(device)), static_cast<double>(peak_rss_bytes())}, "peak memory");
  logged["memory/peak_bytes"] = peaks[0];
  if (device.is_cpu()) logged["memory/peak_rss_bytes"] = peaks[1];
  logged["memory/persistent_bytes"] = persistent_max_;  // params + grads + AdamW, busiest rank
  reset_peak_memory(device);
  metrics_->log(state.step, logged);
  const bool last = state.step == max_steps_;
  if (last || state.step % replica_check_steps == 0) {
    check_replicas_equal(dist, replica_, context_.stage_name + " step " + std::to_string(state.step));
  }
  if (last || (checkpoints_.save_steps > 0 && state.step % checkpoints_.save_steps == 0)) {
    std::optional<MasterWeights::ModelHoldsMasters> full_precision;
    std::optional<ZeroShards::WholeMasters> whole;
    if (masters_) full_precision.emplace(*masters_);
    if (zero_) whole.emplace(*zero_);
    check_finite("checkpoint");
    save_checkpoint_synced(dist, checkpoint_root_, model_, tokenizer, *optimizer_, state, checkpoints_.save_total_limit,
                           reference_, zero_ != nullptr);
  }
}

std::string Training::save_final(const Tokenizer& tokenizer, bool merge_adapter) {
  const std::string dir = stage_model_dir(context_.run_dir, context_.stage_name);
  std::optional<MasterWeights::ModelHoldsMasters> full_precision;
  if (masters_) full_precision.emplace(*masters_);  // rounded once, to save_dtype
  std::optional<ZeroShards::WholeMasters> whole;
  if (zero_) {
    zero_->finish();  // the model stays whole from here on
    whole.emplace(*zero_);
    whole->keep();
  }
  check_finite("model");
  if (merge_adapter && policy::has_lora(model_)) {
    // The fp32 adapters' delta is mostly below half a bf16 ulp: merge into an fp32 base.
    if (compute_dtype_ != at::kFloat) cast_parameters(model_, at::kFloat);
    policy::merge_lora(model_);  // a plain HF model
  }
  save_final_model(distributed(), model_, tokenizer, dir, {.dtype = saved_dtype(model_, memory_.save_dtype)});
  return dir;
}

DeviceChoice training_device(const std::string& spec) {
  DeviceChoice device = rank_device(spec);
  device.dtype = at::kFloat;
  return device;
}

std::unique_ptr<ZeroShards::WholeWeights> Training::whole_weights() {
  if (!zero_ || zero_->stage() != 3) return nullptr;
  return std::make_unique<ZeroShards::WholeWeights>(*zero_);
}

PersistentBytes Training::persistent_bytes() const {
  if (zero_) return zero_->persistent_bytes();
  PersistentBytes b;
  for (const at::Tensor& p : model_.parameters()) b.params += p.numel() * p.element_size();
  for (const at::Tensor& t : trained_) {
    if (masters_) b.params += t.numel() * 4;
    b.grads += t.numel() * 4;
    b.optimizer += 2 * t.numel() * 4;
  }
  if (policy::has_lora(model_)) {
    for (const at::Tensor& t : trained_) b.params += t.numel() * t.element_size();
  }
  return b;
}

void Training::log_persistent_bytes() {
  const PersistentBytes b = persistent_bytes();
  DistributedContext& dist = distributed();
  const std::vector<Json> all = dist.all_gather_json(Json::array({b.params, b.grads, b.optimizer}), "persistent bytes");
  for (const Json& r : all) {
    persistent_max_ = std::max(persistent_max_, r[0].get<double>() + r[1].get<double>() + r[2].get<double>());
  }
  if (!dist.is_main()) return;
  for (size_t r = 0; r < all.size(); ++r) {
    log::info("{}: rank {} holds {} of parameters + {} of gradients + {} of optimizer states = {} (zero_stage {})",
              context_.stage_name, r, format_bytes(all[r][0].get<int64_t>()), format_bytes(all[r][1].get<int64_t>()),
              format_bytes(all[r][2].get<int64_t>()),
              format_bytes(all[r][0].get<int64_t>() + all[r][1].get<int64_t>() + all[r][2].get<int64_t>()),
              memory_.zero_stage);
  }
}

int64_t padded_length_over_ranks(int64_t local) {
  return static_cast<int64_t>(
      distributed().max_over_ranks(static_cast<double>(std::max<int64_t>(local, 1)), "batch length"));
}

}  // namespace r1kit::pipelines
