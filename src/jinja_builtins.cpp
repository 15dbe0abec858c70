// The filters, tests, methods and globals of the Jinja renderer (see jinja_builtins.h).
#include "src/jinja_builtins.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <functional>
#include <map>

namespace r1kit::jinja {
namespace {

// --- arguments ------------------------------------------------------------------------------

// The argument at `index` or named `name` (Python's binding), or `fallback`.
Value arg(Args& args, size_t index, const char* name, Value fallback = Value()) {
  for (auto& [k, v] : args.keyword) {
    if (k == name) return v;
  }
  if (index < args.positional.size()) return args.positional[index];
  return fallback;
}

const std::string& need_string(const Value& v, const char* what) {
  if (!v.is_string()) throw Error(std::string(what) + ": expected a string, got " + v.type_name());
  return v.as_string();
}

// --- strings (UTF-8; Python counts code points) ----------------------------------------------

bool is_unicode_space(std::string_view cp) {
  static const char* kSpaces[] = {" ",
                                  "\t",
                                  "\n",
                                  "\v",
                                  "\f",
                                  "\r",
                                  "\x1c",
                                  "\x1d",
                                  "\x1e",
                                  "\x1f",
                                  "\xc2\x85",
                                  "\xc2\xa0",
                                  "\xe1\x9a\x80",
                                  "\xe2\x80\xa8",
                                  "\xe2\x80\xa9",
                                  "\xe2\x80\xaf",
                                  "\xe2\x81\x9f",
                                  "\xe3\x80\x80"};
  for (const char* s : kSpaces) {
    if (cp == s) return true;
  }
  // U+2000..U+200A
  return cp.size() == 3 && cp[0] == '\xe2' && cp[1] == '\x80' && static_cast<unsigned char>(cp[2]) >= 0x80 &&
         static_cast<unsigned char>(cp[2]) <= 0x8a;
}

// Python's str.strip / lstrip / rstrip: whitespace, or the code points of `chars`.
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  auto cps = code_points(s);
  std::vector<std::string_view> set;
  bool whitespace = chars.is_undefined() || chars.is_none();
  if (!whitespace) set = code_points(need_string(chars, "strip"));
  auto strippable = [&](std::string_view cp) {
    return whitespace ? is_unicode_space(cp) : std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t begin = 0, end = cps.size();
  if (left) {
    while (begin < end && strippable(cps[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strippable(cps[end - 1])) --end;
  }
  std::string out;
  for (size_t i = begin; i < end; ++i) out += cps[i];
  return out;
}

// Python's str.split / rsplit.
List split(const std::string& s, const Value& sep_value, int64_t maxsplit, bool from_right) {
  List out;
  if (sep_value.is_undefined() || sep_value.is_none()) {
    // Runs of whitespace separate; empty strings are dropped.
    auto cps = code_points(s);
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    for (auto cp : cps) {
      if (is_unicode_space(cp)) {
        if (in_word) words.push_back(std::move(word));
        word.clear();
        in_word = false;
      } else {
        word += cp;
        in_word = true;
      }
    }
    if (in_word) words.push_back(word);
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
      // Re-split keeping the remainder whole, as Python does: find the cut in the original.
      std::string rest;
      if (!from_right) {
        size_t pos = 0;
        for (int64_t i = 0; i < maxsplit; ++i) {
          size_t at = s.find(words[static_cast<size_t>(i)], pos);
          pos = at + words[static_cast<size_t>(i)].size();
          out.emplace_back(words[static_cast<size_t>(i)]);
        }
        out.emplace_back(strip(s.substr(pos), Value(), true, false));
        return out;
      }
      size_t pos = s.size();
      List tail;
      for (int64_t i = 0; i < maxsplit; ++i) {
        const std::string& w = words[words.size() - 1 - static_cast<size_t>(i)];
        size_t at = s.rfind(w, pos - w.size());
        pos = at;
        tail.insert(tail.begin(), Value(w));
      }
      out.emplace_back(strip(s.substr(0, pos), Value(), false, true));
      out.insert(out.end(), tail.begin(), tail.end());
      return out;
    }
    for (auto& w : words) out.emplace_back(std::move(w));
    return out;
  }
  const std::string& sep = need_string(sep_value, "split");
  if (sep.empty()) throw Error("split: empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t pos = 0;
    int64_t splits = 0;
    while (maxsplit < 0 || splits < maxsplit) {
      size_t at = s.find(sep, pos);
      if (at == std::string::npos) break;
      parts.push_back(s.substr(pos, at - pos));
      pos = at + sep.size();
      ++splits;
    }
    parts.push_back(s.substr(pos));
  } else {
    size_t end = s.size();
    int64_t splits = 0;
    while (maxsplit < 0 || splits < maxsplit) {
      if (end < sep.size()) break;
      size_t at = s.rfind(sep, end - sep.size());
      if (at == std::string::npos) break;
      parts.insert(parts.begin(), s.substr(at + sep.size(), end - at - sep.size()));
      end = at;
      ++splits;
    }
    parts.insert(parts.begin(), s.substr(0, end));
  }
  for (auto& p : parts) out.emplace_back(std::move(p));
  return out;
}

std::string replace(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
  if (old.empty()) {
    // Python inserts `with` between code points (and at both ends).
    std::string out;
    int64_t n = 0;
    for (auto cp : code_points(s)) {
      if (count < 0 || n < count) {
        out += with;
        ++n;
      }
      out += cp;
    }
    if (count < 0 || n < count) out += with;
    return out;
  }
  std::string out;
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t at = s.find(old, pos);
    if (at == std::string::npos) break;
    out += s.substr(pos, at - pos) + with;
    pos = at + old.size();
    ++n;
  }
  return out + s.substr(pos);
}

std::string map_ascii(std::string s, int (*f)(int)) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(c));
  }
  return s;
}

