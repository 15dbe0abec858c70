// `r1kit reward` (see reward_command.h).
#include "src/cli/reward_command.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "rewards/scorer.h"
#include "src/error.h"
#include "src/jsonl.h"
#include "src/thread_pool.h"

namespace r1kit::cli {
namespace {

std::string text_of(const Json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array() && !v.empty() && v.back().is_object() && v.back().contains("content") &&
      v.back()["content"].is_string()) {
    return v.back()["content"].get<std::string>();
  }
  throw Error(fmt::format("{}: must be a string or a chat list of {{\"role\", \"content\"}}", where));
}

std::vector<Json> read_rows(const std::string& path) {
  if (!path.empty() && path != "-") return read_jsonl(path);
  std::vector<Json> rows;
  std::string line;
  size_t n = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json row = parse_json_text(line, fmt::format("<stdin>:{}", n));
    if (!row.is_object()) throw Error(fmt::format("<stdin>:{}: a row must be a JSON object", n));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

int run_reward_command(const RewardCommandArgs& args) {
  try {
    rewards::Scorer scorer = rewards::Scorer::from_spec(args.reward);
    std::vector<Json> rows = read_rows(args.data);
    std::string src = args.data.empty() ? "<stdin>" : args.data;
    std::vector<std::string> prompts(rows.size()), completions(rows.size());
    std::vector<rewards::RewardInput> inputs(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      std::string where = fmt::format("{}: row {}", src, i + 1);
      if (!rows[i].contains("completion")) throw Error(fmt::format("{}: no \"completion\" field", where));
      completions[i] = text_of(rows[i]["completion"], where + ".completion");
      if (rows[i].contains("prompt") && !rows[i]["prompt"].is_null())
        prompts[i] = text_of(rows[i]["prompt"], where + ".prompt");
      inputs[i].prompt = prompts[i];
      inputs[i].completion = completions[i];
      inputs[i].fields = &rows[i];
    }
    ThreadPool pool(args.threads);
    std::vector<rewards::RewardResult> results = scorer.score_batch(inputs, &pool);
    std::vector<Json> out(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      out[i] = rows[i];
      out[i]["reward"] = results[i].value ? Json(*results[i].value) : Json(nullptr);
      out[i]["why"] = results[i].why;
      out[i]["reward_parts"] = results[i].parts;
    }
    if (args.out.empty() || args.out == "-") {
      for (const auto& r : out) std::cout << dump_text(r) << "\n";
      std::cout.flush();
    } else {
      write_jsonl_atomic(args.out, out);
    }
    // Failed rows (timeouts, errors) score 0 without judging anything: say so, and fail past
    // the threshold.
    rewards::RewardTally tally;
    scorer.tally(results, tally);
    for (size_t k = 0; k < tally.timeouts.size(); ++k) {
      if (tally.timeouts[k] + tally.errors[k] > 0) {
        std::fprintf(stderr, "r1kit reward: reward '%s' failed on %g of %zu rows (%g timeouts, %g errors; scored 0)\n",
                     scorer.entries()[k].name.c_str(), tally.timeouts[k] + tally.errors[k], rows.size(),
                     tally.timeouts[k], tally.errors[k]);
      }
    }
    const std::string too_many =
        scorer.too_many_failures(tally, static_cast<double>(rows.size()), args.max_failure_fraction);
    if (!too_many.empty()) throw Error(too_many + "; see --max-failure-fraction");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "r1kit reward: %s\n", e.what());
    return 1;
  }
}

CLI::App* add_reward_subcommand(CLI::App& app, RewardCommandArgs& args) {
  CLI::App* cmd = app.add_subcommand("reward", "score completions offline (JSONL in, JSONL out)");
  cmd->add_option("--reward,-r", args.reward,
                  "reward spec: a name (math), name:weight list (math:1,format:0.5), a JSON list or a .json file")
      ->capture_default_str();
  cmd->add_option("--data,-d", args.data, "input JSONL (default: stdin)");
  cmd->add_option("--out,-o", args.out, "output JSONL (default: stdout)");
  cmd->add_option("--threads,-j", args.threads, "scoring threads (0 = all cores)");
  cmd->add_option("--max-failure-fraction", args.max_failure_fraction,
                  "exit non-zero when a reward failed (timed out or errored) on more than this share of the rows")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  return cmd;
}

}  // namespace r1kit::cli
