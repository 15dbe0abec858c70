// run_recipe (see recipe.h).
#include "pipelines/recipe.h"

#include <filesystem>
#include <set>

#include "pipelines/distill.h"
#include "pipelines/eval.h"
#include "pipelines/grpo/trainer.h"
#include "pipelines/rejection_sample.h"
#include "pipelines/report.h"
#include "pipelines/sft.h"
#include "src/atomic_file.h"
#include "src/distributed.h"
#include "src/logging.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// The finished stage `from`'s output for option `key`: its dataset for "data" when it wrote
// one (rejection_sample), else its model directory.
Json stage_output(const std::string& from, const std::string& key, const Json& manifest, const std::string& where) {
  const Json* entry = manifest["stages"].contains(from) ? &manifest["stages"][from] : nullptr;
  if (entry == nullptr || (*entry)["state"] != "done") {
    throw Error(where + "." + key + ": stage '" + from + "' has not run before this one");
  }
  const std::string data = entry->value("data_path", ""), model = entry->value("model_dir", "");
  if (key == "data" && !data.empty()) return data;
  if (!model.empty()) return model;
  throw Error(where + "." + key + ": stage '" + from + "' has no " + (key == "data" ? "dataset or " : "") + "model");
}

// Replaces {"from": "<stage>"} values with that stage's output, and an eval stage's model
// names ("models": ["base", "zero", {"name": "x", "model": DIR}]) with {"name", "model"}.
void resolve_from(Json& options, const Json& manifest, const std::string& where) {
  for (auto it = options.begin(); it != options.end(); ++it) {
    if (!it->is_object() || !it->contains("from") || !(*it)["from"].is_string()) continue;
    *it = stage_output((*it)["from"].get<std::string>(), it.key(), manifest, where);
  }
  if (options.value("type", "") == "eval" && options.contains("models") && options["models"].is_array()) {
    for (Json& m : options["models"]) {
      if (m.is_string()) {
        m = Json{{"name", m}, {"model", stage_output(m.get<std::string>(), "models", manifest, where)}};
      } else if (m.is_object() && m.contains("model") && m["model"].is_object() && m["model"].contains("from")) {
        m["model"] = stage_output(m["model"]["from"].get<std::string>(), "models", manifest, where);
      }
    }
  }
}

// RUN/summary.json: per stage its type, seconds and (for stages with a model) parameter
// counts, plus "eval" from the latest eval stage that evaluated a model of that name.
Json make_summary(const Json& recipe, const Json& manifest) {
  Json stages = Json::object();
  for (const Json& st : recipe["stages"]) {
    const std::string name = st.value("name", "");
    if (!manifest["stages"].contains(name) || manifest["stages"][name]["state"] != "done") continue;
    const Json& sum = manifest["stages"][name]["summary"];
    Json e = {{"type", manifest["stages"][name]["type"]}, {"seconds", sum.value("seconds", 0.0)}};
    for (const char* k : {"params", "active_params", "steps", "kept", "samples", "final_loss"}) {
      if (sum.contains(k)) e[k] = sum[k];
    }
    stages[name] = e;
  }
  for (const Json& st : recipe["stages"]) {
    const std::string name = st.value("name", "");
    if (!stages.contains(name) || stages[name]["type"] != "eval") continue;
    for (const auto& [model, r] : manifest["stages"][name]["summary"]["models"].items()) {
      Json ev = {{"accuracy", r["accuracy"]}, {"mean_completion_tokens", r["mean_completion_tokens"]}, {"n", r["n"]},
                 {"by", name}};
      if (r.contains("maj_at_k")) {
        ev["maj_at_k"] = r["maj_at_k"];
        ev["k"] = r["k"];
      }
      if (!stages.contains(model)) stages[model] = {{"type", "model"}, {"params", r["params"]},
                                                    {"active_params", r["active_params"]}};
      stages[model]["eval"] = ev;
    }
  }
  return {{"stages", stages}};
}

}  // namespace

