// Weighted combination of rewards (see scorer.h).
#include "rewards/scorer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include "src/error.h"
#include "src/logging.h"
#include "src/pretokenizer.h"

namespace r1kit::rewards {

namespace {

// `r`, or an error result when its value or a part is not finite (NaN, inf): a NaN must not
// become a silent skip or poison the advantages. Applied here, where every reward's result
// passes (in-process, isolated plug-ins and process rewards, one row or a batch).
RewardResult checked_value(RewardResult r) {
  if (r.value && !std::isfinite(*r.value)) return RewardResult::error(fmt::format("returned {} ({})", *r.value, r.why));
  for (const auto& [name, v] : r.parts) {
    if (!std::isfinite(v)) return RewardResult::error(fmt::format("returned part '{}' = {} ({})", name, v, r.why));
  }
  return r;
}

}  // namespace

struct FailureWarnings {
  static constexpr int64_t kShownInFull = 5;
  std::mutex mu;
  std::map<std::string, int64_t> seen;  // failures so far, per reward

  void note(const std::string& reward, const RewardResult& r, std::string_view completion) {
    int64_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      n = ++seen[reward];
    }
    const char* what = r.failure == RewardResult::Failure::timeout ? "timed out" : "failed";
    if (n <= kShownInFull) {
      const std::string start = dump_text(Json(std::string(completion.substr(0, 60))));  // quoted, escaped
      log::warn("reward '{}' {} on the completion {}...: {}{}", reward, what, start, r.why,
                n == kShownInFull ? " (further failures of this reward are counted, shown at 10, 100, ...)" : "");
    } else if (is_power_of_ten(n)) {
      log::warn("reward '{}': {} failures so far (latest: {})", reward, n, r.why);
    }
  }
  static bool is_power_of_ten(int64_t n) {
    while (n >= 10 && n % 10 == 0) n /= 10;
    return n == 1;
  }
};

Scorer Scorer::from_json(const Json& spec, const std::string& where) {
  if (!spec.is_array() || spec.empty())
    throw Error(fmt::format("{}: rewards must be a non-empty list of {{\"name\": ..., \"weight\": ...}}", where));
  Scorer s;
  for (size_t i = 0; i < spec.size(); ++i) {
    std::string at = fmt::format("{}[{}]", where, i);
    if (!spec[i].is_object()) throw Error(fmt::format("{}: must be an object with a \"name\"", at));
    JsonFields f(spec[i], at);
    std::string name;
    double weight = 1.0;
    double timeout_s = 10.0;
    f.require("name", name);
    f.get("weight", weight);
    f.get("timeout_s", timeout_s);
    if (!(timeout_s > 0)) f.fail("timeout_s", "must be > 0");
    auto reward = RewardRegistry::instance().create(name, f);
    reward->set_timeout_s(timeout_s);
    f.finish();
    s.add(name, weight, std::move(reward));
  }
  return s;
}

Scorer Scorer::from_spec(const std::string& spec) {
  std::string t = spec;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(t.begin());
  if (!t.empty() && t.front() == '[') return from_json(parse_json_text(t, "--reward"), "--reward");
  std::error_code ec;
  if (t.size() > 5 && t.compare(t.size() - 5, 5, ".json") == 0) {
    if (!std::filesystem::exists(t, ec)) throw Error(fmt::format("{}: cannot open file", t));
    return from_json(read_json_file(t), t);
  }
  // "math:1,format:0.5"
  Json list = Json::array();
  size_t pos = 0;
  while (pos <= t.size()) {
    size_t comma = t.find(',', pos);
    std::string item = t.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? t.size() + 1 : comma + 1;
    if (item.empty()) continue;
    Json entry = Json::object();
    size_t colon = item.find(':');
    entry["name"] = item.substr(0, colon);
    if (colon != std::string::npos) {
      try {
        size_t used = 0;
        entry["weight"] = std::stod(item.substr(colon + 1), &used);
        if (used != item.size() - colon - 1) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        throw Error(fmt::format("--reward: bad weight in '{}' (expected NAME:WEIGHT)", item));
      }
    }
    list.push_back(entry);
  }
  return from_json(list, "--reward");
}

void Scorer::add(std::string name, double weight, std::unique_ptr<Reward> reward) {
  if (!warnings_) warnings_ = std::make_shared<FailureWarnings>();
  entries_.push_back({std::move(name), weight, std::move(reward)});
}

