// The run report on a hand-made run directory: report.html is one self-contained page (no
// URLs, no scripts), has one SVG per grpo chart whose raw polyline has one point per logged
// value, escapes completions ("<think>", "&"), shows the eval numbers and only the last
// step's samples; format_eval_table aligns its columns; missing files are notes, a malformed
// metrics line is an r1kit::Error naming FILE:LINE.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pipelines/report.h"
#include "src/config.h"
#include "src/error.h"
#include "tests/test_util.h"

namespace r1kit::pipelines {
namespace {

using testing::TempDir;  // tests/test_util.h

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

// The <svg>...</svg> elements of a page, in order.
std::vector<std::string> svgs(const std::string& html) {
  std::vector<std::string> out;
  for (size_t a = html.find("<svg"); a != std::string::npos; a = html.find("<svg", a + 1)) {
    out.push_back(html.substr(a, html.find("</svg>", a) - a));
  }
  return out;
}

// Number of "x,y" pairs in the polyline of class `cls` inside `svg`; -1 when there is none.
int polyline_points(const std::string& svg, const std::string& cls) {
  const std::string open = "<polyline class=\"" + cls + "\" points=\"";
  const size_t a = svg.find(open);
  if (a == std::string::npos) return -1;
  const size_t b = a + open.size();
  const std::string points = svg.substr(b, svg.find('"', b) - b);
  return points.empty() ? 0 : static_cast<int>(count(points, " ")) + 1;
}

// A run with stages sft -> grpo -> eval (the lead's summary.json layout), 5 grpo steps.
struct FakeRun {
  TempDir dir;
  FakeRun() {
    write_text(dir / "recipe.json", R"({"stages": [{"name": "base", "type": "sft"},
                                                   {"name": "zero", "type": "grpo"},
                                                   {"name": "final", "type": "eval"}]})");
    write_text(dir / "manifest.json", R"({"stages": {
        "base": {"type": "sft", "state": "done", "model_dir": "m/base", "summary": {}},
        "zero": {"type": "grpo", "state": "done", "model_dir": "m/zero", "summary": {}},
        "final": {"type": "eval", "state": "done", "summary": {}}}})");
    write_text(dir / "summary.json", R"({"stages": {
        "base": {"type": "sft", "params": 12345678, "active_params": 4567890, "seconds": 61.25,
                 "eval": {"accuracy": 0.25, "mean_completion_tokens": 80.75, "n": 200}},
        "zero": {"type": "grpo", "params": 12345678, "active_params": 4567890, "seconds": 1234.5,
                 "eval": {"accuracy": 0.625, "mean_completion_tokens": 57.25, "n": 200,
                          "maj_at_k": 0.71, "k": 8}},
        "final": {"type": "eval", "seconds": 9.5}}})");
    // Row 3 has accuracy null (a non-finite value): that chart has 4 points, the others 5.
    write_text(dir / "zero/metrics.jsonl",
               "{\"step\": 1, \"reward/mean\": 0.10, \"accuracy\": 0.05, "
               "\"completion/mean_length\": 40, \"kl\": 0}\n"
               "{\"step\": 2, \"reward/mean\": 0.20, \"accuracy\": 0.10, "
               "\"completion/mean_length\": 44, \"kl\": 0.001}\n"
               "\n"
               "{\"step\": 3, \"reward/mean\": 0.35, \"accuracy\": null, "
               "\"completion/mean_length\": 50, \"kl\": 0.002}\n"
               "{\"step\": 4, \"reward/mean\": 0.40, \"accuracy\": 0.30, "
               "\"completion/mean_length\": 52, \"kl\": 0.002}\n"
               "{\"step\": 5, \"reward/mean\": 0.55, \"accuracy\": 0.45, "
               "\"completion/mean_length\": 57, \"kl\": 0.003}\n");
    // The trainer's shared RUN/samples.jsonl: only stage "zero", step 5 belongs in the page.
    write_text(dir / "samples.jsonl",
               "{\"stage\": \"zero\", \"step\": 4, \"prompt\": \"old\", \"completion\": \"STEP4\", "
               "\"reward\": 0, \"why\": \"\"}\n"
               "{\"stage\": \"zero\", \"step\": 5, \"prompt\": \"2 & 3?\", \"completion\": "
               "\"<think>2 & 3</think> 5\", "
               "\"reward\": 1, \"why\": \"answer <ok>\"}\n"
               "{\"stage\": \"other\", \"step\": 9, \"prompt\": \"p\", \"completion\": "
               "\"OTHERSTAGE\", \"reward\": 0, \"why\": \"\"}\n");
    write_text(dir / "final/eval_samples.jsonl",
               "{\"model\": \"zero\", \"prompt\": \"1+1\", \"completion\": \"<answer>2</answer>\", "
               "\"answer\": \"2\", \"correct\": true}\n"
               "{\"model\": \"base\", \"prompt\": \"1+2\", \"completion\": \"R&D <b>4</b>\", "
               "\"answer\": \"3\", \"correct\": false}\n");
  }
};

