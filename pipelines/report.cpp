// RUN/report.html and the eval table: see report.h.
// The page is assembled from one small function per section. Charts are hand-written SVG
// (axes, "nice" ticks at 1/2/5 x 10^k, a raw polyline and a centred moving average over it)
// so the file opens offline in any browser and diffs as text. Every string that came from a
// file (stage names, prompts, completions) goes through html_escape: completions hold
// "<think>" and "&" routinely, and a page that rendered them as markup would hide them.
#include "pipelines/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "src/atomic_file.h"
#include "src/dataset_rows.h"
#include "src/error.h"
#include "src/jsonl.h"

namespace r1kit::pipelines {
namespace {

namespace fs = std::filesystem;

constexpr size_t kSamplesPerStage = 4;    // grpo completions shown per stage (its last step)
constexpr size_t kSamplesPerModel = 3;    // eval completions shown per evaluated model
constexpr size_t kMaxSampleBytes = 2000;  // longer texts are cut so the page stays small

// The grpo metrics charted, as {metrics.jsonl key, chart title, charted when absent}.
struct ChartedMetric {
  std::string key, title;
  bool always;  // else only when the run logged it (an option turns it on)
};
const std::vector<ChartedMetric> kChartedMetrics = {
    {"reward/mean", "reward (mean)", true},
    {"accuracy", "accuracy", true},
    {"completion/mean_length", "completion length (mean tokens)", true},
    {"completion/reflection_share", "share of completions that reflect", false},
};
// Per-bucket lengths (completion_stats.h), charted together: "<prefix><field>=<value>".
constexpr std::string_view kBucketLengthPrefix = "completion/mean_length/";
// Line colours when one chart holds several (Okabe-Ito: told apart with colour-blindness too).
constexpr const char* kPalette[] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7",
                                    "#56b4e9", "#d55e00", "#000000", "#f0e442"};

// ---------------------------------------------------------------------------------------
// Text

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// At most kMaxSampleBytes, cut on a UTF-8 character boundary, with a marker when cut.
std::string clip_text(const std::string& s) {
  if (s.size() <= kMaxSampleBytes) return s;
  size_t cut = kMaxSampleBytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + fmt::format(" [... {} more bytes]", s.size() - cut);
}

// A parameter count for people: 812, 12.3K, 1.23M, 4.56B.
std::string human_count(double n) {
  const double a = std::fabs(n);
  if (a < 1e3) return fmt::format("{:.0f}", n);
  if (a < 1e6) return fmt::format("{:.3g}K", n / 1e3);
  if (a < 1e9) return fmt::format("{:.3g}M", n / 1e6);
  return fmt::format("{:.3g}B", n / 1e9);
}

// A row's string field as text: strings as they are, other JSON dumped, absent as "".
std::string text_field(const Json& row, const char* key) {
  const auto it = row.find(key);
  return it == row.end() || it->is_null() ? "" : field_text(*it);
}

// ---------------------------------------------------------------------------------------
// JSON access with errors that name the place

// obj[key] when it is present and not null; nullptr otherwise (also when obj is no object).
const Json* field(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> number_field(const Json& obj, const char* key, const std::string& where) {
  const Json* v = field(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) throw Error(fmt::format("{}.{}: expected a number, got {}", where, key, v->type_name()));
  return v->get<double>();
}

// file's {"stages": {...}} object (manifest.json, summary.json).
const Json& stages_object(const Json& doc, const std::string& file) {
  const Json* stages = field(doc, "stages");
  if (stages == nullptr || !stages->is_object()) throw Error(file + ": expected {\"stages\": {NAME: {...}}}");
  return *stages;
}

std::optional<Json> read_json_if_exists(const std::string& path) {
  if (!fs::exists(path)) return std::nullopt;
  return read_json_file(path);
}

// `order` first (those present in `stages`), then the other keys of `stages` by name.
std::vector<std::string> ordered_names(const Json& stages, const std::vector<std::string>& order) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& name : order) {
    if (stages.contains(name) && seen.insert(name).second) out.push_back(name);
  }
  for (auto it = stages.begin(); it != stages.end(); ++it) {
    if (seen.insert(it.key()).second) out.push_back(it.key());
  }
  return out;
}

