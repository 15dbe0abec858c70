// JSON -> plain config struct, one field at a time, with the errors a user needs.
//
// Every config struct (policy::ModelConfig, rollout::SamplingOptions, GrpoOptions, ...) has
// a default for each field and ONE parse function that maps JSON to fields through
// JsonFields. JsonFields type-checks each key it is asked for and, in finish(), rejects
// every key nobody asked for, naming the file and the key path ("recipe.json: stages[2].beta").
// Modules never see JSON: only their parse function does.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "src/error.h"

namespace r1kit {

using Json = nlohmann::json;

// One spelling of an enum value in JSON: `{"dapo", LossType::kDapo}`. An enum's table of these
// is written once, beside the enum, and serves both parsing (JsonFields::get) and printing
// (enum_name).
template <class E>
struct EnumName {
  std::string_view name;
  E value;
};

// The JSON spelling of `value` in `names` ("?" for a value missing from the table).
template <class E, size_t N>
std::string_view enum_name(E value, const EnumName<E> (&names)[N]) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

// JSON text in which bytes that are not valid UTF-8 (a model's raw byte tokens, a reward's
// explanation of them) are replaced by U+FFFD, as transformers' decode does: no writer may
// stop a run over text. indent < 0: one line.
std::string dump_text(const Json& value, int indent = -1);

// Reads a whole JSON file; a syntax error names the file, line and column.
Json read_json_file(const std::string& path);
// Parses JSON text; `where` names its origin in errors (a file, "--set", ...).
Json parse_json_text(const std::string& text, const std::string& where);

class JsonFields {
 public:
  // `obj` must be a JSON object; `where` is the error prefix, e.g. "model/config.json" or
  // "recipe.json: stages[1]".
  JsonFields(const Json& obj, std::string where);

  // Optional key: leaves `field` (its default) untouched when the key is absent or null.
  template <class T>
  void get(const std::string& key, T& field) {
    const Json* v = find(key);
    if (v == nullptr || v->is_null()) return;
    convert(key, *v, field);
  }
  // Optional enum key: the string must be one of `names`; the error lists them.
  template <class E, size_t N>
  void get(const std::string& key, E& field, const EnumName<E> (&names)[N]) {
    const Json* v = find(key);
    if (v == nullptr || v->is_null()) return;
    std::string text;
    convert(key, *v, text);
    for (const auto& n : names) {
      if (n.name == text) {
        field = n.value;
        return;
      }
    }
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + std::string(n.name);
    fail(key, "'" + text + "' is not one of " + known);
  }
  // Key that must be present.
  template <class T>
  void require(const std::string& key, T& field) {
    const Json* v = find(key);
    if (v == nullptr || v->is_null()) fail(key, "is required");
    convert(key, *v, field);
  }
  // Raw access for nested objects (a sub-struct's own parse function takes it).
  const Json* raw(const std::string& key) { return find(key); }
  bool has(const std::string& key) const;
  // Marks a key as known without reading it (e.g. HF config keys r1kit does not use).
  void ignore(const std::string& key) { seen_.insert(key); }
  void ignore_all() { ignore_rest_ = true; }
  // Throws r1kit::Error naming the first unknown key.
  void finish() const;
  // The keys nobody asked for (for formats like HF config.json where foreign keys are kept).
  std::vector<std::string> unknown() const;
  // "where.key", for nested parse functions and error messages.
  std::string path(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

 private:
  const Json* find(const std::string& key);
  void convert(const std::string& key, const Json& v, bool& out) const;
  void convert(const std::string& key, const Json& v, int& out) const;
  void convert(const std::string& key, const Json& v, int64_t& out) const;
  void convert(const std::string& key, const Json& v, uint64_t& out) const;
  void convert(const std::string& key, const Json& v, double& out) const;
  void convert(const std::string& key, const Json& v, float& out) const;
  void convert(const std::string& key, const Json& v, std::string& out) const;
  void convert(const std::string& key, const Json& v, Json& out) const { out = v; }
  template <class T>
  void convert(const std::string& key, const Json& v, std::vector<T>& out) const {
    if (!v.is_array()) fail(key, "must be an array, got " + std::string(v.type_name()));
    out.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      T item{};
      convert(key + "[" + std::to_string(i) + "]", v[i], item);
      out.push_back(std::move(item));
    }
  }
  template <class T>
  void convert(const std::string& key, const Json& v, std::optional<T>& out) const {
    T item{};
    convert(key, v, item);
    out = std::move(item);
  }

  const Json& obj_;
  std::string where_;
  std::set<std::string> seen_;
  bool ignore_rest_ = false;
};

}  // namespace r1kit