TEST(Report, WritesOneSelfContainedPage) {
  FakeRun run;
  write_report(run.dir.path);
  const std::string html = read_text(run.dir / "report.html");
  ASSERT_FALSE(html.empty());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_EQ(count(html, "http://"), 0u);
  EXPECT_EQ(count(html, "https://"), 0u);
  EXPECT_EQ(count(html, "<script"), 0u);
  EXPECT_EQ(count(html, "<link"), 0u);
  EXPECT_EQ(count(html, "<img"), 0u);
  // Recipe order, not the JSON objects' alphabetical one.
  EXPECT_LT(html.find("<td>base</td>"), html.find("<td>zero</td>"));
  EXPECT_LT(html.find("<td>zero</td>"), html.find("<td>final</td>"));
}

TEST(Report, ChartsHaveOnePolylinePointPerLoggedValue) {
  FakeRun run;
  write_report(run.dir.path);
  const std::vector<std::string> charts = svgs(read_text(run.dir / "report.html"));
  ASSERT_EQ(charts.size(), 3u);  // reward, accuracy, length of the one grpo stage
  EXPECT_NE(charts[0].find("reward"), std::string::npos);
  EXPECT_EQ(polyline_points(charts[0], "raw"), 5);
  EXPECT_EQ(polyline_points(charts[1], "raw"), 4);  // step 3's accuracy is null: a gap
  EXPECT_EQ(polyline_points(charts[2], "raw"), 5);
  for (const std::string& svg : charts) {
    EXPECT_EQ(polyline_points(svg, "smooth"), polyline_points(svg, "raw"));  // one average per point
    EXPECT_NE(svg.find(">step</text>"), std::string::npos);                  // x-axis label
    EXPECT_GE(count(svg, "class=\"tick\""), 4u);                             // ticks on both axes
  }
  // The length axis spans 40..57: nice ticks at multiples of 5 from 40 to 60.
  EXPECT_NE(charts[2].find(">40</text>"), std::string::npos);
  EXPECT_NE(charts[2].find(">60</text>"), std::string::npos);
}

TEST(Report, EscapesSamplesAndShowsOnlyTheLastStep) {
  FakeRun run;
  write_report(run.dir.path);
  const std::string html = read_text(run.dir / "report.html");
  EXPECT_NE(html.find("&lt;think&gt;2 &amp; 3&lt;/think&gt; 5"), std::string::npos);
  EXPECT_EQ(html.find("<think>"), std::string::npos);
  EXPECT_EQ(html.find("2 & 3"), std::string::npos);
  EXPECT_NE(html.find("answer &lt;ok&gt;"), std::string::npos);  // the reward's "why" too
  EXPECT_EQ(html.find("STEP4"), std::string::npos);              // an earlier step
  EXPECT_EQ(html.find("OTHERSTAGE"), std::string::npos);         // another stage's row
  // eval_samples.jsonl: one block per model, escaped, with its verdict.
  EXPECT_NE(html.find("R&amp;D &lt;b&gt;4&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<b>4</b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;answer&gt;2&lt;/answer&gt;"), std::string::npos);
  EXPECT_NE(html.find(">correct</span>"), std::string::npos);
  EXPECT_NE(html.find(">wrong</span>"), std::string::npos);
}

