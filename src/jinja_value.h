// jinja::Value: the Python values a chat template computes with, for the Jinja renderer
// (src/jinja_template.h). Strings, numbers, lists and dicts behave as Python's do where a
// template can tell: dicts keep insertion order (tojson and repr print keys as given), lists
// and dicts are shared by reference (a namespace() attribute set in a loop is seen outside
// it), strings index and slice by code point, `str()` of a container is Python's repr.
// Undefined is Jinja's default Undefined: it prints as "", is false, iterates as empty, and
// anything else done with it is an error naming the variable.
// A tuple is a list that prints with parentheses. Does not: sets, bytes, big integers.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/config.h"

namespace r1kit::jinja {

class Value;
using List = std::vector<Value>;
// Insertion-ordered, as a Python dict.
using Dict = std::vector<std::pair<std::string, Value>>;

// Arguments of a call: positional, then keyword (`join(', ')`, `tojson(indent=4)`).
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};
using Function = std::function<Value(Args&)>;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };

  Value() = default;  // undefined, with no name
  static Value undefined(std::string name);
  static Value none();
  Value(bool b);  // NOLINT: implicit, as Python's literals
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double f);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  Value(List list);
  Value(Dict dict);
  static Value function(std::string name, Function f);
  // A tuple: a list that prints as (a, b) (dict.items(), `(',', ':')`).
  static Value tuple(List items);
  // A namespace(): a dict whose attributes `{% set ns.x = ... %}` may assign (Jinja refuses
  // that on any other object, so a template cannot change the messages it was given).
  static Value namespace_of(Dict attributes);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_namespace() const { return kind_ == Kind::kDict && namespace_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool as_bool() const { return b_; }
  int64_t as_int() const;  // bool, int (float truncates as Python's int())
  double as_float() const;
  const std::string& as_string() const { return s_; }  // the string, the undefined's or function's name
  List& list() const { return *list_; }
  Dict& dict() const { return *dict_; }
  const Function& func() const { return *func_; }

  // Dict lookup: the value, or nullptr.
  const Value* find(std::string_view key) const;
  // Sets or appends `key` (dict or namespace).
  void set(const std::string& key, Value v) const;

  // Python's truth value; undefined is false.
  bool truthy() const;
  // Python's str(): what `{{ value }}` prints ("" for undefined, "None", "True", repr of
  // containers).
  std::string str() const;
  // Python's repr().
  std::string repr() const;
  // The type's name in Python ("str", "dict", "NoneType"), for errors.
  std::string type_name() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool tuple_ = false;
  bool namespace_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> func_;
};

// JSON in: objects keep their key order with ordered_json (a template's tojson of a tool's
// schema prints the keys as the user wrote them); Json (sorted keys) is accepted too.
Value from_json(const nlohmann::ordered_json& j);
Value from_json(const Json& j);

// Python's json.dumps(value, ensure_ascii=False, indent=indent, separators=..., sort_keys=...):
// transformers' `tojson` filter. indent < 0 is None (one line, ", " and ": ").
struct JsonStyle {
  int indent = -1;
  std::string item_separator;  // empty: Python's default for the indent
  std::string key_separator;
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonStyle& style = {});

// Python's float repr (shortest round-trip digits, "1.0", "1e-05", "inf").
std::string float_repr(double f);

// Python's ==, and <, > between numbers, strings and lists (an error for other pairs).
bool equal(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);  // <0, 0, >0

// UTF-8 code points of a string (a template's len(), indexing and slicing count these).
std::vector<std::string_view> code_points(std::string_view s);

}  // namespace r1kit::jinja