std::string capitalize(const std::string& s) {
  std::string out = map_ascii(s, [](int c) { return std::tolower(c); });
  if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80) out[0] = static_cast<char>(std::toupper(out[0]));
  return out;
}

std::string title(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && std::isalpha(u)) {
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = u < 0x80;
    }
  }
  return out;
}

int64_t code_point_index(const std::string& s, size_t byte) {
  if (byte == std::string::npos) return -1;
  return static_cast<int64_t>(code_points(std::string_view(s).substr(0, byte)).size());
}

bool starts_or_ends(const std::string& s, const Value& what, bool starts) {
  auto check = [&](const std::string& x) {
    if (x.size() > s.size()) return false;
    return starts ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (what.is_list()) {
    for (const Value& x : what.list()) {
      if (check(need_string(x, starts ? "startswith" : "endswith"))) return true;
    }
    return false;
  }
  return check(need_string(what, starts ? "startswith" : "endswith"));
}

Value string_method(const std::string& s, const std::string& name, Args& a) {
  if (name == "strip") return strip(s, arg(a, 0, "chars"), true, true);
  if (name == "lstrip") return strip(s, arg(a, 0, "chars"), true, false);
  if (name == "rstrip") return strip(s, arg(a, 0, "chars"), false, true);
  if (name == "split" || name == "rsplit") {
    return split(s, arg(a, 0, "sep"), arg(a, 1, "maxsplit", Value(-1)).as_int(), name == "rsplit");
  }
  if (name == "splitlines") {
    List out;
    size_t pos = 0;
    while (pos < s.size()) {
      size_t at = s.find_first_of("\r\n", pos);
      if (at == std::string::npos) {
        out.emplace_back(s.substr(pos));
        break;
      }
      out.emplace_back(s.substr(pos, at - pos));
      pos = at + ((s[at] == '\r' && at + 1 < s.size() && s[at + 1] == '\n') ? 2 : 1);
    }
    return out;
  }
  if (name == "startswith") return starts_or_ends(s, arg(a, 0, "prefix"), true);
  if (name == "endswith") return starts_or_ends(s, arg(a, 0, "suffix"), false);
  if (name == "upper") return map_ascii(s, [](int c) { return std::toupper(c); });
  if (name == "lower") return map_ascii(s, [](int c) { return std::tolower(c); });
  if (name == "title") return title(s);
  if (name == "capitalize") return capitalize(s);
  if (name == "replace") {
    return replace(s, need_string(arg(a, 0, "old"), "replace"), need_string(arg(a, 1, "new"), "replace"),
                   arg(a, 2, "count", Value(-1)).as_int());
  }
  if (name == "find") return code_point_index(s, s.find(need_string(arg(a, 0, "sub"), "find")));
  if (name == "rfind") return code_point_index(s, s.rfind(need_string(arg(a, 0, "sub"), "rfind")));
  if (name == "count") {
    const std::string sub = need_string(arg(a, 0, "sub"), "count");  // a copy: arg() returns a temporary
    if (sub.empty()) return static_cast<int64_t>(code_points(s).size()) + 1;
    int64_t n = 0;
    for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
    return n;
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value& item : iterate(arg(a, 0, "iterable"))) {
      if (!first) out += s;
      first = false;
      out += need_string(item, "join");
    }
    return out;
  }
  auto all_of = [&](auto pred) {
    if (s.empty()) return false;
    for (char c : s) {
      if (!pred(static_cast<unsigned char>(c))) return false;
    }
    return true;
  };
  if (name == "isdigit") return all_of([](unsigned char c) { return std::isdigit(c) != 0; });
  if (name == "isspace") return all_of([](unsigned char c) { return std::isspace(c) != 0; });
  if (name == "isalpha") return all_of([](unsigned char c) { return std::isalpha(c) != 0; });
  if (name == "isalnum") return all_of([](unsigned char c) { return std::isalnum(c) != 0; });
  throw Error("str has no method '" + name + "'");
}