TEST(Report, PageHasTheEvalAndSummaryNumbers) {
  FakeRun run;
  write_report(run.dir.path);
  const std::string html = read_text(run.dir / "report.html");
  // accuracy 0.625 -> 62.5 %, maj@8 0.71 -> 71.0, tokens 57.25 -> 57.2 ({:.1f}, round-half-even
  // on the binary value 57.25 exactly), params 12345678 -> 12.3M, active 4567890 -> 4.57M.
  for (const char* cell :
       {"<td class=\"num\">62.5</td>", "<td class=\"num\">25.0</td>", "<td class=\"num\">71.0 (k=8)</td>",
        "<td class=\"num\">57.2</td>", "<td class=\"num\">80.8</td>", "<td class=\"num\">200</td>",
        "<td class=\"num\">12.3M</td>", "<td class=\"num\">4.57M</td>", "<td class=\"num\">1234.5</td>",
        "<td class=\"num\">9.5</td>"}) {
    EXPECT_NE(html.find(cell), std::string::npos) << cell;
  }
  // The same rows as the terminal table: every stage with "eval", none without.
  const std::string eval_part = html.substr(html.find("<h2>Evaluation</h2>"));
  const std::string eval_table = eval_part.substr(0, eval_part.find("</table>"));
  EXPECT_EQ(count(eval_table, "<tr>"), 3u);  // header + base + zero
  EXPECT_EQ(eval_table.find("<td>final</td>"), std::string::npos);
}

// Where `cell` sits in `line`: [begin, end) byte offsets; fails the test when absent.
std::pair<size_t, size_t> span_of(const std::string& line, const std::string& cell) {
  const size_t a = line.find(cell);
  EXPECT_NE(a, std::string::npos) << "'" << cell << "' not in '" << line << "'";
  return {a, a + cell.size()};
}

TEST(Report, EvalTableAlignsColumns) {
  const Json summary = Json::parse(R"({"stages": {
      "zero-long-name": {"type": "grpo", "params": 12345678, "active_params": 4567890,
                         "eval": {"accuracy": 0.625, "mean_completion_tokens": 57.25, "n": 1000,
                                  "maj_at_k": 0.71, "k": 8}},
      "base": {"type": "sft", "params": 900,
               "eval": {"accuracy": 0.25, "mean_completion_tokens": 8, "n": 50}},
      "final": {"type": "eval", "seconds": 3}}})");
  const std::string table = format_eval_table(summary, {"base", "zero-long-name", "final"});
  std::vector<std::string> lines;
  std::istringstream in(table);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 3u) << table;                // header, base, zero-long-name; "final" has no eval
  EXPECT_EQ(lines[1].rfind("base ", 0), 0u) << table;  // recipe order
  EXPECT_EQ(lines[2].rfind("zero-long-name ", 0), 0u) << table;
  EXPECT_EQ(lines[0].size(), lines[1].size()) << table;  // right-aligned last column: one width
  EXPECT_EQ(lines[0].size(), lines[2].size()) << table;
  // Text columns start where their header starts; numbers end where their header ends.
  EXPECT_EQ(span_of(lines[1], "sft").first, span_of(lines[0], "type").first) << table;
  EXPECT_EQ(span_of(lines[2], "grpo").first, span_of(lines[0], "type").first) << table;
  EXPECT_EQ(span_of(lines[1], "900").second, span_of(lines[0], "params").second) << table;
  EXPECT_EQ(span_of(lines[2], "12.3M").second, span_of(lines[0], "params").second) << table;
  EXPECT_EQ(span_of(lines[1], "25.0").second, span_of(lines[0], "acc %").second) << table;
  EXPECT_EQ(span_of(lines[2], "62.5").second, span_of(lines[0], "acc %").second) << table;
  EXPECT_EQ(span_of(lines[2], "71.0 (k=8)").second, span_of(lines[0], "maj@k %").second) << table;
  EXPECT_EQ(span_of(lines[2], "57.2").second, span_of(lines[0], "tokens").second) << table;
  EXPECT_EQ(lines[1].substr(lines[1].size() - 3), " 50") << table;
  EXPECT_EQ(lines[2].substr(lines[2].size() - 5), " 1000") << table;
  // base has no active_params and no maj@k: dashes, not zeros.
  EXPECT_EQ(count(lines[1], " - "), 2u) << table;
}