Json apply_overrides(Json recipe, const std::vector<std::string>& sets) {
  for (const std::string& s : sets) {
    const auto eq = s.find('='), dot = s.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
      throw Error("--set " + s + ": expected stage.key=value");
    }
    const std::string stage = s.substr(0, dot), key = s.substr(dot + 1, eq - dot - 1), text = s.substr(eq + 1);
    Json value;
    try {
      value = Json::parse(text);
    } catch (const Json::parse_error&) {
      value = text;  // bare words are strings: --set zero.loss_type=grpo
    }
    bool found = false;
    for (Json& st : recipe["stages"]) {
      if (st.value("name", "") == stage) {
        st[key] = value;
        found = true;
      }
    }
    if (!found) throw Error("--set " + s + ": the recipe has no stage named '" + stage + "'");
  }
  return recipe;
}

int run_recipe(const RunArgs& args) {
  Json recipe = apply_overrides(read_json_file(args.recipe), args.sets);
  if (!recipe.is_object() || !recipe.contains("stages") || !recipe["stages"].is_array()) {
    throw Error(args.recipe + ": expected {\"stages\": [...]}");
  }
  fs::create_directories(args.out);
  const std::string manifest_path = (fs::path(args.out) / "manifest.json").string();
  Json manifest = {{"stages", Json::object()}};
  if (args.resume && fs::exists(manifest_path)) manifest = read_json_file(manifest_path);
  // Data parallel (src/distributed.h): every rank runs every stage; rank 0 alone writes the
  // run's files and logs.
  const bool main_rank = distributed().is_main();
  if (main_rank) write_file_atomic((fs::path(args.out) / "recipe.json").string(), recipe.dump(2) + "\n");

  std::set<std::string> names;
  for (size_t i = 0; i < recipe["stages"].size(); ++i) {
    Json stage = recipe["stages"][i];
    const std::string where = args.recipe + ": stages[" + std::to_string(i) + "]";
    if (!stage.is_object() || !stage.contains("name") || !stage["name"].is_string()) {
      throw Error(where + ".name is required");
    }
    const std::string name = stage["name"];
    if (!names.insert(name).second) throw Error(where + ".name: '" + name + "' is used twice");
    const std::string type = stage.value("type", "");
    if (manifest["stages"].contains(name) && manifest["stages"][name]["state"] == "done") {
      log::info("stage {} ({}): done in an earlier run, skipped", name, type);
      continue;
    }
    resolve_from(stage, manifest, where);
    StageContext ctx;
    ctx.run_dir = args.out;
    ctx.stage_name = name;
    ctx.resume = args.resume;
    manifest["stages"][name] = {{"type", type}, {"state", "running"}};
    if (main_rank) write_file_atomic(manifest_path, manifest.dump(2) + "\n");
    if (main_rank) log::info("stage {} ({})", name, type);
    StageResult result;
    if (type == "grpo") {
      result = grpo::run_grpo(grpo::parse_grpo_options(stage, where), ctx);
    } else if (type == "sft") {
      result = run_sft(parse_sft_options(stage, where), ctx);
    } else if (type == "rejection_sample") {
      result = run_rejection_sample(parse_rejection_sample_options(stage, where), ctx);
    } else if (type == "distill") {
      result = run_distill(parse_distill_options(stage, where), ctx);
    } else if (type == "eval") {
      result = run_eval(parse_eval_options(stage, where), ctx);
    } else {
      throw Error(where + ".type: '" + type + "' is not a stage type (known: sft, grpo, rejection_sample, distill, eval)");
    }
    manifest["stages"][name] = {{"type", type}, {"state", "done"}, {"model_dir", result.model_dir},
                                {"data_path", result.data_path}, {"summary", result.summary}};
    if (!main_rank) continue;
    write_file_atomic(manifest_path, manifest.dump(2) + "\n");
    write_file_atomic((fs::path(args.out) / "summary.json").string(), make_summary(recipe, manifest).dump(2) + "\n");
  }
  if (!main_rank) return 0;
  write_report(args.out);
  const std::string table = format_run_eval_table(args.out);
  log::info("run complete: {} (report: {})\n{}", args.out, (fs::path(args.out) / "report.html").string(), table);
  return 0;
}

}  // namespace r1kit::pipelines
