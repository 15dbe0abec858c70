// Weighted combination of rewards (see scorer.h).
#include "rewards/scorer.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "src/error.h"

namespace r1kit::rewards {

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
  entries_.push_back({std::move(name), weight, std::move(reward)});
}

RewardResult Scorer::combine(const std::vector<const RewardResult*>& parts) const {
  RewardResult out;
  double total = 0;
  bool any = false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const RewardResult& r = *parts[i];
    const std::string& name = entries_[i].name;
    if (r.timed_out) out.timed_out_rewards.push_back(name);
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
  return out;
}

std::vector<double> RewardTally::flat() const {
  std::vector<double> out = sum;
  out.insert(out.end(), timeouts.begin(), timeouts.end());
  out.insert(out.end(), skips.begin(), skips.end());
  return out;
}

RewardTally RewardTally::from_flat(const std::vector<double>& values, size_t rewards) {
  const auto k = static_cast<std::ptrdiff_t>(rewards);
  return {{values.begin(), values.begin() + k},
          {values.begin() + k, values.begin() + 2 * k},
          {values.begin() + 2 * k, values.begin() + 3 * k}};
}

void Scorer::tally(const std::vector<RewardResult>& results, RewardTally& tally) const {
  const size_t n = entries_.size();
  tally.sum.resize(n, 0.0), tally.timeouts.resize(n, 0.0), tally.skips.resize(n, 0.0);
  for (const RewardResult& r : results) {
    for (size_t k = 0; k < n; ++k) {
      const std::string& name = entries_[k].name;
      if (const auto it = r.parts.find(name); it != r.parts.end()) tally.sum[k] += it->second;
      tally.timeouts[k] += std::count(r.timed_out_rewards.begin(), r.timed_out_rewards.end(), name);
      tally.skips[k] += std::count(r.skipped_rewards.begin(), r.skipped_rewards.end(), name);
    }
  }
}

std::string Scorer::too_many_timeouts(const std::vector<double>& timeouts, double rows, double max_fraction) const {
  for (size_t k = 0; k < entries_.size() && k < timeouts.size(); ++k) {
    if (rows > 0 && timeouts[k] > max_fraction * rows) {
      return fmt::format("reward '{}' timed out on {:g} of {:g} completions (> {:g}%)", entries_[k].name, timeouts[k],
                         rows, 100 * max_fraction);
    }
  }
  return "";
}

RewardResult Scorer::score(const RewardInput& in) const {
  std::vector<RewardResult> results;
  for (const auto& e : entries_) results.push_back(e.reward->score_with_timeout(in));
  std::vector<const RewardResult*> ptrs;
  for (const auto& r : results) ptrs.push_back(&r);
  return combine(ptrs);
}

std::vector<RewardResult> Scorer::score_batch(const std::vector<RewardInput>& batch, ThreadPool* pool) const {
  std::vector<std::vector<RewardResult>> per_reward;
  for (const auto& e : entries_) per_reward.push_back(e.reward->score_batch(batch, pool));
  std::vector<RewardResult> out;
  out.reserve(batch.size());
  for (size_t row = 0; row < batch.size(); ++row) {
    std::vector<const RewardResult*> ptrs;
    for (const auto& results : per_reward) ptrs.push_back(&results[row]);
    out.push_back(combine(ptrs));
  }
  return out;
}

}  // namespace r1kit::rewards