// Runs that log completion_stats.h's numbers: a reflection column and a per-bucket table in
// the text, and in the page a reflection chart and one length line per bucket (numeric order).
TEST(Report, ReflectionAndDifficultyBucketsAppearWhenLogged) {
  const Json summary = Json::parse(R"({"stages": {
      "base": {"type": "sft", "eval": {"accuracy": 0.25, "mean_completion_tokens": 8, "n": 50,
               "reflection_share": 0.125,
               "by_difficulty": [{"value": "10", "completions": 10, "accuracy": 0.05, "mean_completion_tokens": 9}]}},
      "zero": {"type": "grpo", "eval": {"accuracy": 0.75, "mean_completion_tokens": 20, "n": 50,
               "reflection_share": 0.5,
               "by_difficulty": [{"value": "1", "completions": 10, "accuracy": 1, "mean_completion_tokens": 6.25},
                                 {"value": "10", "completions": 10, "accuracy": 0.5, "mean_completion_tokens": 31.5}]}}}})");
  const std::string table = format_eval_table(summary, {"base", "zero"});
  EXPECT_NE(table.find("reflect %"), std::string::npos) << table;
  EXPECT_NE(table.find("12.5"), std::string::npos) << table;
  EXPECT_NE(table.find("by bucket"), std::string::npos) << table;
  // Columns in numeric order although the first stage lists only bucket 10; its missing one is "-".
  EXPECT_LT(table.find("difficulty 1 "), table.find("difficulty 10")) << table;
  EXPECT_NE(table.find("6.2 (100%)"), std::string::npos) << table;
  EXPECT_NE(table.find("31.5 (50%)"), std::string::npos) << table;
  const size_t base_row = table.rfind("\nbase ");
  ASSERT_NE(base_row, std::string::npos) << table;
  const std::string base_line = table.substr(base_row + 1, table.find('\n', base_row + 1) - base_row - 1);
  EXPECT_NE(base_line.find(" - "), std::string::npos) << table;
  EXPECT_NE(base_line.find("9.0 (5%)"), std::string::npos) << table;

  TempDir dir;
  write_text(dir / "recipe.json", R"({"stages": [{"name": "zero", "type": "grpo"}]})");
  std::string metrics;
  for (int step = 1; step <= 4; ++step) {
    metrics += fmt::format(
        "{{\"step\": {0}, \"reward/mean\": 0.5, \"accuracy\": 0.5, \"completion/mean_length\": 20, "
        "\"completion/reflection_share\": 0.{0}, \"completion/mean_length/difficulty=10\": {1}, "
        "\"completion/mean_length/difficulty=2\": 10}}\n",
        step, 30 + step);
  }
  write_text(dir / "zero/metrics.jsonl", metrics);
  write_report(dir.path);
  const std::vector<std::string> charts = svgs(read_text(dir / "report.html"));
  ASSERT_EQ(charts.size(), 5u);  // reward, accuracy, length, reflection, length by difficulty
  EXPECT_NE(charts[3].find("share of completions that reflect"), std::string::npos);
  EXPECT_EQ(polyline_points(charts[3], "raw"), 4);
  EXPECT_NE(charts[4].find("completion length by difficulty"), std::string::npos);
  EXPECT_EQ(count(charts[4], "<polyline class=\"line\""), 2u);
  EXPECT_LT(charts[4].find(">difficulty=2<"), charts[4].find(">difficulty=10<"));  // numeric order
}

