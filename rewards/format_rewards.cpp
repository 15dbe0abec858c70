// Format rewards (see format_rewards.h) and their registrations.
#include "rewards/format_rewards.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "rewards/reward.h"
#include "src/error.h"

namespace r1kit::rewards {
namespace {

size_t count_of(std::string_view text, std::string_view tag) {
  size_t n = 0;
  for (size_t p = text.find(tag); p != std::string_view::npos; p = text.find(tag, p + tag.size())) ++n;
  return n;
}

// UTF-8 decode; invalid bytes become U+FFFD and advance one byte.
std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

// The script of a letter, "" for anything that is not a letter we count.
const char* script_of(char32_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7))
    return "latin";
  if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF)) return "han";
  if (c >= 0x3040 && c <= 0x30FF) return "kana";
  if (c >= 0xAC00 && c <= 0xD7AF) return "hangul";
  if (c >= 0x0400 && c <= 0x04FF) return "cyrillic";
  if (c >= 0x0600 && c <= 0x06FF) return "arabic";
  if (c >= 0x0370 && c <= 0x03FF) return "greek";
  if (c >= 0x0900 && c <= 0x097F) return "devanagari";
  return "";
}

// Drop $...$ math and \commands: formulas are not language.
std::string strip_math(std::string_view text) {
  std::string s(text);
  static const RE2 kDisplay(R"(\$\$[^$]*\$\$)");
  static const RE2 kInline(R"(\$[^$\n]*\$)");
  static const RE2 kCommand(R"(\\[a-zA-Z]+)");
  static const RE2 kCode("```[^`]*```");
  RE2::GlobalReplace(&s, kCode, " ");
  RE2::GlobalReplace(&s, kDisplay, " ");
  RE2::GlobalReplace(&s, kInline, " ");
  RE2::GlobalReplace(&s, kCommand, " ");
  return s;
}

std::string_view think_part(std::string_view completion) {
  size_t open = completion.find("<think>");
  size_t close = completion.find("</think>");
  if (close == std::string_view::npos) return completion;
  size_t start = open == std::string_view::npos || open > close ? 0 : open + 7;
  return completion.substr(start, close - start);
}

class FormatReward : public Reward {
 public:
  explicit FormatReward(bool think_in_prompt) : think_in_prompt_(think_in_prompt) {}
  RewardResult score(const RewardInput& in) const override {
    double v = format_score(in.completion, think_in_prompt_);
    return RewardResult::make(v, v > 0 ? "<think>..</think><answer>..</answer>" : "not the <think>/<answer> template");
  }

 private:
  bool think_in_prompt_;
};

class TagCountReward : public Reward {
 public:
  RewardResult score(const RewardInput& in) const override {
    double v = tag_count_score(in.completion);
    return RewardResult::make(v, fmt::format("{} of 4 tags once", static_cast<int>(v * 4 + 0.5)));
  }
};

class LengthReward : public Reward {
 public:
  LengthReward(double max_length, double cache_length, std::string unit, std::string field)
      : max_(max_length), cache_(cache_length), unit_(std::move(unit)), field_(std::move(field)) {}
  RewardResult score(const RewardInput& in) const override {
    double len = 0;
    if (unit_ == "chars") {
      len = static_cast<double>(decode_utf8(in.completion).size());
    } else if (unit_ == "words") {
      std::istringstream ss{std::string(in.completion)};
      std::string w;
      while (ss >> w) ++len;
    } else {
      const Json* v = in.field(field_);
      if (v == nullptr || !v->is_number()) return RewardResult::skip(fmt::format("no numeric '{}' field", field_));
      len = v->get<double>();
    }
    double v = overlong_penalty(len, max_, cache_);
    RewardResult r = RewardResult::make(v, fmt::format("length {} {} (max {}, cache {})", len, unit_, max_, cache_));
    r.parts["length"] = len;
    return r;
  }

 private:
  double max_, cache_;
  std::string unit_, field_;
};

class LanguageReward : public Reward {
 public:
  explicit LanguageReward(std::string target) : target_(std::move(target)) {}
  RewardResult score(const RewardInput& in) const override {
    std::string target = target_;
    if (target == "auto") target = dominant_script(strip_math(in.prompt));
    double v = script_share(think_part(in.completion), target);
    return RewardResult::make(v, fmt::format("{:.0f}% of the reasoning in {}", v * 100, target));
  }

 private:
  std::string target_;
};

class RepetitionReward : public Reward {
 public:
  RepetitionReward(int ngram, double max_penalty) : ngram_(ngram), max_penalty_(max_penalty) {}
  RewardResult score(const RewardInput& in) const override {
    double v = repetition_penalty(in.completion, ngram_, max_penalty_);
    return RewardResult::make(v, fmt::format("{}-gram repetition penalty {:.3f}", ngram_, v));
  }

 private:
  int ngram_;
  double max_penalty_;
};

