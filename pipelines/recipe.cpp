// run_recipe (see recipe.h).
#include "pipelines/recipe.h"

#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "pipelines/report.h"
#include "pipelines/stage.h"
#include "policy/lora.h"
#include "src/atomic_file.h"
#include "src/distributed.h"
#include "src/logging.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// A stage of the recipe, parsed and checked, ready to run.
struct PlannedStage {
  std::string name;
  const StageType* type = nullptr;
  std::unique_ptr<Stage> stage;
};

// What the recipe's earlier stages will have written when a stage runs.
struct Planned {
  std::map<std::string, const StageType*> stages;  // by name, in recipe order so far
  std::set<std::string> outputs;                   // their model directories and datasets
};

// The output `{"from": name}` names under option `key`: the dataset of a stage that writes
// one for "data", else the model directory of a stage that writes a model. Known before any
// stage runs (stage.h: outputs are fixed by the run directory and the stage's name).
std::string planned_output(const Json& ref, const std::string& key, const Planned& planned, const std::string& run_dir,
                           const std::string& where) {
  if (!ref.is_string()) throw Error(where + key + ": \"from\" must name an earlier stage, got " + ref.dump());
  const std::string from = ref.get<std::string>();
  const auto it = planned.stages.find(from);
  if (it == planned.stages.end()) {
    throw Error(where + key + ": {\"from\": \"" + from + "\"} names no earlier stage of the recipe");
  }
  const StageType& type = *it->second;
  if (key == "data") {
    if (!type.writes_data) {
      throw Error(where + key + ": stage '" + from + "' (" + type.name + ") writes no dataset");
    }
    return stage_data_path(run_dir, from);
  }
  if (!type.writes_model) throw Error(where + key + ": stage '" + from + "' (" + type.name + ") writes no model");
  return stage_model_dir(run_dir, from);
}

// Replaces {"from": "<stage>"} values with that stage's output, and an eval stage's model
// names ("models": ["base", "zero", {"name": "x", "model": DIR}]) with {"name", "model"}.
void resolve_from(Json& options, const Planned& planned, const std::string& run_dir, const std::string& where) {
  for (auto it = options.begin(); it != options.end(); ++it) {
    if (!it->is_object() || !it->contains("from")) continue;
    if (it->size() != 1) throw Error(where + it.key() + ": a {\"from\": stage} reference has no other keys");
    *it = planned_output((*it)["from"], it.key(), planned, run_dir, where);
  }
  if (options.value("type", "") != "eval" || !options.contains("models") || !options["models"].is_array()) return;
  for (size_t i = 0; i < options["models"].size(); ++i) {
    Json& m = options["models"][i];
    const std::string key = "models[" + std::to_string(i) + "]";
    if (m.is_string()) {
      m = Json{{"name", m}, {"model", planned_output(m, key, planned, run_dir, where)}};
    } else if (m.is_object() && m.contains("model") && m["model"].is_object() && m["model"].contains("from")) {
      m["model"] = planned_output(m["model"]["from"], key, planned, run_dir, where);
    }
  }
}

// An input that is neither an earlier stage's output nor on disk is an error naming its key.
void check_input(const StageInput& in, const Planned& planned, const std::string& where) {
  namespace fs = std::filesystem;
  if (planned.outputs.count(in.path)) return;
  std::error_code ec;
  const std::string at = where + in.key + ": " + in.path;
  switch (in.kind) {
    case StageInput::Kind::kFile:
      if (!fs::is_regular_file(in.path, ec)) throw Error(at + " does not exist (or is not a file)");
      break;
    case StageInput::Kind::kModelDir:
      if (!fs::is_directory(in.path, ec)) throw Error(at + " is not a directory");
      if (fs::exists(fs::path(in.path) / "adapter_config.json", ec) &&
          !fs::exists(fs::path(in.path) / "config.json", ec)) {
        // A PEFT adapter directory: its base must be a model.
        const std::string base = policy::peft_base_model(in.path);
        if (!fs::exists(fs::path(base) / "config.json", ec)) {
          throw Error(at + " is a LoRA adapter whose base " + base + " has no config.json (not a model)");
        }
        break;
      }
      if (!fs::exists(fs::path(in.path) / "config.json", ec)) {
        throw Error(at + " has no config.json (not a model, nor a PEFT adapter directory)");
      }
      break;
    case StageInput::Kind::kTokenizer:
      if (!fs::is_regular_file(in.path, ec) && !fs::is_regular_file(fs::path(in.path) / "tokenizer.json", ec)) {
        throw Error(at + " is neither a tokenizer.json nor a directory holding one");
      }
      break;
  }
}