TEST(Report, EvalTableWithoutEvaluatedStagesSaysSo) {
  const Json summary = Json::parse(R"({"stages": {"base": {"type": "sft", "params": 10}}})");
  EXPECT_EQ(format_eval_table(summary), "no stage has been evaluated yet\n");
  EXPECT_THROW(format_eval_table(Json::parse("[1]")), Error);
}

TEST(Report, BadFieldTypeNamesTheKey) {
  const Json summary = Json::parse(R"({"stages": {"zero": {"eval": {"accuracy": "high"}}}})");
  try {
    format_eval_table(summary);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stages.zero.eval.accuracy"), std::string::npos) << e.what();
  }
}

TEST(Report, MissingFilesAreNotesNotErrors) {
  TempDir dir;
  write_text(dir / "manifest.json", R"({"stages": {"zero": {"type": "grpo", "state": "running"}}})");
  ASSERT_NO_THROW(write_report(dir.path));  // no recipe, summary, metrics or samples
  const std::string html = read_text(dir / "report.html");
  EXPECT_NE(html.find("metrics.jsonl: not found"), std::string::npos);
  EXPECT_NE(html.find("summary.json: not found"), std::string::npos);
  EXPECT_NE(html.find("recipe.json: not found"), std::string::npos);
  EXPECT_EQ(count(html, "<svg"), 0u);
  EXPECT_NE(format_run_eval_table(dir.path).find("not found"), std::string::npos);
  EXPECT_THROW(write_report(dir / "no-such-run"), Error);
  // A directory that is no run (issue 12, case 9): an error, and no report.html written there.
  TempDir other;
  EXPECT_THROW(write_report(other.path), Error);
  EXPECT_FALSE(std::filesystem::exists(other / "report.html"));
}

TEST(Report, OnePointAndEmptySeriesStillDraw) {
  TempDir dir;
  write_text(dir / "manifest.json", R"({"stages": {"zero": {"type": "grpo", "state": "running"}}})");
  // One step, no accuracy column at all (a recipe without a checker reward).
  write_text(dir / "zero/metrics.jsonl", "{\"step\": 1, \"reward/mean\": 0.5, \"completion/mean_length\": 12}\n");
  write_report(dir.path);
  const std::vector<std::string> charts = svgs(read_text(dir / "report.html"));
  ASSERT_EQ(charts.size(), 3u);
  EXPECT_EQ(polyline_points(charts[0], "raw"), 1);
  EXPECT_NE(charts[0].find("<circle"), std::string::npos);  // a lone point is drawn as a dot
  EXPECT_EQ(polyline_points(charts[1], "raw"), -1);
  EXPECT_NE(charts[1].find("no data"), std::string::npos);
  for (const std::string& svg : charts) {
    EXPECT_EQ(svg.find("nan"), std::string::npos) << svg;  // degenerate ranges are padded
    EXPECT_EQ(svg.find("inf"), std::string::npos) << svg;
  }
}

TEST(Report, MalformedMetricsLineNamesFileAndLine) {
  FakeRun run;
  write_text(run.dir / "zero/metrics.jsonl",
             "{\"step\": 1, \"reward/mean\": 0.1}\n"
             "{\"step\": 2, \"reward/mean\": }\n");
  try {
    write_report(run.dir.path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero/metrics.jsonl:2"), std::string::npos) << e.what();
  }
  // A row without its step, and a value that is not a number, name their line too.
  write_text(run.dir / "zero/metrics.jsonl", "{\"step\": 1}\n{\"reward/mean\": 0.1}\n");
  EXPECT_THROW(
      {
        try {
          write_report(run.dir.path);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("metrics.jsonl:2"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  write_text(run.dir / "zero/metrics.jsonl", "{\"step\": 1, \"accuracy\": \"high\"}\n");
  EXPECT_THROW(write_report(run.dir.path), Error);
  // A malformed summary.json names the file.
  write_text(run.dir / "zero/metrics.jsonl", "{\"step\": 1}\n");
  write_text(run.dir / "summary.json", "{\"stages\": ");
  try {
    write_report(run.dir.path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("summary.json:1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit::pipelines
