// run_distill (see distill.h): checks the tokenizers, loads the frozen teacher when KD is on,
// and runs the sft trainer with it.
#include "pipelines/distill.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "policy/causal_lm.h"
#include "policy/pretrained.h"
#include "src/distributed.h"

namespace r1kit::pipelines {
namespace {

std::string tokenizer_file(const std::string& path) {
  const std::filesystem::path p(path);
  return std::filesystem::is_directory(p) ? (p / "tokenizer.json").string() : p.string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

DistillOptions parse_distill_options(const Json& j, const StageSetting& setting) {
  DistillOptions o;
  JsonFields f(j, setting.where);
  f.ignore("name");
  f.ignore("type");
  read_sft_options(f, o.sft, setting);
  f.get("teacher", o.teacher);
  f.get("kd_weight", o.kd_weight);
  f.get("kd_temperature", o.kd_temperature);
  f.finish();
  if (!(o.kd_weight >= 0 && o.kd_weight <= 1)) f.fail("kd_weight", "must be in [0, 1]");
  if (!(o.kd_temperature > 0)) f.fail("kd_temperature", "must be positive");
  if (o.kd_weight > 0 && o.teacher.empty()) f.fail("teacher", "is required when kd_weight > 0");
  if (o.kd_weight > 0 && o.sft.model.empty() && o.sft.tokenizer.empty()) {
    f.fail("kd_weight", "KD needs the student's tokenizer (set model or tokenizer)");
  }
  return o;
}

std::vector<StageInput> distill_inputs(const DistillOptions& o) {
  std::vector<StageInput> in = sft_inputs(o.sft);
  if (o.kd_weight > 0) in.push_back({"teacher", o.teacher, StageInput::Kind::kModelDir});
  return in;
}

StageResult run_distill(const DistillOptions& o, const StageContext& ctx) {
  if (o.kd_weight == 0) {
    StageResult r = run_sft(o.sft, ctx);
    r.summary["type"] = "distill";
    r.summary["teacher"] = o.teacher;
    return r;
  }
  // Token-level KD compares distributions over the same vocabulary, token for token.
  const std::string student_tok = tokenizer_file(!o.sft.tokenizer.empty() ? o.sft.tokenizer : o.sft.model);
  const std::string teacher_tok = tokenizer_file(o.teacher);
  if (slurp(student_tok) != slurp(teacher_tok)) {
    throw Error(ctx.stage_name + ".kd_weight: KD needs one tokenizer, but " + student_tok + " and " + teacher_tok +
                " differ (use kd_weight 0 for SFT on the traces only)");
  }
  KdTeacher teacher;
  // The teacher computes as the student does: bf16 under mixed precision, else fp32.
  DeviceChoice device = rank_device(o.sft.device);
  device.dtype = o.sft.memory.bf16_on(device.device) ? at::kBFloat16 : at::kFloat;
  teacher.model = policy::load_pretrained(o.teacher, device);
  // One tokenizer can sit on differently padded embeddings (e.g. 151936 vs 152064 rows).
  const int64_t teacher_vocab = teacher.model->config().vocab_size;
  if (!o.sft.model.empty()) {
    const int64_t student_vocab =
        policy::load_model_config((std::filesystem::path(o.sft.model) / "config.json").string()).vocab_size;
    if (student_vocab != teacher_vocab) {
      throw Error(ctx.stage_name + ".teacher: vocab_size " + std::to_string(teacher_vocab) +
                  " differs from the student's " + std::to_string(student_vocab) +
                  "; token-level KD compares distributions over the same vocabulary");
    }
  }
  teacher.weight = o.kd_weight;
  teacher.temperature = o.kd_temperature;
  StageResult r = run_sft(o.sft, ctx, &teacher);
  r.summary["type"] = "distill";
  r.summary["teacher"] = o.teacher;
  r.summary["kd_weight"] = o.kd_weight;
  return r;
}

namespace {
const StageRegistration kDistill({"distill", "a student fine-tuned on traces, optionally with token-level KD",
                                  /*writes_model=*/true, /*writes_data=*/false,
                                  stage_parser(parse_distill_options, distill_inputs, run_distill)});
}  // namespace

}  // namespace r1kit::pipelines
