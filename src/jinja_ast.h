// The parsed form of a Jinja template (src/jinja_template.h): expressions and statements as
// tagged structs, each with the line and column it came from, for errors. Internal to
// jinja_parse.cpp (which builds it) and jinja_render.cpp (which walks it).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/jinja_value.h"

namespace r1kit::jinja {

struct Location {
  int line = 1;
  int column = 1;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
using Keywords = std::vector<std::pair<std::string, ExprPtr>>;

struct Expr {
  enum class Kind {
    kLiteral,      // literal
    kName,         // name
    kList,         // [items...]; a tuple (a, b) when name is "tuple"
    kDict,         // {items[0]: items[1], ...}
    kAttribute,    // a.name
    kSubscript,    // a[b]
    kSlice,        // a[items[0]:items[1]:items[2]], absent parts null
    kCall,         // a(items..., kwargs...)
    kFilter,       // a | name(items..., kwargs...)
    kTest,         // a is [not] name(items...); negated when name_negated
    kUnary,        // name ("-", "+", "not") a
    kBinary,       // a name b: + - * / // % ** ~
    kCompare,      // items[0] ops[0] items[1] ops[1] items[2] ...
    kAnd,          // a and b
    kOr,           // a or b
    kConditional,  // a if b else c (c null: undefined)
  };
  Kind kind = Kind::kLiteral;
  Location loc;
  Value literal;
  std::string name;
  bool negated = false;
  std::vector<std::string> ops;
  std::vector<ExprPtr> items;
  Keywords kwargs;
  ExprPtr a, b, c;
};

struct Node;
using Body = std::vector<Node>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches: (condition, body)...; else_body
    kFor,       // for targets in expr [if filter]: body; else_body when nothing iterated
    kSet,       // set targets = expr (targets: [name] or [name, attribute])
    kSetBlock,  // set targets[0] %}body{% endset
    kMacro,     // macro name(params): body
    kBreak,
    kContinue,
    kGeneration,  // generation: body
  };
  Kind kind = Kind::kText;
  Location loc;
  std::string text;
  std::string name;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  Keywords params;  // macro parameters with their defaults (null: none)
};

struct Program {
  std::string name;  // the template's file, for errors
  Body body;
  bool has_generation = false;
};

}  // namespace r1kit::jinja