RewardResult Scorer::combine(const std::vector<const RewardResult*>& parts, std::string_view completion) const {
  RewardResult out;
  double total = 0;
  bool any = false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const RewardResult& r = *parts[i];
    const std::string& name = entries_[i].name;
    if (r.failure == RewardResult::Failure::timeout) out.timed_out_rewards.push_back(name);
    if (r.failure == RewardResult::Failure::error) out.errored_rewards.push_back(name);
    if (r.failure != RewardResult::Failure::none) warnings_->note(name, r, completion);
    if (!r.value) out.skipped_rewards.push_back(name);
    if (!out.why.empty()) out.why += "; ";
    if (r.value) {
      any = true;
      total += entries_[i].weight * *r.value;
      out.parts[name] = *r.value;
      out.why += fmt::format("{}={:g} ({})", name, *r.value, r.why);
    } else {
      out.why += fmt::format("{}=skip ({})", name, r.why);
    }
    for (const auto& [k, v] : r.parts) out.parts[name + "." + k] = v;
  }
  if (any) out.value = total;
  // A reward's "why" may quote the completion's raw bytes (a model's byte tokens): every string
  // a Scorer returns is valid UTF-8, the way transformers decodes such bytes.
  out.why = utf8_lossy(out.why);
  return out;
}

std::vector<double> RewardTally::flat() const {
  std::vector<double> out;
  for (const auto* v : {&sum, &timeouts, &errors, &skips}) out.insert(out.end(), v->begin(), v->end());
  return out;
}

RewardTally RewardTally::from_flat(const std::vector<double>& values, size_t rewards) {
  const auto k = static_cast<std::ptrdiff_t>(rewards);
  auto part = [&](std::ptrdiff_t i) {
    return std::vector<double>(values.begin() + i * k, values.begin() + (i + 1) * k);
  };
  return {part(0), part(1), part(2), part(3)};
}

void Scorer::tally(const std::vector<RewardResult>& results, RewardTally& tally) const {
  const size_t n = entries_.size();
  for (auto* v : {&tally.sum, &tally.timeouts, &tally.errors, &tally.skips}) v->resize(n, 0.0);
  auto count = [](const std::vector<std::string>& names, const std::string& name) {
    return static_cast<double>(std::count(names.begin(), names.end(), name));
  };
  for (const RewardResult& r : results) {
    for (size_t k = 0; k < n; ++k) {
      const std::string& name = entries_[k].name;
      if (const auto it = r.parts.find(name); it != r.parts.end()) tally.sum[k] += it->second;
      tally.timeouts[k] += count(r.timed_out_rewards, name);
      tally.errors[k] += count(r.errored_rewards, name);
      tally.skips[k] += count(r.skipped_rewards, name);
    }
  }
}

std::string Scorer::too_many_failures(const RewardTally& tally, double rows, double max_fraction) const {
  for (size_t k = 0; k < entries_.size() && k < tally.timeouts.size(); ++k) {
    const double failed = tally.timeouts[k] + tally.errors[k];
    if (rows > 0 && failed > max_fraction * rows) {
      return fmt::format("reward '{}' failed on {:g} of {:g} completions (> {:g}%): {:g} timeouts, {:g} errors",
                         entries_[k].name, failed, rows, 100 * max_fraction, tally.timeouts[k], tally.errors[k]);
    }
  }
  return "";
}

RewardResult Scorer::score(const RewardInput& in) const {
  std::vector<RewardResult> results;
  for (const auto& e : entries_) results.push_back(checked_value(e.reward->score_with_timeout(in)));
  std::vector<const RewardResult*> ptrs;
  for (const auto& r : results) ptrs.push_back(&r);
  return combine(ptrs, in.completion);
}

std::vector<RewardResult> Scorer::score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool) const {
  std::vector<std::vector<RewardResult>> per_reward;
  for (const auto& e : entries_) {
    per_reward.push_back(e.reward->score_batch(batch, pool));
    for (RewardResult& r : per_reward.back()) r = checked_value(std::move(r));
  }
  std::vector<RewardResult> out;
  out.reserve(batch.size());
  for (size_t row = 0; row < batch.size(); ++row) {
    std::vector<const RewardResult*> ptrs;
    for (const auto& results : per_reward) ptrs.push_back(&results[row]);
    out.push_back(combine(ptrs, batch[row].completion));
  }
  return out;
}

}  // namespace r1kit::rewards