bool is_string_method(const std::string& name) {
  static const char* kNames[] = {"strip",    "lstrip", "rstrip", "split",   "rsplit",     "splitlines", "startswith",
                                 "endswith", "upper",  "lower",  "title",   "capitalize", "replace",    "find",
                                 "rfind",    "count",  "join",   "isdigit", "isspace",    "isalpha",    "isalnum"};
  return std::find_if(std::begin(kNames), std::end(kNames), [&](const char* n) { return name == n; }) !=
         std::end(kNames);
}

// --- lists ----------------------------------------------------------------------------------

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(code_points(v.as_string()).size());
    case Value::Kind::kList:
      return static_cast<int64_t>(v.list().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.dict().size());
    default:
      throw Error("object of type '" + v.type_name() + "' has no len()");
  }
}

// Jinja's attribute lookup for filters: "a.b" walks nested items.
Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    int64_t index = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
    const bool numeric = !part.empty() && ec == std::errc() && end == part.data() + part.size();
    cur = numeric ? get_item(cur, Value(index)) : get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

// Args from position `from` on, as a new Args (for select's test, map's filter).
Args rest_args(const Args& a, size_t from) {
  Args out;
  for (size_t i = from; i < a.positional.size(); ++i) out.positional.push_back(a.positional[i]);
  out.keyword = a.keyword;
  return out;
}

Value select(const Value& seq, Args& a, bool by_attribute, bool keep) {
  size_t test_at = by_attribute ? 1 : 0;
  std::string attribute = by_attribute ? need_string(arg(a, 0, "attribute"), "selectattr") : "";
  bool has_test = a.positional.size() > test_at;
  std::string test = has_test ? need_string(a.positional[test_at], "select") : "";
  List out;
  for (const Value& item : iterate(seq)) {
    Value subject = by_attribute ? attribute_path(item, attribute) : item;
    Args test_args = rest_args(a, test_at + 1);
    bool passed = has_test ? apply_test(test, subject, test_args) : subject.truthy();
    if (passed == keep) out.push_back(item);
  }
  return out;
}

Value sorted(const Value& seq, Args& a) {
  List items = iterate(seq);
  bool reverse = arg(a, 0, "reverse", Value(false)).truthy();
  bool case_sensitive = arg(a, 1, "case_sensitive", Value(false)).truthy();
  Value attribute = arg(a, 2, "attribute");
  auto key = [&](const Value& v) {
    Value k = attribute.is_undefined() || attribute.is_none() ? v : attribute_path(v, need_string(attribute, "sort"));
    if (!case_sensitive && k.is_string()) return Value(map_ascii(k.as_string(), [](int c) { return std::tolower(c); }));
    return k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    int c = compare(key(x), key(y));
    return reverse ? c > 0 : c < 0;
  });
  return items;
}