// Parses and checks EVERY stage before any runs: names, types, options, rewards, {"from"}
// references and input paths. The first problem is an r1kit::Error naming file, stage, key.
std::vector<PlannedStage> plan_recipe(const Json& recipe, const std::string& file, const std::string& run_dir) {
  if (!recipe.is_object() || !recipe.contains("stages") || !recipe["stages"].is_array()) {
    throw Error(file + ": expected {\"stages\": [...]}");
  }
  for (auto it = recipe.begin(); it != recipe.end(); ++it) {
    if (it.key() != "stages" && it.key() != "about") {
      throw Error(file + ": " + it.key() + ": unknown key (a recipe has \"stages\" and an optional \"about\")");
    }
  }
  if (recipe["stages"].empty()) throw Error(file + ": stages is empty (nothing to run)");
  std::vector<PlannedStage> plan;
  Planned planned;
  for (size_t i = 0; i < recipe["stages"].size(); ++i) {
    Json options = recipe["stages"][i];
    const std::string at = file + ": stages[" + std::to_string(i) + "]";
    if (!options.is_object() || !options.contains("name") || !options["name"].is_string()) {
      throw Error(at + ".name is required");
    }
    const std::string name = options["name"];
    if (planned.stages.count(name)) throw Error(at + ".name: '" + name + "' is used twice");
    const std::string where = file + ": stage '" + name + "': ";
    if (!options.contains("type") || !options["type"].is_string()) {
      throw Error(where + "type is required (one of " + stage_type_names() + ")");
    }
    const StageType* type = find_stage_type(options["type"]);
    if (type == nullptr) {
      throw Error(where + "type: '" + options["type"].get<std::string>() +
                  "' is not a stage type (known: " + stage_type_names() + ")");
    }
    resolve_from(options, planned, run_dir, where);
    PlannedStage p{name, type, nullptr};
    try {
      p.stage = type->parse(options, StageSetting{where, distributed().world_size()});
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {  // a library's exception: still name the stage
      throw Error(where + e.what());
    }
    for (const StageInput& in : p.stage->inputs()) check_input(in, planned, where);
    planned.stages[name] = type;
    if (type->writes_model) planned.outputs.insert(stage_model_dir(run_dir, name));
    if (type->writes_data) planned.outputs.insert(stage_data_path(run_dir, name));
    plan.push_back(std::move(p));
  }
  return plan;
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
      Json ev = {{"accuracy", r["accuracy"]},
                 {"mean_completion_tokens", r["mean_completion_tokens"]},
                 {"n", r["n"]},
                 {"by", name}};
      if (r.contains("maj_at_k")) {
        ev["maj_at_k"] = r["maj_at_k"];
        ev["k"] = r["k"];
      }
      for (const auto& [key, value] : r.items()) {  // completion_stats.h's, when the eval logged them
        if (key == "reflection_share" || key.starts_with("by_")) ev[key] = value;
      }
      if (!stages.contains(model))
        stages[model] = {{"type", "model"}, {"params", r["params"]}, {"active_params", r["active_params"]}};
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
    } catch (const Json::exception&) {  // parse errors and numbers out of range (1e999)
      value = text;                     // bare words are strings: --set zero.loss_type=grpo
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

void validate_recipe(const RunArgs& args) {
  plan_recipe(apply_overrides(read_json_file(args.recipe), args.sets), args.recipe, args.out);
}

int run_recipe(const RunArgs& args) {
  const Json recipe = apply_overrides(read_json_file(args.recipe), args.sets);
  // Everything is checked before anything runs (and again on --resume).
  const std::vector<PlannedStage> plan = plan_recipe(recipe, args.recipe, args.out);
  if (args.check_only) {
    if (distributed().is_main())
      log::info("{}: {} stages, every option checked; nothing run", args.recipe, plan.size());
    return 0;
  }
  fs::create_directories(args.out);
  const std::string manifest_path = (fs::path(args.out) / "manifest.json").string();
  Json manifest = {{"stages", Json::object()}};
  if (args.resume && fs::exists(manifest_path)) manifest = read_json_file(manifest_path);
  // Data parallel (src/distributed.h): every rank runs every stage; rank 0 alone writes the
  // run's files and logs.
  const bool main_rank = distributed().is_main();
  if (main_rank) write_file_atomic((fs::path(args.out) / "recipe.json").string(), recipe.dump(2) + "\n");
  // A stage's entry in the manifest, written at once (rank 0).
  auto record = [&](const std::string& stage, Json entry) {
    manifest["stages"][stage] = std::move(entry);
    if (main_rank) write_file_atomic(manifest_path, dump_text(manifest, 2) + "\n");
  };

  for (const PlannedStage& p : plan) {
    const std::string& type = p.type->name;
    if (manifest["stages"].contains(p.name) && manifest["stages"][p.name]["state"] == "done") {
      log::info("stage {} ({}): done in an earlier run, skipped", p.name, type);
      continue;
    }
    record(p.name, {{"type", type}, {"state", "running"}});
    if (main_rank) log::info("stage {} ({})", p.name, type);
    StageResult result;
    try {
      result = p.stage->run(StageContext{args.out, p.name, args.resume});
    } catch (const std::exception& e) {
      // The manifest says so (--resume runs the stage again from its newest checkpoint).
      record(p.name, {{"type", type}, {"state", "failed"}, {"error", e.what()}});
      throw;
    }
    record(p.name, {{"type", type},
                    {"state", "done"},
                    {"model_dir", result.model_dir},
                    {"data_path", result.data_path},
                    {"summary", result.summary}});
    if (!main_rank) continue;
    write_file_atomic((fs::path(args.out) / "summary.json").string(),
                      dump_text(make_summary(recipe, manifest), 2) + "\n");
  }
  if (!main_rank) return 0;
  write_report(args.out);
  const std::string table = format_run_eval_table(args.out);
  log::info("run complete: {} (report: {})\n{}", args.out, (fs::path(args.out) / "report.html").string(), table);
  return 0;
}

}  // namespace r1kit::pipelines