std::unique_ptr<Reward> make_format(JsonFields& f) {
  bool think_in_prompt = false;
  f.get("think_in_prompt", think_in_prompt);
  return std::make_unique<FormatReward>(think_in_prompt);
}
std::unique_ptr<Reward> make_tag_count(JsonFields&) { return std::make_unique<TagCountReward>(); }
std::unique_ptr<Reward> make_length(JsonFields& f) {
  double max_length = 4096, cache_length = 512;
  std::string unit = "chars", field = "completion_tokens";
  f.get("max_length", max_length);
  f.get("cache_length", cache_length);
  f.get("unit", unit);
  f.get("length_field", field);
  if (unit != "chars" && unit != "words" && unit != "field")
    f.fail("unit", "must be \"chars\", \"words\" or \"field\", got \"" + unit + "\"");
  if (!(cache_length >= 0 && cache_length <= max_length)) f.fail("cache_length", "must be in [0, max_length]");
  return std::make_unique<LengthReward>(max_length, cache_length, unit, field);
}
std::unique_ptr<Reward> make_language(JsonFields& f) {
  std::string target = "auto";
  f.get("target", target);
  static const std::set<std::string> kScripts = {"auto",     "latin",  "han",   "kana",      "hangul",
                                                 "cyrillic", "arabic", "greek", "devanagari"};
  if (!kScripts.count(target)) f.fail("target", "unknown script \"" + target + "\"");
  return std::make_unique<LanguageReward>(target);
}
std::unique_ptr<Reward> make_repetition(JsonFields& f) {
  int ngram = 3;
  double max_penalty = 1.0;
  f.get("ngram", ngram);
  f.get("max_penalty", max_penalty);
  if (ngram < 1) f.fail("ngram", "must be >= 1");
  return std::make_unique<RepetitionReward>(ngram, max_penalty);
}

}  // namespace

double format_score(std::string_view completion, bool think_in_prompt) {
  std::string text(completion);
  if (think_in_prompt) text = "<think>" + text;
  static const RE2 kTemplate(R"((?s)^\s*<think>(.*)</think>\s*<answer>(.*)</answer>\s*$)");
  if (!RE2::FullMatch(text, kTemplate)) return 0.0;
  for (std::string_view tag : {"<think>", "</think>", "<answer>", "</answer>"})
    if (count_of(text, tag) != 1) return 0.0;
  return 1.0;
}

double tag_count_score(std::string_view completion) {
  double v = 0;
  for (std::string_view tag : {"<think>", "</think>", "<answer>", "</answer>"})
    if (count_of(completion, tag) == 1) v += 0.25;
  return v;
}

double overlong_penalty(double length, double max_length, double cache_length) {
  double soft = max_length - cache_length;
  if (length <= soft) return 0.0;
  if (length > max_length) return -1.0;
  return cache_length > 0 ? (soft - length) / cache_length : -1.0;
}

double script_share(std::string_view text, const std::string& script) {
  size_t total = 0, in_target = 0;
  for (char32_t c : decode_utf8(strip_math(text))) {
    const char* s = script_of(c);
    if (*s == '\0') continue;
    ++total;
    // Japanese mixes kana and han: count han as on-script for a kana target.
    if (script == s || (script == "kana" && std::string(s) == "han")) ++in_target;
  }
  return total == 0 ? 1.0 : static_cast<double>(in_target) / static_cast<double>(total);
}

std::string dominant_script(std::string_view text) {
  std::map<std::string, size_t> counts;
  for (char32_t c : decode_utf8(text)) {
    const char* s = script_of(c);
    if (*s != '\0') ++counts[s];
  }
  if (counts.count("kana")) return "kana";
  std::string best = "latin";
  size_t best_n = 0;
  for (const auto& [s, n] : counts)
    if (n > best_n) {
      best = s;
      best_n = n;
    }
  return best;
}

double repetition_penalty(std::string_view text, int ngram, double max_penalty) {
  std::istringstream ss{std::string(text)};
  std::vector<std::string> words;
  std::string w;
  while (ss >> w) {
    std::string lw;
    for (char c : w) lw += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    words.push_back(lw);
  }
  if (static_cast<int>(words.size()) < ngram) return 0.0;
  std::set<std::string> distinct;
  size_t total = 0;
  for (size_t i = 0; i + ngram <= words.size(); ++i) {
    std::string key;
    for (int k = 0; k < ngram; ++k) key += words[i + k] + '\x1f';
    distinct.insert(key);
    ++total;
  }
  double scaling = 1.0 - static_cast<double>(distinct.size()) / static_cast<double>(total);
  return -scaling * max_penalty;
}

R1KIT_REGISTER_REWARD(format, make_format);
R1KIT_REGISTER_REWARD(tag_count, make_tag_count);
R1KIT_REGISTER_REWARD(length, make_length);
R1KIT_REGISTER_REWARD(language, make_language);
R1KIT_REGISTER_REWARD(repetition, make_repetition);

}  // namespace r1kit::rewards
