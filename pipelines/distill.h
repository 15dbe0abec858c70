// The `distill` stage (DeepSeek-R1 sec. 2.4): a (smaller, dense) student is fine-tuned on a
// teacher's traces, usually the output of a rejection_sample stage. R1 distilled with SFT
// alone; optionally the loss adds token-level knowledge distillation against the teacher's
// logits (forward KL at a temperature, sft.h KdTeacher), which needs the same tokenizer on
// both sides (checked: the two tokenizer.json files must be identical).
// Options: every sft option (the student is `model` or `model_config`), plus `teacher`,
// `kd_weight` (0 = SFT only, the teacher is then not loaded) and `kd_temperature`.
#pragma once
#include <string>

#include "pipelines/sft.h"

namespace r1kit::pipelines {

struct DistillOptions {
  SftOptions sft;          // the student's training (data = the traces)
  std::string teacher;     // HF model directory of the teacher ("" allowed when kd_weight = 0)
  double kd_weight = 0.0;  // weight of the KD term; 1 - kd_weight on the NLL of the traces
  double kd_temperature = 1.0;
};

DistillOptions parse_distill_options(const Json& j, const StageSetting& setting);
std::vector<StageInput> distill_inputs(const DistillOptions& o);
StageResult run_distill(const DistillOptions& options, const StageContext& context);

}  // namespace r1kit::pipelines
