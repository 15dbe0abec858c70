// metrics.jsonl + TensorBoard for trainers, and the progress line: see metrics.h.
#include "src/metrics.h"

#include <fmt/core.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <utility>

#include "src/config.h"
#include "src/error.h"
#include "src/jsonl.h"
#include "src/logging.h"
#include "src/tensorboard.h"

namespace r1kit {
namespace {

std::string format_value(double v) {
  if (!std::isfinite(v)) return fmt::format("{}", v);  // "nan", "inf", "-inf"
  if (std::fabs(v) >= 100) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

}  // namespace

MetricsLogger::MetricsLogger(const std::string& run_dir, bool enabled)
    : run_dir_(run_dir), jsonl_path_(run_dir + "/metrics.jsonl"), enabled_(enabled) {
  if (!enabled_) return;
  std::error_code ec;
  std::filesystem::create_directories(run_dir_, ec);
  if (ec) throw Error(run_dir_ + ": cannot create run directory: " + ec.message());
  jsonl_ = std::make_unique<JsonlAppender>(jsonl_path_);
  tensorboard_ = std::make_unique<TensorboardWriter>(run_dir_);
}

MetricsLogger::~MetricsLogger() = default;

std::string MetricsLogger::tensorboard_path() const { return tensorboard_ ? tensorboard_->path() : std::string(); }

void MetricsLogger::log(int64_t step, const std::map<std::string, double>& row) {
  if (!enabled_) return;
  if (row.count("step") != 0) {
    throw std::invalid_argument("MetricsLogger::log: row has a \"step\" key; pass the step apart");
  }
  Json line = Json::object();
  line["step"] = step;
  for (const auto& [key, value] : row) {
    // JSON has no NaN or infinity; null keeps the column present so a reader sees the gap.
    line[key] = std::isfinite(value) ? Json(value) : Json(nullptr);
  }
  jsonl_->write(line);
  tensorboard_->add_scalars(row, step);
}

void MetricsLogger::truncate_after(int64_t step) {
  if (!enabled_) return;
  // The appender's fd points at the file being replaced: close it first, reopen after the
  // rename so later rows go to the new file.
  jsonl_.reset();
  drop_rows_after_step(jsonl_path_, step);
  jsonl_ = std::make_unique<JsonlAppender>(jsonl_path_);

  tensorboard_.reset();
  tensorboard_ = std::make_unique<TensorboardWriter>(run_dir_);
  tensorboard_->add_session_start(step + 1);
}

void MetricsLogger::flush() {
  if (tensorboard_) tensorboard_->flush();
}

std::string format_progress(int64_t step, int64_t total, const std::map<std::string, double>& row,
                            const std::vector<std::string>& keys) {
  std::string out = total > 0 ? fmt::format("step {}/{}", step, total) : fmt::format("step {}", step);
  for (const std::string& key : keys) {
    const auto it = row.find(key);
    if (it == row.end()) continue;
    if (key == kSecondsPerStepKey) {
      out += fmt::format("  {} s/step", format_value(it->second));
    } else {
      out += fmt::format("  {} {}", key, format_value(it->second));
    }
  }
  return out;
}

}  // namespace r1kit