std::string indent(const std::string& s, Args& a) {
  Value width = arg(a, 0, "width", Value(4));
  // Python: " " * n is "" for n <= 0; capped so a template cannot ask for all memory.
  std::string pad = width.is_string()
                        ? width.as_string()
                        : std::string(static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 4096)), ' ');
  bool first = arg(a, 1, "first", Value(false)).truthy();
  bool blank = arg(a, 2, "blank", Value(false)).truthy();
  std::string out;
  size_t pos = 0;
  bool is_first = true;
  std::string text = s;
  while (true) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    bool indent_line = is_first ? first : (blank || !line.empty());
    if (indent_line && !(is_first && line.empty() && !blank && !first)) out += pad;
    out += line;
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
    is_first = false;
  }
  return out;
}

JsonStyle json_style(Args& a) {
  JsonStyle style;
  if (arg(a, 0, "ensure_ascii", Value(false)).truthy()) throw Error("tojson: ensure_ascii=True is not supported");
  Value indent = arg(a, 1, "indent");
  if (!indent.is_undefined() && !indent.is_none()) style.indent = static_cast<int>(indent.as_int());
  Value seps = arg(a, 2, "separators");
  if (seps.is_list() && seps.list().size() == 2) {
    style.item_separator = need_string(seps.list()[0], "tojson separators");
    style.key_separator = need_string(seps.list()[1], "tojson separators");
  }
  style.sort_keys = arg(a, 3, "sort_keys", Value(false)).truthy();
  return style;
}

