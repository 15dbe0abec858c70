// Template::render: walks the Program (src/jinja_ast.h) with Jinja's scoping: `for` and
// macro bodies get a scope of their own (a `set` inside a loop is not seen after it, hence
// namespace()), `if` does not; macros close over the scope they were defined in. Errors are
// prefixed with the template's name and the line and column of the innermost expression.
#include <cmath>

#include "src/jinja_ast.h"
#include "src/jinja_builtins.h"
#include "src/jinja_template.h"

namespace r1kit::jinja {
namespace {

// An error that already carries its template location (inner locations win).
struct LocatedError : Error {
  using Error::Error;
};

struct Frame {
  Dict vars;
};
using Scope = std::vector<std::shared_ptr<Frame>>;

enum class Flow { kNormal, kBreak, kContinue };

// Limits that keep a hostile template an error rather than a crash: nested macro calls (the
// renderer recurses), and the size of `'x' * n`.
constexpr int kMaxCallDepth = 200;
constexpr uint64_t kMaxRepeat = uint64_t{1} << 28;

class Renderer {
 public:
  Renderer(const Program& program, const Dict& variables) : program_(program) {
    auto globals = std::make_shared<Frame>();
    globals->vars = builtin_globals();
    for (const auto& kv : variables) set(*globals, kv.first, kv.second);
    scope_.push_back(std::move(globals));
    scope_.push_back(std::make_shared<Frame>());  // the template's own `set`s
  }

  Template::Output run() {
    Template::Output output;
    out_ = &output.text;
    spans_ = &output.generation_spans;
    render(program_.body);
    return output;
  }

 private:
  [[noreturn]] void fail(Location loc, const std::string& what) const {
    throw LocatedError(program_.name + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column) + ": " + what);
  }

  static void set(Frame& frame, const std::string& name, Value v) {
    for (auto& [k, old] : frame.vars) {
      if (k == name) {
        old = std::move(v);
        return;
      }
    }
    frame.vars.emplace_back(name, std::move(v));
  }

  Value lookup(const std::string& name) const {
    for (auto it = scope_.rbegin(); it != scope_.rend(); ++it) {
      for (const auto& [k, v] : (*it)->vars) {
        if (k == name) return v;
      }
    }
    return Value::undefined("'" + name + "'");
  }

  // --- statements -------------------------------------------------------------------------

