// The stage plug-in point: a recipe's stage types (sft, grpo, rejection_sample, distill,
// eval, ...) are StageTypes, each registered by one line beside its implementation (as
// policy/architecture.h does for models). A type's parse function turns the stage's JSON
// into a runnable Stage and rejects any bad key, type, range, enum or reward naming the
// file, stage and key; the recipe runner (recipe.h) parses EVERY stage, resolves every
// {"from": stage} reference and checks every input path before the first stage runs, so a
// mistake in the last stage costs no training. Not here: the stages' options (their own
// headers) and the run directory's bookkeeping (recipe.cpp).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/config.h"

namespace r1kit::pipelines {

// Where a stage writes and how it was started (shared by every stage type).
struct StageContext {
  std::string run_dir;     // the recipe's output directory
  std::string stage_name;  // names the stage's folders (checkpoints/<name>, models/<name>)
  bool resume = false;     // continue from the newest complete checkpoint of this stage
};

struct StageResult {
  std::string model_dir;  // the trained model, an HF directory ("" for stages without one)
  std::string data_path;  // a written dataset (rejection_sample), "" otherwise
  Json summary = Json::object();
};

// Where a stage's outputs go: fixed by the run directory and the stage's name, so a later
// stage's {"from": name} resolves before anything runs.
std::string stage_model_dir(const std::string& run_dir, const std::string& stage);  // RUN/models/<stage>
std::string stage_data_path(const std::string& run_dir, const std::string& stage);  // RUN/data/<stage>.jsonl

// A file or directory a stage reads, which must exist (or be an earlier stage's output)
// before the recipe starts.
struct StageInput {
  enum class Kind { kFile, kModelDir, kTokenizer };  // kTokenizer: tokenizer.json or a dir with one
  std::string key;                                   // the option that named it ("data", "teacher", "models[1]")
  std::string path;
  Kind kind = Kind::kFile;
};

// What the parse step may check a stage's options against.
struct StageSetting {
  std::string where;   // error prefix naming file and stage: "recipe.json: stage 'zero': "
  int world_size = 1;  // ranks the stage will run on (batch divisibility)
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::vector<StageInput> inputs() const = 0;
  virtual StageResult run(const StageContext& context) const = 0;
};

struct StageType {
  std::string name;           // the recipe's "type"
  std::string help;           // one line for `r1kit run --help`
  bool writes_model = false;  // {"from": stage} resolves to its model directory
  bool writes_data = false;   // {"from": stage} under "data" resolves to its dataset
  // The stage's options (its JSON object, with {"from"} references already resolved).
  std::function<std::unique_ptr<Stage>(const Json& options, const StageSetting& setting)> parse;
};

// Registry. register_stage_type refuses duplicates; find_stage_type's error lists the known
// names.
void register_stage_type(StageType type);
const StageType* find_stage_type(const std::string& name);
std::vector<const StageType*> stage_types();  // sorted by name
std::string stage_type_names();               // "distill, eval, grpo, ..." for errors and help

// A Stage that holds a stage's parsed Options and runs a free function on them: what most
// stage types are. `inputs` lists the paths the options name.
template <class Options>
class StageOf final : public Stage {
 public:
  using InputsFn = std::vector<StageInput> (*)(const Options&);
  using RunFn = StageResult (*)(const Options&, const StageContext&);
  StageOf(Options options, InputsFn inputs, RunFn run) : options_(std::move(options)), inputs_(inputs), run_(run) {}
  std::vector<StageInput> inputs() const override { return inputs_(options_); }
  StageResult run(const StageContext& context) const override { return run_(options_, context); }

 private:
  Options options_;
  InputsFn inputs_;
  RunFn run_;
};

// One-line registration at namespace scope in the stage's .cpp file:
//   const StageRegistration kSft({"sft", "help", /*writes_model=*/true, /*writes_data=*/false,
//                                 stage_parser(parse_sft_options, sft_inputs, run_sft)});
struct StageRegistration {
  explicit StageRegistration(StageType type) { register_stage_type(std::move(type)); }
};

template <class Options>
auto stage_parser(Options (*parse)(const Json&, const StageSetting&), typename StageOf<Options>::InputsFn inputs,
                  typename StageOf<Options>::RunFn run) {
  return [=](const Json& options, const StageSetting& setting) -> std::unique_ptr<Stage> {
    return std::make_unique<StageOf<Options>>(parse(options, setting), inputs, run);
  };
}

}  // namespace r1kit::pipelines