using FilterFn = std::function<Value(const Value&, Args&)>;

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> table = [] {
    std::map<std::string, FilterFn> t;
    t["abs"] = [](const Value& v, Args&) -> Value {
      return v.kind() == Value::Kind::kFloat ? Value(std::fabs(v.as_float()))
                                             : Value(static_cast<int64_t>(std::llabs(v.as_int())));
    };
    t["capitalize"] = [](const Value& v, Args&) -> Value { return capitalize(v.str()); };
    t["count"] = [](const Value& v, Args&) -> Value { return length(v); };
    t["length"] = t["count"];
    t["default"] = [](const Value& v, Args& a) -> Value {
      bool boolean = arg(a, 1, "boolean", Value(false)).truthy();
      if (v.is_undefined() || (boolean && !v.truthy())) return arg(a, 0, "default_value", Value(""));
      return v;
    };
    t["d"] = t["default"];
    t["dictsort"] = [](const Value& v, Args& a) -> Value {
      if (!v.is_dict()) throw Error("dictsort: expected a dict, got " + v.type_name());
      bool by_value = arg(a, 1, "by", Value("key")).str() == "value";
      bool reverse = arg(a, 2, "reverse", Value(false)).truthy();
      List items;
      for (const auto& [k, x] : v.dict()) items.push_back(Value::tuple(List{Value(k), x}));
      std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) {
        int c = compare(p.list()[by_value ? 1 : 0], q.list()[by_value ? 1 : 0]);
        return reverse ? c > 0 : c < 0;
      });
      return items;
    };
    t["first"] = [](const Value& v, Args&) -> Value {
      List items = iterate(v);
      return items.empty() ? Value::undefined("first of an empty sequence") : items.front();
    };
    t["last"] = [](const Value& v, Args&) -> Value {
      List items = iterate(v);
      return items.empty() ? Value::undefined("last of an empty sequence") : items.back();
    };
    t["float"] = [](const Value& v, Args& a) -> Value {
      if (v.is_number()) return v.as_float();
      try {
        return std::stod(v.str());
      } catch (const std::exception&) {
        return arg(a, 0, "default", Value(0.0));
      }
    };
    t["int"] = [](const Value& v, Args& a) -> Value {
      if (v.is_number()) return v.as_int();
      try {
        return static_cast<int64_t>(std::stoll(v.str()));
      } catch (const std::exception&) {
        return arg(a, 0, "default", Value(0));
      }
    };
    t["indent"] = [](const Value& v, Args& a) -> Value { return indent(v.str(), a); };
    t["items"] = [](const Value& v, Args&) -> Value {
      List out;
      if (v.is_undefined()) return out;
      if (!v.is_dict()) throw Error("items: expected a dict, got " + v.type_name());
      for (const auto& [k, x] : v.dict()) out.push_back(Value::tuple(List{Value(k), x}));
      return out;
    };
    t["join"] = [](const Value& v, Args& a) -> Value {
      std::string sep = arg(a, 0, "d", Value("")).str();
      Value attribute = arg(a, 1, "attribute");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(v)) {
        if (!first) out += sep;
        first = false;
        out += (attribute.is_undefined() ? item : attribute_path(item, attribute.str())).str();
      }
      return out;
    };
    t["list"] = [](const Value& v, Args&) -> Value { return iterate(v); };
    t["lower"] = [](const Value& v, Args&) -> Value {
      return map_ascii(v.str(), [](int c) { return std::tolower(c); });
    };
    t["upper"] = [](const Value& v, Args&) -> Value {
      return map_ascii(v.str(), [](int c) { return std::toupper(c); });
    };
    t["map"] = [](const Value& v, Args& a) -> Value {
      List out;
      Value attribute = arg(a, 99, "attribute");
      if (!attribute.is_undefined()) {
        Value fallback = arg(a, 99, "default");
        for (const Value& item : iterate(v)) {
          Value x = attribute_path(item, attribute.str());
          out.push_back(x.is_undefined() && !fallback.is_undefined() ? fallback : x);
        }
        return out;
      }
      std::string filter = need_string(arg(a, 0, "filter"), "map");
      if (!is_filter(filter)) throw Error("map: unknown filter '" + filter + "'");
      for (const Value& item : iterate(v)) {
        Args filter_args = rest_args(a, 1);
        out.push_back(apply_filter(filter, item, filter_args));
      }
      return out;
    };
    t["max"] = [](const Value& v, Args&) -> Value {
      List items = iterate(v);
      if (items.empty()) return Value::undefined("max of an empty sequence");
      return *std::max_element(items.begin(), items.end(), [](auto& x, auto& y) { return compare(x, y) < 0; });
    };
    t["min"] = [](const Value& v, Args&) -> Value {
      List items = iterate(v);
      if (items.empty()) return Value::undefined("min of an empty sequence");
      return *std::min_element(items.begin(), items.end(), [](auto& x, auto& y) { return compare(x, y) < 0; });
    };
    t["select"] = [](const Value& v, Args& a) -> Value { return select(v, a, false, true); };
    t["reject"] = [](const Value& v, Args& a) -> Value { return select(v, a, false, false); };
    t["selectattr"] = [](const Value& v, Args& a) -> Value { return select(v, a, true, true); };
    t["rejectattr"] = [](const Value& v, Args& a) -> Value { return select(v, a, true, false); };
    t["replace"] = [](const Value& v, Args& a) -> Value {
      return replace(v.str(), arg(a, 0, "old").str(), arg(a, 1, "new").str(), arg(a, 2, "count", Value(-1)).as_int());
    };
    t["reverse"] = [](const Value& v, Args&) -> Value {
      if (v.is_string()) {
        auto cps = code_points(v.as_string());
        std::string out;
        for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
        return out;
      }
      List items = iterate(v);
      std::reverse(items.begin(), items.end());
      return items;
    };
    t["round"] = [](const Value& v, Args& a) -> Value {
      int64_t precision = arg(a, 0, "precision", Value(0)).as_int();
      std::string method = arg(a, 1, "method", Value("common")).str();
      double scale = std::pow(10.0, static_cast<double>(precision));
      double x = v.as_float() * scale;
      // "common" is Python's round(): ties go to the even neighbour.
      x = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
      return x / scale;
    };
    t["safe"] = [](const Value& v, Args&) -> Value { return v; };
    t["sort"] = [](const Value& v, Args& a) -> Value { return sorted(v, a); };
    t["string"] = [](const Value& v, Args&) -> Value { return v.str(); };
    t["sum"] = [](const Value& v, Args& a) -> Value {
      Value attribute = arg(a, 0, "attribute");
      Value total = arg(a, 1, "start", Value(0));
      for (const Value& item : iterate(v)) {
        Value x = attribute.is_undefined() ? item : attribute_path(item, attribute.str());
        bool is_float = total.kind() == Value::Kind::kFloat || x.kind() == Value::Kind::kFloat;
        total = is_float ? Value(total.as_float() + x.as_float()) : Value(total.as_int() + x.as_int());
      }
      return total;
    };
    t["title"] = [](const Value& v, Args&) -> Value { return title(v.str()); };
    t["tojson"] = [](const Value& v, Args& a) -> Value { return to_json(v, json_style(a)); };
    t["trim"] = [](const Value& v, Args& a) -> Value { return strip(v.str(), arg(a, 0, "chars"), true, true); };
    t["unique"] = [](const Value& v, Args&) -> Value {
      List out;
      for (const Value& item : iterate(v)) {
        if (std::none_of(out.begin(), out.end(), [&](const Value& x) { return equal(x, item); })) out.push_back(item);
      }
      return out;
    };
    t["wordcount"] = [](const Value& v, Args&) -> Value {
      return static_cast<int64_t>(split(v.str(), Value(), -1, false).size());
    };
    return t;
  }();
  return table;
}

