// The run report: what a finished (or half-finished) run directory says, for people.
// format_eval_table() is the terminal table of every evaluated stage (RUN/summary.json);
// write_report() writes RUN/report.html, one self-contained page (inline CSS and SVG, no
// scripts, fonts or images from anywhere): the recipe's stages, the numbers of summary.json,
// per grpo stage line charts of reward, accuracy and completion length vs step with a moving
// average over the raw series (and, when the stage logged them, the reflection share and the
// length per difficulty bucket, completion_stats.h), the eval tables, and a few HTML-escaped
// sample completions.
// Does not: read TensorBoard events, or compare runs. A missing file is a note in the page,
// never an error; malformed JSON is an r1kit::Error naming the file (and line for JSONL).
// Torch-free on purpose: `r1kit report` must work on a machine that only has the run folder.
#pragma once
#include <string>
#include <vector>

#include "src/config.h"

namespace r1kit::pipelines {

// One row per stage of summary.json ({"stages": {NAME: {"type", "params", "active_params",
// "eval": {"accuracy", "mean_completion_tokens", "n", "maj_at_k"?, "k"?}}}}) that has "eval":
// stage, type, params, active params, accuracy %, maj@k (a column only when some stage has
// it), mean completion tokens, n. Text columns are left-aligned and numbers right-aligned, so
// every line has the same width; "reflect %" is a column when some stage has a
// reflection_share. When the evals have difficulty buckets ("by_<field>"), a second table
// follows: per stage, per bucket, "mean tokens (accuracy %)". Stages come in `stage_order`
// first (the recipe's order; JSON objects forget theirs), then the rest by name. No
// evaluated stage: a one-line note.
// A field of the wrong type throws r1kit::Error naming "summary.json: stages.NAME.eval.KEY".
std::string format_eval_table(const Json& summary, const std::vector<std::string>& stage_order = {});

// format_eval_table of RUN/summary.json in the order of RUN/recipe.json; a missing
// summary.json is a one-line note, a malformed one an r1kit::Error naming the file.
std::string format_run_eval_table(const std::string& run_dir);

// Reads RUN/{recipe,manifest,summary}.json, RUN/<stage>/metrics.jsonl, the grpo samples
// (RUN/<stage>/samples.jsonl, else the rows of RUN/samples.jsonl naming the stage) and
// RUN/<eval stage>/eval_samples.jsonl, and writes RUN/report.html atomically. Throws
// r1kit::Error when `run_dir` is not a directory or a file that exists is malformed.
void write_report(const std::string& run_dir);

}  // namespace r1kit::pipelines