  Flow render(const Body& body) {
    for (const Node& node : body) {
      Flow flow = render(node);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow render(const Node& node) {
    switch (node.kind) {
      case Node::Kind::kText:
        *out_ += node.text;
        return Flow::kNormal;
      case Node::Kind::kOutput:
        *out_ += eval(*node.expr).str();
        return Flow::kNormal;
      case Node::Kind::kIf:
        for (const auto& [cond, body] : node.branches) {
          if (eval(*cond).truthy()) return render(body);
        }
        return render(node.else_body);
      case Node::Kind::kFor:
        return render_for(node);
      case Node::Kind::kSet:
        assign(node, eval(*node.expr));
        return Flow::kNormal;
      case Node::Kind::kSetBlock:
        assign(node, Value(capture(node.body)));
        return Flow::kNormal;
      case Node::Kind::kMacro:
        set(*scope_.back(), node.name, macro(node));
        return Flow::kNormal;
      case Node::Kind::kBreak:
        return Flow::kBreak;
      case Node::Kind::kContinue:
        return Flow::kContinue;
      case Node::Kind::kGeneration: {
        size_t begin = out_->size();
        Flow flow = render(node.body);
        if (spans_) spans_->emplace_back(begin, out_->size());
        return flow;
      }
    }
    return Flow::kNormal;
  }

  void assign(const Node& node, Value v) {
    if (node.targets.size() == 1) {
      set(*scope_.back(), node.targets[0], std::move(v));
      return;
    }
    Value ns = lookup(node.targets[0]);
    if (!ns.is_namespace()) fail(node.loc, "cannot set an attribute of '" + node.targets[0] + "' (not a namespace)");
    ns.set(node.targets[1], std::move(v));
  }

  // Renders `body` into a string of its own (block set, macro call).
  std::string capture(const Body& body) {
    std::string text;
    std::string* saved_out = out_;
    auto* saved_spans = spans_;
    out_ = &text;
    spans_ = nullptr;  // generation spans are offsets into the template's output only
    render(body);
    out_ = saved_out;
    spans_ = saved_spans;
    return text;
  }

  Flow render_for(const Node& node) {
    List all = iterate_at(eval(*node.expr), node.loc);
    scope_.push_back(std::make_shared<Frame>());
    Frame& frame = *scope_.back();
    // The `if` filter runs before the loop, so loop.index and loop.length count kept items.
    List items;
    for (Value& item : all) {
      if (node.filter) {
        bind_targets(frame, node, item);
        if (!eval(*node.filter).truthy()) continue;
      }
      items.push_back(std::move(item));
    }
    auto n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      bind_targets(frame, node, items[static_cast<size_t>(i)]);
      Dict loop;
      loop.emplace_back("index0", Value(i));
      loop.emplace_back("index", Value(i + 1));
      loop.emplace_back("revindex0", Value(n - i - 1));
      loop.emplace_back("revindex", Value(n - i));
      loop.emplace_back("first", Value(i == 0));
      loop.emplace_back("last", Value(i == n - 1));
      loop.emplace_back("length", Value(n));
      loop.emplace_back("depth", Value(1));
      loop.emplace_back("depth0", Value(0));
      loop.emplace_back("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("loop.previtem"));
      loop.emplace_back("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("loop.nextitem"));
      loop.emplace_back("cycle", Value::function("loop.cycle", [i](Args& a) -> Value {
                          if (a.positional.empty()) throw Error("loop.cycle: no items");
                          return a.positional[static_cast<size_t>(i) % a.positional.size()];
                        }));
      set(frame, "loop", Value(std::move(loop)));
      if (render(node.body) == Flow::kBreak) break;
    }
    if (items.empty()) render(node.else_body);
    scope_.pop_back();
    return Flow::kNormal;
  }

  void bind_targets(Frame& frame, const Node& node, const Value& item) {
    if (node.targets.size() == 1) {
      set(frame, node.targets[0], item);
      return;
    }
    List parts = iterate_at(item, node.loc);
    if (parts.size() != node.targets.size()) {
      fail(node.loc, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                         std::to_string(node.targets.size()) + " loop variables");
    }
    for (size_t i = 0; i < parts.size(); ++i) set(frame, node.targets[i], parts[i]);
  }

  List iterate_at(const Value& v, Location loc) {
    try {
      return iterate(v);
    } catch (const LocatedError&) {
      throw;
    } catch (const Error& e) {
      fail(loc, e.what());
    }
  }

  Value macro(const Node& node) {
    // The macro is stored in one of these frames: holding them strongly would be a cycle
    // (frame -> macro -> frame) that leaks every frame a template with a macro renders. A
    // macro never outlives the render, and its frames live as long as the render.
    std::vector<std::weak_ptr<Frame>> closure(scope_.begin(), scope_.end());
    return Value::function(node.name, [this, &node, closure](Args& args) -> Value {
      if (call_depth_ >= kMaxCallDepth) throw Error("macro calls nested deeper than 200 (a recursive macro?)");
      struct DepthGuard {
        int& depth;
        explicit DepthGuard(int& d) : depth(++d) {}
        ~DepthGuard() { --depth; }
      } guard(call_depth_);
      auto frame = std::make_shared<Frame>();
      size_t next = 0;
      for (const auto& [param, def] : node.params) {
        Value v;
        bool found = false;
        for (const auto& [k, x] : args.keyword) {
          if (k == param) {
            v = x;
            found = true;
          }
        }
        if (!found && next < args.positional.size()) {
          v = args.positional[next++];
          found = true;
        }
        if (!found) v = def ? eval(*def) : Value::undefined("'" + param + "'");
        set(*frame, param, std::move(v));
      }
      Scope saved = std::move(scope_);
      scope_.clear();
      for (const auto& weak : closure) {
        if (auto f = weak.lock()) scope_.push_back(std::move(f));
      }
      scope_.push_back(frame);
      std::string text;
      try {
        text = capture(node.body);
      } catch (...) {
        scope_ = std::move(saved);
        throw;
      }
      scope_ = std::move(saved);
      return Value(std::move(text));
    });
  }

  // --- expressions ------------------------------------------------------------------------

  Value eval(const Expr& e) {
    try {
      return eval_unlocated(e);
    } catch (const LocatedError&) {
      throw;
    } catch (const Error& err) {
      fail(e.loc, err.what());
    }
  }

  Args eval_args(const Expr& e) {
    Args args;
    for (const auto& item : e.items) args.positional.push_back(eval(*item));
    for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, eval(*v));
    return args;
  }

  Value eval_unlocated(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return lookup(e.name);
      case Expr::Kind::kList: {
        List items;
        for (const auto& item : e.items) items.push_back(eval(*item));
        return e.name == "tuple" ? Value::tuple(std::move(items)) : Value(std::move(items));
      }
      case Expr::Kind::kDict: {
        Value dict{Dict{}};
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          Value key = eval(*e.items[i]);
          if (!key.is_string()) throw Error("dict keys must be strings here, got " + key.type_name());
          dict.set(key.as_string(), eval(*e.items[i + 1]));
        }
        return dict;
      }
      case Expr::Kind::kAttribute:
        return get_attribute(eval(*e.a), e.name);
      case Expr::Kind::kSubscript:
        return get_item(eval(*e.a), eval(*e.b));
      case Expr::Kind::kSlice: {
        Value object = eval(*e.a);
        auto part = [&](size_t i) { return e.items[i] ? eval(*e.items[i]) : Value(); };
        return get_slice(object, part(0), part(1), part(2));
      }
      case Expr::Kind::kCall: {
        Value callee = eval(*e.a);
        if (callee.is_undefined()) throw Error(callee.as_string() + " is undefined");
        if (!callee.is_function()) throw Error("'" + callee.type_name() + "' object is not callable");
        Args args = eval_args(e);
        return callee.func()(args);
      }
      case Expr::Kind::kFilter: {
        Value subject = eval(*e.a);
        Args args = eval_args(e);
        return apply_filter(e.name, subject, args);
      }
      case Expr::Kind::kTest: {
        Value subject = eval(*e.a);
        Args args = eval_args(e);
        return apply_test(e.name, subject, args) != e.negated;
      }
      case Expr::Kind::kUnary: {
        Value v = eval(*e.a);
        if (e.name == "not") return !v.truthy();
        if (!v.is_number()) throw Error("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
        if (e.name == "+") return v;
        return v.kind() == Value::Kind::kFloat ? Value(-v.as_float()) : Value(-v.as_int());
      }
      case Expr::Kind::kBinary:
        return binary(e.name, eval(*e.a), eval(*e.b));
      case Expr::Kind::kCompare: {
        Value left = eval(*e.items[0]);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.items[i + 1]);
          if (!compare_op(e.ops[i], left, right)) return false;
          left = std::move(right);
        }
        return true;
      }
      case Expr::Kind::kAnd: {
        Value left = eval(*e.a);
        return left.truthy() ? eval(*e.b) : left;
      }
      case Expr::Kind::kOr: {
        Value left = eval(*e.a);
        return left.truthy() ? left : eval(*e.b);
      }
      case Expr::Kind::kConditional:
        if (eval(*e.b).truthy()) return eval(*e.a);
        return e.c ? eval(*e.c) : Value::undefined("the else of a conditional expression");
    }
    return Value();
  }