using TestFn = std::function<bool(const Value&, Args&)>;

const std::map<std::string, TestFn>& tests() {
  static const std::map<std::string, TestFn> table = [] {
    std::map<std::string, TestFn> t;
    using K = Value::Kind;
    t["boolean"] = [](const Value& v, Args&) { return v.kind() == K::kBool; };
    t["callable"] = [](const Value& v, Args&) { return v.is_function(); };
    t["defined"] = [](const Value& v, Args&) { return !v.is_undefined(); };
    t["undefined"] = [](const Value& v, Args&) { return v.is_undefined(); };
    t["divisibleby"] = [](const Value& v, Args& a) {
      int64_t n = arg(a, 0, "num").as_int();
      return n != 0 && v.as_int() % n == 0;
    };
    t["eq"] = [](const Value& v, Args& a) { return equal(v, arg(a, 0, "other")); };
    t["equalto"] = t["eq"];
    t["ne"] = [](const Value& v, Args& a) { return !equal(v, arg(a, 0, "other")); };
    t["lt"] = [](const Value& v, Args& a) { return compare(v, arg(a, 0, "other")) < 0; };
    t["le"] = [](const Value& v, Args& a) { return compare(v, arg(a, 0, "other")) <= 0; };
    t["gt"] = [](const Value& v, Args& a) { return compare(v, arg(a, 0, "other")) > 0; };
    t["ge"] = [](const Value& v, Args& a) { return compare(v, arg(a, 0, "other")) >= 0; };
    t["escaped"] = [](const Value&, Args&) { return false; };
    t["even"] = [](const Value& v, Args&) { return v.as_int() % 2 == 0; };
    t["odd"] = [](const Value& v, Args&) { return v.as_int() % 2 != 0; };
    t["false"] = [](const Value& v, Args&) { return v.kind() == K::kBool && !v.as_bool(); };
    t["true"] = [](const Value& v, Args&) { return v.kind() == K::kBool && v.as_bool(); };
    t["float"] = [](const Value& v, Args&) { return v.kind() == K::kFloat; };
    t["integer"] = [](const Value& v, Args&) { return v.kind() == K::kInt; };
    t["number"] = [](const Value& v, Args&) { return v.is_number(); };
    t["in"] = [](const Value& v, Args& a) {
      Value seq = arg(a, 0, "seq");
      if (seq.is_string()) return seq.as_string().find(need_string(v, "in")) != std::string::npos;
      if (seq.is_dict()) return v.is_string() && seq.find(v.as_string()) != nullptr;
      for (const Value& x : iterate(seq)) {
        if (equal(x, v)) return true;
      }
      return false;
    };
    t["iterable"] = [](const Value& v, Args&) { return v.is_string() || v.is_list() || v.is_dict(); };
    t["sequence"] = t["iterable"];
    t["mapping"] = [](const Value& v, Args&) { return v.is_dict(); };
    t["none"] = [](const Value& v, Args&) { return v.is_none(); };
    t["string"] = [](const Value& v, Args&) { return v.is_string(); };
    t["lower"] = [](const Value& v, Args&) {
      return v.is_string() && map_ascii(v.as_string(), [](int c) { return std::tolower(c); }) == v.as_string();
    };
    t["upper"] = [](const Value& v, Args&) {
      return v.is_string() && map_ascii(v.as_string(), [](int c) { return std::toupper(c); }) == v.as_string();
    };
    t["sameas"] = [](const Value& v, Args& a) {
      Value other = arg(a, 0, "other");
      if (v.kind() != other.kind()) return false;
      switch (v.kind()) {
        case K::kNone:
        case K::kUndefined:
          return true;
        case K::kBool:
          return v.as_bool() == other.as_bool();
        case K::kList:
          return &v.list() == &other.list();
        case K::kDict:
          return &v.dict() == &other.dict();
        default:
          return equal(v, other);
      }
    };
    return t;
  }();
  return table;
}

}  // namespace