// The stage names of recipe.json's "stages" array, in order (empty without a recipe).
std::vector<std::string> recipe_order(const std::optional<Json>& recipe) {
  std::vector<std::string> out;
  const Json* stages = recipe ? field(*recipe, "stages") : nullptr;
  if (stages == nullptr || !stages->is_array()) return out;
  for (const Json& s : *stages) {
    if (const Json* name = field(s, "name"); name != nullptr && name->is_string()) out.push_back(*name);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Tables: one cell grid, drawn either as fixed-width text or as HTML

struct Table {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // per column: right-aligned
  std::vector<std::vector<std::string>> rows;
};

std::string render_text_table(const Table& t) {
  std::vector<size_t> width(t.header.size());
  for (size_t c = 0; c < width.size(); ++c) {
    width[c] = t.header[c].size();
    for (const auto& row : t.rows) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) out += "  ";
      const std::string pad(width[c] - cells[c].size(), ' ');
      const bool last = c + 1 == cells.size();
      // No trailing blanks: a left-aligned last column is not padded.
      out += t.numeric[c] ? pad + cells[c] : (last ? cells[c] : cells[c] + pad);
    }
    return out + "\n";
  };
  std::string out = line(t.header);
  for (const auto& row : t.rows) out += line(row);
  return out;
}

