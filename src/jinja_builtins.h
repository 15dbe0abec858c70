// The filters, tests, methods and globals chat templates call, with Python's and Jinja's
// semantics (jinja2/filters.py, jinja2/tests.py, str/dict methods, transformers' globals).
// Filters: abs, capitalize, count, d, default, dictsort, first, float, indent, int, items,
//   join, last, length, list, lower, map, max, min, reject, rejectattr, replace, reverse,
//   round, safe, select, selectattr, sort, string, sum, title, tojson, trim, unique, upper,
//   wordcount.
// Tests: boolean, callable, defined, divisibleby, eq, equalto, escaped, even, false, float,
//   ge, gt, in, integer, iterable, le, lower, lt, mapping, ne, none, number, odd, sameas,
//   sequence, string, true, undefined, upper.
// Methods: str.{strip, lstrip, rstrip, split, rsplit, splitlines, startswith, endswith,
//   upper, lower, title, capitalize, replace, find, rfind, count, join, isdigit, isspace,
//   isalpha, isalnum}; dict.{items, keys, values, get}; list.{index, count}.
// Globals: raise_exception, strftime_now, range, namespace, dict.
#pragma once
#include <string>

#include "src/jinja_value.h"

namespace r1kit::jinja {

bool is_filter(const std::string& name);
bool is_test(const std::string& name);

Value apply_filter(const std::string& name, const Value& subject, Args& args);
bool apply_test(const std::string& name, const Value& subject, Args& args);

// `object.name` as Jinja's getattr does it: a method bound to the object, a dict's item, or
// undefined (an error only when used).
Value get_attribute(const Value& object, const std::string& name);
// `object[key]`: item first (negative indices count from the end), then attribute.
Value get_item(const Value& object, const Value& key);
// `object[start:stop:step]` on a list or a string (code points); absent parts are undefined.
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// The globals transformers adds to the environment, and Jinja's.
Dict builtin_globals();

// Python's iteration: a list's items, a dict's keys, a string's code points; undefined is
// empty; anything else is an error.
List iterate(const Value& v);

}  // namespace r1kit::jinja