bool is_filter(const std::string& name) { return filters().count(name) != 0; }
bool is_test(const std::string& name) { return tests().count(name) != 0; }

Value apply_filter(const std::string& name, const Value& subject, Args& args) {
  auto it = filters().find(name);
  if (it == filters().end()) throw Error("unknown filter '" + name + "'");
  // Jinja's Undefined prints as "" and iterates as empty, so most filters take it; these
  // need a value.
  if (subject.is_undefined() && (name == "tojson" || name == "abs" || name == "round" || name == "dictsort")) {
    throw Error((subject.as_string().empty() ? std::string("value") : subject.as_string()) + " is undefined (filter '" +
                name + "')");
  }
  return it->second(subject, args);
}

bool apply_test(const std::string& name, const Value& subject, Args& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw Error("unknown test '" + name + "'");
  return it->second(subject, args);
}

List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.list();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& kv : v.dict()) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      List out;
      for (auto cp : code_points(v.as_string())) out.emplace_back(std::string(cp));
      return out;
    }
    default:
      throw Error("'" + v.type_name() + "' object is not iterable");
  }
}

namespace {

[[noreturn]] void undefined_error(const Value& v) {
  throw Error(v.as_string().empty() ? std::string("value is undefined") : v.as_string() + " is undefined");
}

Value bound(const Value& object, const std::string& name) {
  return Value::function(name, [object, name](Args& a) -> Value {
    if (object.is_string()) return string_method(object.as_string(), name, a);
    if (object.is_dict()) {
      if (name == "get") {
        const Value* v = object.find(arg(a, 0, "key").str());
        return v ? *v : arg(a, 1, "default", Value::none());
      }
      List out;
      for (const auto& [k, v] : object.dict()) {
        if (name == "keys") {
          out.emplace_back(k);
        } else if (name == "values") {
          out.push_back(v);
        } else {
          out.push_back(Value::tuple(List{Value(k), v}));
        }
      }
      return out;
    }
    // list.index / list.count
    Value x = arg(a, 0, "value");
    int64_t count = 0;
    for (size_t i = 0; i < object.list().size(); ++i) {
      if (equal(object.list()[i], x)) {
        if (name == "index") return static_cast<int64_t>(i);
        ++count;
      }
    }
    if (name == "index") throw Error(x.repr() + " is not in list");
    return count;
  });
}

}  // namespace

Value get_attribute(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      undefined_error(object);
    case Value::Kind::kDict:
      if (name == "items" || name == "keys" || name == "values" || name == "get") return bound(object, name);
      if (const Value* v = object.find(name)) return *v;
      break;
    case Value::Kind::kString:
      if (is_string_method(name)) return bound(object, name);
      break;
    case Value::Kind::kList:
      if (name == "index" || name == "count") return bound(object, name);
      break;
    default:
      break;
  }
  return Value::undefined("'" + object.type_name() + " object' has no attribute '" + name + "'");
}