std::string render_html_table(const Table& t) {
  auto cell = [&](const char* tag, size_t c, const std::string& text) {
    return fmt::format("<{0}{1}>{2}</{0}>", tag, t.numeric[c] ? " class=\"num\"" : "", html_escape(text));
  };
  std::string out = "<table>\n<tr>";
  for (size_t c = 0; c < t.header.size(); ++c) out += cell("th", c, t.header[c]);
  out += "</tr>\n";
  for (const auto& row : t.rows) {
    out += "<tr>";
    for (size_t c = 0; c < row.size(); ++c) out += cell("td", c, row[c]);
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

// The eval table of summary.json (see format_eval_table in report.h); `file` names it in errors.
Table eval_table(const Json& summary, const std::vector<std::string>& order, const std::string& file) {
  const Json& stages = stages_object(summary, file);
  const std::vector<std::string> names = ordered_names(stages, order);
  bool any_maj = false, any_reflection = false;
  for (const std::string& name : names) {
    const Json* ev = field(stages[name], "eval");
    any_maj |= ev && field(*ev, "maj_at_k");
    any_reflection |= ev && field(*ev, "reflection_share");
  }

  Table t;
  t.header = {"stage", "type", "params", "active", "acc %"};
  if (any_maj) t.header.push_back("maj@k %");
  t.header.push_back("tokens");
  if (any_reflection) t.header.push_back("reflect %");
  t.header.push_back("n");
  t.numeric = {false, false};
  t.numeric.resize(t.header.size(), true);

  auto or_dash = [](std::optional<double> v, auto format) { return v ? format(*v) : std::string("-"); };
  auto percent = [](double v) { return fmt::format("{:.1f}", 100 * v); };
  for (const std::string& name : names) {
    const Json& stage = stages[name];
    const Json* ev = field(stage, "eval");
    if (ev == nullptr) continue;
    const std::string where = file + ": stages." + name;
    const std::string where_eval = where + ".eval";
    std::vector<std::string> row = {name, text_field(stage, "type"),
                                    or_dash(number_field(stage, "params", where), human_count),
                                    or_dash(number_field(stage, "active_params", where), human_count),
                                    or_dash(number_field(*ev, "accuracy", where_eval), percent)};
    if (any_maj) {
      const auto maj = number_field(*ev, "maj_at_k", where_eval);
      const auto k = number_field(*ev, "k", where_eval);
      row.push_back(!maj ? "-" : k ? fmt::format("{} (k={:.0f})", percent(*maj), *k) : percent(*maj));
    }
    row.push_back(or_dash(number_field(*ev, "mean_completion_tokens", where_eval),
                          [](double v) { return fmt::format("{:.1f}", v); }));
    if (any_reflection) row.push_back(or_dash(number_field(*ev, "reflection_share", where_eval), percent));
    row.push_back(or_dash(number_field(*ev, "n", where_eval), [](double v) { return fmt::format("{:.0f}", v); }));
    t.rows.push_back(std::move(row));
  }
  return t;
}

// Bucket values in their natural order: finite numbers by value first, then any other text
// by text (a strict weak order even when the two kinds mix).
bool bucket_value_less(const std::string& a, const std::string& b) {
  auto number = [](const std::string& v) -> std::optional<double> {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    return !v.empty() && *end == '\0' && std::isfinite(x) ? std::optional<double>(x) : std::nullopt;
  };
  const auto x = number(a), y = number(b);
  if (x.has_value() != y.has_value()) return x.has_value();
  if (x && *x != *y) return *x < *y;
  return a < b;
}

// The eval's per-bucket numbers ("by_<field>": [{value, n, accuracy, mean_completion_tokens}],
// completion_stats.h): a row per evaluated stage, a column per bucket holding "tokens (acc %)".
// No stage has buckets: an empty table.
Table bucket_table(const Json& summary, const std::vector<std::string>& order, const std::string& file) {
  const Json& stages = stages_object(summary, file);
  std::string by;                                                                 // "by_<field>": the first one found
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> cells;  // per stage: value -> cell
  std::vector<std::string> values;
  for (const std::string& name : ordered_names(stages, order)) {
    const Json* ev = field(stages[name], "eval");
    if (ev == nullptr || !ev->is_object()) continue;
    for (auto it = ev->begin(); it != ev->end() && by.empty(); ++it) {
      if (it.key().starts_with("by_") && it->is_array()) by = it.key();
    }
    const Json* buckets = by.empty() ? nullptr : field(*ev, by.c_str());
    if (buckets == nullptr) continue;
    const std::string where = fmt::format("{}: stages.{}.eval.{}", file, name, by);
    std::map<std::string, std::string> row;
    for (const Json& b : *buckets) {
      const std::string value = text_field(b, "value");
      if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
      const auto tokens = number_field(b, "mean_completion_tokens", where);
      const auto accuracy = number_field(b, "accuracy", where);
      row[value] = tokens && accuracy ? fmt::format("{:.1f} ({:.0f}%)", *tokens, 100 * *accuracy) : "-";
    }
    cells.emplace_back(name, std::move(row));
  }
  Table t;
  if (cells.empty()) return t;
  std::sort(values.begin(), values.end(), bucket_value_less);
  t.header = {"stage"};
  for (const std::string& v : values) t.header.push_back(by.substr(3) + " " + v);
  t.numeric.assign(t.header.size(), true);
  t.numeric[0] = false;
  for (const auto& [name, row] : cells) {
    std::vector<std::string> line = {name};
    for (const std::string& v : values) line.push_back(row.count(v) ? row.at(v) : "-");  // a bucket it lacks
    t.rows.push_back(std::move(line));
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// SVG line charts

struct Series {
  std::vector<double> x, y;
};

// A plotted range snapped outwards to whole ticks, which land on 1, 2 or 5 x 10^k.
struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
};

Axis make_axis(double lo, double hi, bool integer_ticks) {
  if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {  // one point, or a flat series
    const double pad = std::max(0.5, std::fabs(lo) * 0.1);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / 4;  // about four intervals
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  if (integer_ticks) step = std::max(step, 1.0);
  Axis a;
  a.lo = std::floor(lo / step) * step;
  a.hi = std::ceil(hi / step) * step;
  // By index, not by repeated += step, so 0.1-steps do not drift past the last tick.
  const int64_t n = std::llround((a.hi - a.lo) / step);
  for (int64_t i = 0; i <= n; ++i) {
    const double v = a.lo + static_cast<double>(i) * step;
    a.ticks.push_back(std::fabs(v) < step * 1e-6 ? 0 : v);  // no "-0" or "1e-17" labels
  }
  return a;
}

// Centred moving average with a window of about a tenth of the series (ends use what exists).
std::vector<double> moving_average(const std::vector<double>& y) {
  const int64_t n = static_cast<int64_t>(y.size());
  const int64_t half = std::max<int64_t>(1, n / 20);
  std::vector<double> out(y.size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = std::max<int64_t>(0, i - half), b = std::min(n - 1, i + half);
    double sum = 0;
    for (int64_t j = a; j <= b; ++j) sum += y[j];
    out[i] = sum / static_cast<double>(b - a + 1);
  }
  return out;
}

// Chart geometry in SVG user units (the viewBox), margins leave room for tick labels.
struct Frame {
  double width = 380, height = 230, left = 54, right = 14, top = 30, bottom = 42;
  Axis ax, ay;
  double px(double x) const { return left + (x - ax.lo) / (ax.hi - ax.lo) * (width - left - right); }
  double py(double y) const { return height - bottom - (y - ay.lo) / (ay.hi - ay.lo) * (height - top - bottom); }
};

std::string tick_label(double v) { return fmt::format("{:.4g}", v); }

// The two SVG elements everything but the data is drawn with; `text` is escaped here.
std::string svg_line(const char* cls, double x1, double y1, double x2, double y2) {
  return fmt::format("<line class=\"{}\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>\n", cls, x1, y1, x2,
                     y2);
}
std::string svg_text(const char* cls, double x, double y, const char* anchor, const std::string& text) {
  return fmt::format("<text class=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\">{}</text>\n", cls, x, y, anchor,
                     html_escape(text));
}

// Grid lines with y tick labels, x tick marks with labels, the two axes and "step".
std::string svg_axes(const Frame& f) {
  const double x0 = f.left, x1 = f.width - f.right, y0 = f.height - f.bottom, y1 = f.top;
  std::string out;
  for (double t : f.ay.ticks) {
    out += svg_line("grid", x0, f.py(t), x1, f.py(t));
    out += svg_text("tick", x0 - 6, f.py(t) + 4, "end", tick_label(t));
  }
  for (double t : f.ax.ticks) {
    out += svg_line("axis", f.px(t), y0, f.px(t), y0 + 4);
    out += svg_text("tick", f.px(t), y0 + 16, "middle", tick_label(t));
  }
  out += svg_line("axis", x0, y0, x0, y1);
  out += svg_line("axis", x0, y0, x1, y0);
  return out + svg_text("label", (x0 + x1) / 2, f.height - 6, "middle", "step");
}

std::string svg_polyline(const Frame& f, const std::vector<double>& x, const std::vector<double>& y, const char* cls,
                         const char* colour = nullptr) {
  std::string points;
  for (size_t i = 0; i < x.size(); ++i) {
    points += fmt::format("{}{:.1f},{:.1f}", i ? " " : "", f.px(x[i]), f.py(y[i]));
  }
  const std::string style = colour ? fmt::format(" style=\"stroke:{}\"", colour) : "";
  return fmt::format("<polyline class=\"{}\"{} points=\"{}\"/>\n", cls, style, points);
}

// A chart's frame over every point of `series` (a unit frame when there are none).
Frame frame_over(const std::vector<const Series*>& series) {
  std::vector<double> xs, ys;
  for (const Series* s : series) {
    xs.insert(xs.end(), s->x.begin(), s->x.end());
    ys.insert(ys.end(), s->y.begin(), s->y.end());
  }
  Frame f;
  const bool empty = xs.empty();
  f.ax = make_axis(empty ? 0 : *std::min_element(xs.begin(), xs.end()),
                   empty ? 1 : *std::max_element(xs.begin(), xs.end()), /*integer_ticks=*/true);
  f.ay = make_axis(empty ? 0 : *std::min_element(ys.begin(), ys.end()),
                   empty ? 1 : *std::max_element(ys.begin(), ys.end()), /*integer_ticks=*/false);
  return f;
}

// The <svg> element's opening, the title and the axes.
std::string svg_chart_open(const std::string& title, const Frame& f) {
  std::string out = fmt::format(
      "<svg class=\"chart\" viewBox=\"0 0 {0:.0f} {1:.0f}\" width=\"{0:.0f}\" height=\"{1:.0f}\" "
      "role=\"img\" aria-label=\"{2} vs step\">\n",
      f.width, f.height, html_escape(title));
  return out + svg_text("title", f.width / 2, 18, "middle", title) + svg_axes(f);
}

std::string svg_no_data(const Frame& f) {
  const double cx = (f.left + f.width - f.right) / 2, cy = (f.top + f.height - f.bottom) / 2;
  return svg_text("empty", cx, cy, "middle", "no data") + "</svg>\n";
}

// One chart: `s` raw (thin) with its moving average (thick) over it. An empty series draws
// the frame and "no data"; a single point, which a polyline cannot show, also gets a dot.
std::string svg_line_chart(const std::string& title, const Series& s) {
  const Frame f = frame_over({&s});
  std::string out = svg_chart_open(title, f);
  if (s.x.empty()) return out + svg_no_data(f);
  out += svg_polyline(f, s.x, s.y, "raw");
  if (s.x.size() >= 3) out += svg_polyline(f, s.x, moving_average(s.y), "smooth");
  if (s.x.size() == 1) {
    out += fmt::format("<circle class=\"point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\"/>\n", f.px(s.x[0]), f.py(s.y[0]));
  }
  return out + "</svg>\n";
}

// Several series on one chart, each its moving average in its own colour, with a legend of
// their labels down the right edge of the plot.
std::string svg_lines_chart(const std::string& title, const std::vector<std::pair<std::string, Series>>& lines) {
  std::vector<const Series*> all;
  for (const auto& [label, s] : lines) all.push_back(&s);
  const Frame f = frame_over(all);
  std::string out = svg_chart_open(title, f);
  if (lines.empty()) return out + svg_no_data(f);
  constexpr size_t kColours = std::size(kPalette);
  for (size_t i = 0; i < lines.size(); ++i) {
    const Series& s = lines[i].second;
    const char* colour = kPalette[i % kColours];
    out += svg_polyline(f, s.x, s.x.size() >= 3 ? moving_average(s.y) : s.y, "line", colour);
    out += fmt::format(
        "<text class=\"legend\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" style=\"fill:{}\">{}</text>\n",
        f.width - f.right - 4, f.top + 12 * static_cast<double>(i + 1), colour, html_escape(lines[i].first));
  }
  return out + "</svg>\n";
}

// ---------------------------------------------------------------------------------------
// Run files

// The charted series of a metrics.jsonl ({"step": s, key: value-or-null, ...} per line).
// null (a non-finite value) and absent keys leave a gap; anything else is an error.
std::map<std::string, Series> read_metric_series(const std::string& path) {
  std::map<std::string, Series> out;
  JsonlReader reader(path);
  Json row;
  while (reader.next(row)) {
    const std::string where = fmt::format("{}:{}", path, reader.line());
    const Json* step = field(row, "step");
    if (step == nullptr || !step->is_number_integer()) throw Error(where + ": metrics row without an integer \"step\"");
    for (auto it = row.begin(); it != row.end(); ++it) {
      const std::string& key = it.key();
      const bool charted =
          key.starts_with(kBucketLengthPrefix) || std::any_of(kChartedMetrics.begin(), kChartedMetrics.end(),
                                                              [&](const ChartedMetric& m) { return m.key == key; });
      if (!charted || it->is_null()) continue;
      if (!it->is_number()) {
        throw Error(fmt::format("{}: \"{}\" is {}, expected a number", where, key, it->type_name()));
      }
      out[key].x.push_back(step->get<double>());
      out[key].y.push_back(it->get<double>());
    }
  }
  return out;
}

// The per-bucket length series as {"<field>=<value>", series}, numeric values in numeric order.
std::vector<std::pair<std::string, Series>> bucket_lines(const std::map<std::string, Series>& series) {
  std::vector<std::pair<std::string, Series>> lines;
  for (const auto& [key, s] : series) {
    if (key.starts_with(kBucketLengthPrefix)) lines.emplace_back(key.substr(kBucketLengthPrefix.size()), s);
  }
  // "<field>=<value>": ordered by value.
  auto value = [](const std::string& label) { return label.substr(label.find('=') + 1); };
  std::stable_sort(lines.begin(), lines.end(),
                   [&](const auto& a, const auto& b) { return bucket_value_less(value(a.first), value(b.first)); });
  return lines;
}

// The rows of the last step of `stage` in a samples.jsonl, at most kSamplesPerStage.
// `filter_stage`: the file is shared by stages (RUN/samples.jsonl), keep rows naming `stage`.
std::vector<Json> last_step_samples(const std::string& path, const std::string& stage, bool filter_stage) {
  std::vector<Json> out;
  int64_t last = INT64_MIN;
  JsonlReader reader(path);
  Json row;
  while (reader.next(row)) {
    if (filter_stage && text_field(row, "stage") != stage) continue;
    const Json* s = field(row, "step");
    const int64_t step = s != nullptr && s->is_number_integer() ? s->get<int64_t>() : 0;
    if (step > last) {
      last = step;
      out.clear();
    }
    if (step == last && out.size() < kSamplesPerStage) out.push_back(row);
  }
  return out;
}

struct StageInfo {
  std::string name, type, state;
};

// Stages in recipe order, then any the manifest or summary know that the recipe does not.
std::vector<StageInfo> list_stages(const std::optional<Json>& recipe, const Json* manifest_stages,
                                   const Json* summary_stages) {
  std::map<std::string, std::string> recipe_types;
  if (const Json* st = recipe ? field(*recipe, "stages") : nullptr; st != nullptr && st->is_array()) {
    for (const Json& s : *st) recipe_types[text_field(s, "name")] = text_field(s, "type");
  }
  std::vector<std::string> names = recipe_order(recipe);
  for (const Json* extra : {manifest_stages, summary_stages}) {
    if (extra == nullptr) continue;
    for (const std::string& n : ordered_names(*extra, {})) {
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
  }
  std::vector<StageInfo> out;
  for (const std::string& n : names) {
    StageInfo info{n, recipe_types.count(n) ? recipe_types[n] : "", "not started"};
    for (const Json* src : {manifest_stages, summary_stages}) {
      const Json* entry = src != nullptr ? field(*src, n.c_str()) : nullptr;
      if (entry != nullptr && info.type.empty()) info.type = text_field(*entry, "type");
    }
    if (const Json* entry = manifest_stages != nullptr ? field(*manifest_stages, n.c_str()) : nullptr) {
      info.state = text_field(*entry, "state");
    }
    out.push_back(info);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Page sections

std::string note(const std::string& text) { return "<p class=\"note\">" + html_escape(text) + "</p>\n"; }

std::string page_head(const std::string& run_dir) {
  // Inline CSS only: the page must render offline, from a copied folder, with nothing fetched.
  const char* css =
      "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em "
      "auto;max-width:1200px;"
      "padding:0 1em;color:#222}\n"
      "h1{margin-bottom:0.2em}h2{border-bottom:1px solid "
      "#ddd;padding-bottom:0.2em;margin-top:1.6em}\n"
      ".meta,.note{color:#666}.note{font-style:italic}\n"
      "table{border-collapse:collapse;margin:0.5em 0}th,td{padding:0.25em 0.8em;border-bottom:1px "
      "solid #e4e4e4;"
      "text-align:left}th{background:#f4f4f4}td.num,th.num{text-align:right;font-variant-numeric:"
      "tabular-nums}\n"
      ".charts{display:flex;flex-wrap:wrap;gap:1em}\n"
      "svg.chart{background:#fff;border:1px solid #e4e4e4}\n"
      "svg .title{font-size:13px;font-weight:600}svg .tick,svg .label,svg "
      ".empty{font-size:11px;fill:#555}\n"
      "svg .axis{stroke:#888}svg .grid{stroke:#eee}\n"
      "svg .raw{fill:none;stroke:#9ecae1;stroke-width:1}svg "
      ".smooth{fill:none;stroke:#08519c;stroke-width:2}\n"
      "svg .point{fill:#08519c}svg .line{fill:none;stroke-width:2}svg .legend{font-size:10px}\n"
      ".sample{border:1px solid #e4e4e4;border-radius:4px;margin:0.6em 0;padding:0.4em 0.8em}\n"
      ".sample pre{white-space:pre-wrap;word-break:break-word;margin:0.3em 0;font-size:12px}\n"
      ".sample pre.prompt{color:#666}.ok{color:#1a7f37}.bad{color:#c62828}\n";
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>r1kit report: {0}</title>\n<style>\n{1}</style>\n</head>\n<body>\n"
      "<h1>r1kit run report</h1>\n<p class=\"meta\">run directory: <code>{0}</code></p>\n",
      html_escape(run_dir), css);
}

std::string recipe_section(const std::vector<StageInfo>& stages) {
  std::string out = "<h2>Recipe</h2>\n";
  if (stages.empty()) return out + note("no recipe.json or manifest.json: no stages to list");
  Table t{{"#", "stage", "type", "state"}, {true, false, false, false}, {}};
  for (size_t i = 0; i < stages.size(); ++i) {
    t.rows.push_back({std::to_string(i + 1), stages[i].name, stages[i].type, stages[i].state});
  }
  return out + render_html_table(t);
}

// The final numbers of every stage in summary.json: parameters and wall time.
std::string results_section(const Json* summary_stages, const std::vector<std::string>& order,
                            const std::string& file) {
  std::string out = "<h2>Results</h2>\n";
  if (summary_stages == nullptr) return out + note("summary.json: not found");
  Table t{{"stage", "type", "params", "active params", "seconds"}, {false, false, true, true, true}, {}};
  for (const std::string& name : ordered_names(*summary_stages, order)) {
    const Json& s = (*summary_stages)[name];
    const std::string where = file + ": stages." + name;
    const auto params = number_field(s, "params", where), active = number_field(s, "active_params", where);
    const auto seconds = number_field(s, "seconds", where);
    t.rows.push_back({name, text_field(s, "type"), params ? human_count(*params) : "-",
                      active ? human_count(*active) : "-", seconds ? fmt::format("{:.1f}", *seconds) : "-"});
  }
  return out + render_html_table(t);
}

std::string eval_section(const std::optional<Json>& summary, const std::vector<std::string>& order,
                         const std::string& file) {
  std::string out = "<h2>Evaluation</h2>\n";
  if (!summary) return out + note("summary.json: not found");
  const Table t = eval_table(*summary, order, file);
  if (t.rows.empty()) return out + note("no stage has been evaluated yet");
  out += render_html_table(t);
  const Table buckets = bucket_table(*summary, order, file);
  if (buckets.rows.empty()) return out;
  return out + "<h3>Mean completion tokens (accuracy) by bucket</h3>\n" + render_html_table(buckets);
}

std::string sample_html(const std::string& meta, const std::string& prompt, const std::string& completion) {
  return fmt::format(
      "<div class=\"sample\"><div class=\"meta\">{}</div>\n<pre class=\"prompt\">{}</pre>\n"
      "<pre class=\"completion\">{}</pre></div>\n",
      meta, html_escape(clip_text(prompt)), html_escape(clip_text(completion)));
}

// Charts of the stage's metrics.jsonl and the completions of its last step.
std::string grpo_section(const std::string& run_dir, const std::string& stage) {
  std::string out = fmt::format("<h2>{} (grpo)</h2>\n", html_escape(stage));
  const std::string metrics_path = (fs::path(run_dir) / stage / "metrics.jsonl").string();
  if (fs::exists(metrics_path)) {
    const auto series = read_metric_series(metrics_path);
    out += "<div class=\"charts\">\n";
    for (const ChartedMetric& m : kChartedMetrics) {
      const auto it = series.find(m.key);
      if (it == series.end() && !m.always) continue;
      out += svg_line_chart(m.title, it != series.end() ? it->second : Series{});
    }
    const auto buckets = bucket_lines(series);
    if (!buckets.empty()) {
      const std::string& first = buckets.front().first;
      out += svg_lines_chart("completion length by " + first.substr(0, first.find('=')), buckets);
    }
    out += "</div>\n";
  } else {
    out += note(metrics_path + ": not found (the stage has not logged a step yet)");
  }

  // Per-stage samples when the trainer writes them there, else the run's shared file.
  std::string samples_path = (fs::path(run_dir) / stage / "samples.jsonl").string();
  const bool shared = !fs::exists(samples_path);
  if (shared) samples_path = (fs::path(run_dir) / "samples.jsonl").string();
  if (!fs::exists(samples_path)) return out + note("no samples.jsonl for this stage");
  const std::vector<Json> samples = last_step_samples(samples_path, stage, shared);
  if (samples.empty()) return out + note(samples_path + ": no samples for this stage");
  out += fmt::format("<h3>Sample completions, step {}</h3>\n", text_field(samples[0], "step"));
  for (const Json& s : samples) {
    const Json* reward = field(s, "reward");
    const std::string meta = fmt::format(
        "reward {}{}", reward != nullptr && reward->is_number() ? fmt::format("{:.3g}", reward->get<double>()) : "-",
        text_field(s, "why").empty() ? "" : " &middot; " + html_escape(text_field(s, "why")));
    out += sample_html(meta, text_field(s, "prompt"), text_field(s, "completion"));
  }
  return out;
}

// A few completions of each model an eval stage scored (its eval_samples.jsonl).
std::string eval_samples_section(const std::string& run_dir, const std::string& stage) {
  std::string out = fmt::format("<h2>{} (eval): sample completions</h2>\n", html_escape(stage));
  const std::string path = (fs::path(run_dir) / stage / "eval_samples.jsonl").string();
  if (!fs::exists(path)) return out + note(path + ": not found");
  std::vector<std::string> models;  // in file order
  std::map<std::string, std::vector<Json>> by_model;
  JsonlReader reader(path);
  Json row;
  while (reader.next(row)) {
    const std::string model = text_field(row, "model");
    if (!by_model.count(model)) models.push_back(model);
    if (by_model[model].size() < kSamplesPerModel) by_model[model].push_back(row);
  }
  if (models.empty()) return out + note(path + ": empty");
  for (const std::string& model : models) {
    out += fmt::format("<h3>{}</h3>\n", html_escape(model.empty() ? "(unnamed model)" : model));
    for (const Json& s : by_model[model]) {
      const Json* correct = field(s, "correct");
      const bool ok = correct != nullptr && correct->is_boolean() && correct->get<bool>();
      const std::string meta = fmt::format("<span class=\"{}\">{}</span> &middot; answer: {}", ok ? "ok" : "bad",
                                           ok ? "correct" : "wrong", html_escape(text_field(s, "answer")));
      out += sample_html(meta, text_field(s, "prompt"), text_field(s, "completion"));
    }
  }
  return out;
}

// The eval table, then the per-bucket one when the evals have buckets, as text.
std::string eval_tables_text(const Json& summary, const std::vector<std::string>& order, const std::string& file) {
  const Table t = eval_table(summary, order, file);
  if (t.rows.empty()) return "no stage has been evaluated yet\n";
  std::string out = render_text_table(t);
  const Table buckets = bucket_table(summary, order, file);
  if (!buckets.rows.empty()) out += "\nmean completion tokens (accuracy) by bucket:\n" + render_text_table(buckets);
  return out;
}

}  // namespace

std::string format_eval_table(const Json& summary, const std::vector<std::string>& stage_order) {
  return eval_tables_text(summary, stage_order, "summary.json");
}

std::string format_run_eval_table(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "summary.json").string();
  const std::optional<Json> summary = read_json_if_exists(path);
  if (!summary) return path + ": not found\n";
  return eval_tables_text(*summary, recipe_order(read_json_if_exists((fs::path(run_dir) / "recipe.json").string())),
                          path);
}

void write_report(const std::string& run_dir) {
  if (!fs::is_directory(run_dir)) throw Error(run_dir + ": not a run directory");
  const fs::path dir(run_dir);
  // A directory that never held a run gets no report.html written into it.
  if (!fs::exists(dir / "recipe.json") && !fs::exists(dir / "manifest.json")) {
    throw Error(run_dir + ": not a run directory (no recipe.json or manifest.json); nothing written");
  }
  const std::optional<Json> recipe = read_json_if_exists((dir / "recipe.json").string());
  const std::optional<Json> manifest = read_json_if_exists((dir / "manifest.json").string());
  const std::optional<Json> summary = read_json_if_exists((dir / "summary.json").string());
  const Json* manifest_stages = manifest ? &stages_object(*manifest, (dir / "manifest.json").string()) : nullptr;
  const Json* summary_stages = summary ? &stages_object(*summary, (dir / "summary.json").string()) : nullptr;
  const std::vector<StageInfo> stages = list_stages(recipe, manifest_stages, summary_stages);
  std::vector<std::string> order;
  for (const StageInfo& s : stages) order.push_back(s.name);

  std::string html = page_head(run_dir);
  if (!recipe) html += note("recipe.json: not found");
  html += recipe_section(stages);
  html += results_section(summary_stages, order, (dir / "summary.json").string());
  html += eval_section(summary, order, (dir / "summary.json").string());
  for (const StageInfo& s : stages) {
    if (s.type == "grpo") html += grpo_section(run_dir, s.name);
  }
  for (const StageInfo& s : stages) {
    if (s.type == "eval") html += eval_samples_section(run_dir, s.name);
  }
  html += "</body>\n</html>\n";
  write_file_atomic((dir / "report.html").string(), html);
}

}  // namespace r1kit::pipelines