  static bool compare_op(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return equal(a, b);
    if (op == "!=") return !equal(a, b);
    if (op == "in" || op == "not in") {
      Args args;
      args.positional.push_back(b);
      return apply_test("in", a, args) == (op == "in");
    }
    int c = compare(a, b);
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
  }

  static Value binary(const std::string& op, const Value& a, const Value& b) {
    if (op == "~") return a.str() + b.str();
    if (a.is_undefined()) throw Error(a.as_string() + " is undefined");
    if (b.is_undefined()) throw Error(b.as_string() + " is undefined");
    auto type_error = [&]() -> Error {
      return Error("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
    };
    if (op == "+") {
      if (a.is_string() && b.is_string()) return a.as_string() + b.as_string();
      if (a.is_list() && b.is_list()) {
        List out = a.list();
        out.insert(out.end(), b.list().begin(), b.list().end());
        return out;
      }
    }
    if (op == "*" && (a.is_string() || a.is_list()) && b.kind() == Value::Kind::kInt) {
      const size_t unit = a.is_string() ? a.as_string().size() : a.list().size();
      if (b.as_int() > 0 && unit > 0 && static_cast<uint64_t>(b.as_int()) > kMaxRepeat / unit) {
        throw Error("repeating " + a.type_name() + " " + std::to_string(b.as_int()) + " times is too much");
      }
      if (a.is_string()) {
        std::string out;
        for (int64_t i = 0; i < b.as_int(); ++i) out += a.as_string();
        return out;
      }
      List out;
      for (int64_t i = 0; i < b.as_int(); ++i) out.insert(out.end(), a.list().begin(), a.list().end());
      return out;
    }
    if (op == "%" && a.is_string()) throw Error("'%' string formatting is not supported");
    if (!a.is_number() || !b.is_number()) throw type_error();
    bool floats = a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat;
    if (op == "/") {
      if (b.as_float() == 0) throw Error("division by zero");
      return a.as_float() / b.as_float();
    }
    if (floats) {
      double x = a.as_float(), y = b.as_float();
      if (op == "+") return x + y;
      if (op == "-") return x - y;
      if (op == "*") return x * y;
      if (op == "**") return std::pow(x, y);
      if (y == 0) throw Error("float division by zero");
      if (op == "//") return std::floor(x / y);
      return x - std::floor(x / y) * y;  // Python's % has the divisor's sign
    }
    // Python's integers do not overflow; r1kit's are 64-bit, so an overflow is an error.
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    auto overflow = [&]() -> Error { return Error("integer overflow in " + a.str() + " " + op + " " + b.str()); };
    if (op == "+") return __builtin_add_overflow(x, y, &r) ? throw overflow() : r;
    if (op == "-") return __builtin_sub_overflow(x, y, &r) ? throw overflow() : r;
    if (op == "*") return __builtin_mul_overflow(x, y, &r) ? throw overflow() : r;
    if (op == "**") {
      if (y < 0) return std::pow(static_cast<double>(x), static_cast<double>(y));
      r = 1;
      for (int64_t base = x, e = y; e > 0; e >>= 1) {  // square and multiply
        if ((e & 1) && __builtin_mul_overflow(r, base, &r)) throw overflow();
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) throw overflow();
      }
      return r;
    }
    if (y == 0) throw Error("integer division or modulo by zero");
    if (x == INT64_MIN && y == -1) throw overflow();
    int64_t q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0))) --q;  // floor
    if (op == "//") return q;
    return x - q * y;
  }

  const Program& program_;
  Scope scope_;
  std::string* out_ = nullptr;
  std::vector<std::pair<size_t, size_t>>* spans_ = nullptr;
  int call_depth_ = 0;
};

}  // namespace

Template::Output Template::render(const Dict& variables) const {
  try {
    return Renderer(*program_, variables).run();
  } catch (const LocatedError& e) {
    throw Error(e.what());
  }
}

}  // namespace r1kit::jinja