Value get_item(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      undefined_error(object);
    case Value::Kind::kDict:
      if (key.is_string()) {
        if (const Value* v = object.find(key.as_string())) return *v;
        return Value::undefined("'dict object' has no attribute '" + key.as_string() + "'");
      }
      break;
    case Value::Kind::kList:
    case Value::Kind::kString:
      if (key.kind() == Value::Kind::kInt || key.kind() == Value::Kind::kBool) {
        int64_t i = key.as_int();
        if (object.is_list()) {
          auto n = static_cast<int64_t>(object.list().size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return object.list()[static_cast<size_t>(i)];
        } else {
          auto cps = code_points(object.as_string());
          auto n = static_cast<int64_t>(cps.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return std::string(cps[static_cast<size_t>(i)]);
        }
        return Value::undefined(object.type_name() + " index " + std::to_string(key.as_int()) + " out of range");
      }
      if (key.is_string()) return get_attribute(object, key.as_string());
      break;
    default:
      break;
  }
  return Value::undefined("'" + object.type_name() + " object' has no item " + key.repr());
}

Value get_slice(const Value& object, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (object.is_undefined()) undefined_error(object);
  if (!object.is_list() && !object.is_string()) throw Error("'" + object.type_name() + "' object is not subscriptable");
  std::vector<std::string_view> cps;
  if (object.is_string()) cps = code_points(object.as_string());
  auto n = static_cast<int64_t>(object.is_list() ? object.list().size() : cps.size());
  auto given = [](const Value& v) { return !v.is_undefined() && !v.is_none(); };
  int64_t step = given(step_v) ? step_v.as_int() : 1;
  if (step == 0) throw Error("slice step cannot be zero");
  // Python's slice.indices().
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (!given(v)) return fallback;
    int64_t i = v.as_int();
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t start = clamp(start_v, step > 0 ? 0 : n - 1);
  int64_t stop = clamp(stop_v, step > 0 ? n : -1);
  List items;
  std::string text;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (object.is_list()) {
      items.push_back(object.list()[static_cast<size_t>(i)]);
    } else {
      text += cps[static_cast<size_t>(i)];
    }
  }
  if (object.is_list()) return items;
  return text;
}

Dict builtin_globals() {
  Dict g;
  g.emplace_back("raise_exception", Value::function("raise_exception", [](Args& a) -> Value {
                   throw Error("raise_exception: " + arg(a, 0, "message").str());
                 }));
  g.emplace_back("strftime_now", Value::function("strftime_now", [](Args& a) -> Value {
                   std::time_t now = std::time(nullptr);
                   std::tm local{};
                   localtime_r(&now, &local);
                   char buf[256];
                   size_t n = std::strftime(buf, sizeof(buf), need_string(arg(a, 0, "format"), "strftime_now").c_str(),
                                            &local);
                   return std::string(buf, n);
                 }));
  g.emplace_back("range", Value::function("range", [](Args& a) -> Value {
                   int64_t start = 0, stop = 0, step = 1;
                   if (a.positional.size() == 1) {
                     stop = a.positional[0].as_int();
                   } else if (a.positional.size() >= 2) {
                     start = a.positional[0].as_int();
                     stop = a.positional[1].as_int();
                     if (a.positional.size() > 2) step = a.positional[2].as_int();
                   }
                   if (step == 0) throw Error("range() arg 3 must not be zero");
                   // Jinja's sandbox caps ranges (MAX_RANGE) so a template cannot ask for all memory.
                   constexpr int64_t kMaxRange = 100000;
                   if ((stop - start) / step > kMaxRange) throw Error("range() is too big (over 100000 items)");
                   List out;
                   for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.emplace_back(i);
                   return out;
                 }));
  auto make_dict = [](Args& a) -> Value {
    Dict d;
    for (const Value& p : a.positional) {
      if (!p.is_dict()) throw Error("namespace()/dict(): positional arguments must be dicts");
      for (const auto& kv : p.dict()) d.push_back(kv);
    }
    for (auto& kv : a.keyword) d.push_back(kv);
    return d;
  };
  g.emplace_back("namespace", Value::function("namespace", [make_dict](Args& a) -> Value {
                   return Value::namespace_of(make_dict(a).dict());
                 }));
  g.emplace_back("dict", Value::function("dict", make_dict));
  return g;
}

}  // namespace r1kit::jinja
