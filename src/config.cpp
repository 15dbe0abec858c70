// JsonFields: see config.h.
#include "src/config.h"

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

namespace r1kit {

Json parse_json_text(const std::string& text, const std::string& where) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // nlohmann reports a byte offset; turn it into line:column for a human.
    size_t line = 1, col = 1;
    for (size_t i = 0; i < text.size() && i + 1 < e.byte; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string msg = e.what();
    const auto pos = msg.find("syntax error");
    throw Error(where + ":" + std::to_string(line) + ":" + std::to_string(col) +
                ": invalid JSON: " + (pos == std::string::npos ? msg : msg.substr(pos)));
  } catch (const Json::exception& e) {  // a number out of range (1e999), found by fuzz_model_config
    const std::string msg = e.what();
    const auto pos = msg.find("] ");
    throw Error(where + ": invalid JSON: " + (pos == std::string::npos ? msg : msg.substr(pos + 2)));
  }
}

std::string dump_text(const Json& value, int indent) {
  return value.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

Json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_text(ss.str(), path);
}

JsonFields::JsonFields(const Json& obj, std::string where) : obj_(obj), where_(std::move(where)) {
  if (!obj_.is_object()) {
    throw Error(where_ + ": expected a JSON object, got " + std::string(obj_.type_name()));
  }
}

const Json* JsonFields::find(const std::string& key) {
  seen_.insert(key);
  auto it = obj_.find(key);
  return it == obj_.end() ? nullptr : &*it;
}

bool JsonFields::has(const std::string& key) const { return obj_.contains(key); }

std::string JsonFields::path(const std::string& key) const {
  return where_ + (where_.empty() || where_.back() == ' ' ? "" : ".") + key;
}

void JsonFields::fail(const std::string& key, const std::string& what) const { throw Error(path(key) + " " + what); }

void JsonFields::finish() const {
  if (ignore_rest_) return;
  for (auto it = obj_.begin(); it != obj_.end(); ++it) {
    if (!seen_.count(it.key())) {
      throw Error(path(it.key()) + ": unknown key");
    }
  }
}

std::vector<std::string> JsonFields::unknown() const {
  std::vector<std::string> keys;
  for (auto it = obj_.begin(); it != obj_.end(); ++it) {
    if (!seen_.count(it.key())) keys.push_back(it.key());
  }
  return keys;
}

void JsonFields::convert(const std::string& key, const Json& v, bool& out) const {
  if (!v.is_boolean()) fail(key, "must be true or false, got " + std::string(v.type_name()));
  out = v.get<bool>();
}

void JsonFields::convert(const std::string& key, const Json& v, int64_t& out) const {
  // Out-of-range values are errors, not wrapped or undefined conversions (found by
  // fuzz_model_config: max_position_embeddings 2.5e48).
  constexpr double kTwo63 = 9223372036854775808.0;
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    fail(key, "is out of range, got " + v.dump());
  } else if (v.is_number_integer()) {
    out = v.get<int64_t>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) {
    const double d = v.get<double>();
    if (!(d >= -kTwo63 && d < kTwo63)) fail(key, "is out of range, got " + v.dump());
    out = static_cast<int64_t>(d);  // 1e3 and 1000.0 are integers to a human
  } else {
    fail(key, "must be an integer, got " + (v.is_number() ? v.dump() : std::string(v.type_name())));
  }
}

void JsonFields::convert(const std::string& key, const Json& v, uint64_t& out) const {
  int64_t wide = 0;
  convert(key, v, wide);
  if (wide < 0) fail(key, "must be >= 0, got " + std::to_string(wide));
  out = static_cast<uint64_t>(wide);
}

void JsonFields::convert(const std::string& key, const Json& v, int& out) const {
  int64_t wide = 0;
  convert(key, v, wide);
  if (wide < INT_MIN || wide > INT_MAX) fail(key, "is out of range, got " + std::to_string(wide));
  out = static_cast<int>(wide);
}

void JsonFields::convert(const std::string& key, const Json& v, double& out) const {
  if (!v.is_number()) fail(key, "must be a number, got " + std::string(v.type_name()));
  out = v.get<double>();
}

void JsonFields::convert(const std::string& key, const Json& v, float& out) const {
  double wide = 0;
  convert(key, v, wide);
  if (std::fabs(wide) > FLT_MAX) fail(key, "is out of range, got " + v.dump());
  out = static_cast<float>(wide);
}

void JsonFields::convert(const std::string& key, const Json& v, std::string& out) const {
  if (!v.is_string()) fail(key, "must be a string, got " + std::string(v.type_name()));
  out = v.get<std::string>();
}

}  // namespace r1kit
