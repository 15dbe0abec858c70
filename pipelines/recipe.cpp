// run_recipe (see recipe.h).
#include "pipelines/recipe.h"

#include <filesystem>
#include <set>

#include "pipelines/grpo/trainer.h"
#include "pipelines/sft.h"
#include "src/atomic_file.h"
#include "src/logging.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

// Replaces {"from": "<stage>"} values with that stage's model directory.
void resolve_from(Json& options, const Json& manifest, const std::string& where) {
  for (auto it = options.begin(); it != options.end(); ++it) {
    if (!it->is_object() || !it->contains("from")) continue;
    const std::string from = (*it)["from"].get<std::string>();
    const Json* entry = manifest["stages"].contains(from) ? &manifest["stages"][from] : nullptr;
    if (entry == nullptr || (*entry)["state"] != "done") {
      throw Error(where + "." + it.key() + ": stage '" + from + "' has not run before this one");
    }
    *it = (*entry)["model_dir"];
  }
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
  write_file_atomic((fs::path(args.out) / "recipe.json").string(), recipe.dump(2) + "\n");

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
    write_file_atomic(manifest_path, manifest.dump(2) + "\n");
    log::info("stage {} ({})", name, type);
    StageResult result;
    if (type == "grpo") {
      result = grpo::run_grpo(grpo::parse_grpo_options(stage, where), ctx);
    } else if (type == "sft") {
      result = run_sft(parse_sft_options(stage, where), ctx);
    } else {
      throw Error(where + ".type: '" + type + "' is not a stage type (known: sft, grpo)");
    }
    manifest["stages"][name] = {{"type", type}, {"state", "done"}, {"model_dir", result.model_dir},
                                {"summary", result.summary}};
    write_file_atomic(manifest_path, manifest.dump(2) + "\n");
  }
  log::info("run complete: {}", args.out);
  return 0;
}

}  // namespace r1kit::pipelines
