// Equivalence of two answer trees (see math_equal.h).
#include "rewards/math_equal.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>

namespace r1kit::rewards::math {
namespace {

using C = std::complex<double>;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kMaxSumTerms = 2000;

struct Value {
  C s;
  int rows = 0, cols = 0;  // > 0: a matrix in m (row-major)
  std::vector<C> m;
  bool matrix() const { return rows > 0; }
};
using Env = std::map<std::string, C>;

bool finite(C c) { return std::isfinite(c.real()) && std::isfinite(c.imag()); }

C cpow(C a, C b) {
  if (a.imag() == 0 && b.imag() == 0) {
    double x = a.real(), y = b.real();
    if (x >= 0 || y == std::floor(y)) return std::pow(x, y);
    // Odd roots of negatives are real: \sqrt[3]{-8} = -2.
    double inv = 1.0 / y;
    if (std::fabs(inv - std::round(inv)) < 1e-9 && static_cast<long long>(std::round(inv)) % 2 != 0)
      return -std::pow(-x, y);
  }
  if (a == C(0)) return b.real() > 0 ? C(0) : C(kInf);
  return std::pow(a, b);
}

double pseudo_random(const std::string& name, long long index) {
  size_t h = std::hash<std::string>{}(name) ^ (std::hash<long long>{}(index)*0x9e3779b97f4a7c15ULL);
  return 0.5 + static_cast<double>(h % 100003) / 100003.0 * 2.0;
}

std::optional<Value> eval(const Node& n, Env& env, int depth = 0);

std::optional<C> eval_scalar(const Node& n, Env& env, int depth) {
  auto v = eval(n, env, depth);
  if (!v || v->matrix()) return std::nullopt;
  return v->s;
}

std::optional<Value> scalar(C c) {
  Value v;
  v.s = c;
  return v;
}

std::optional<Value> eval(const Node& n, Env& env, int depth) {
  if (depth > 200) return std::nullopt;
  switch (n.kind) {
    case Kind::Num:
      return scalar(n.num);
    case Kind::Sym: {
      auto it = env.find(n.name);
      if (it != env.end()) return scalar(it->second);
      if (n.name == "pi") return scalar(M_PI);
      if (n.name == "e") return scalar(M_E);
      if (n.name == "inf") return scalar(kInf);
      return std::nullopt;
    }
    case Kind::Percent: {
      auto v = eval_scalar(*n.kids[0], env, depth + 1);
      if (!v) return std::nullopt;
      return scalar(*v / 100.0);
    }
    case Kind::Neg: {
      auto v = eval(*n.kids[0], env, depth + 1);
      if (!v) return std::nullopt;
      v->s = -v->s;
      for (auto& x : v->m) x = -x;
      return v;
    }
    case Kind::Add: {
      std::optional<Value> acc;
      for (const auto& k : n.kids) {
        auto v = eval(*k, env, depth + 1);
        if (!v) return std::nullopt;
        if (!acc) {
          acc = v;
        } else if (acc->matrix() != v->matrix()) {
          return std::nullopt;
        } else if (acc->matrix()) {
          if (acc->rows != v->rows || acc->cols != v->cols) return std::nullopt;
          for (size_t i = 0; i < acc->m.size(); ++i) acc->m[i] += v->m[i];
        } else {
          acc->s += v->s;
        }
      }
      return acc;
    }
    case Kind::Mul: {
      std::optional<Value> acc;
      for (const auto& k : n.kids) {
        auto v = eval(*k, env, depth + 1);
        if (!v) return std::nullopt;
        if (!acc) {
          acc = v;
        } else if (!acc->matrix() && !v->matrix()) {
          acc->s *= v->s;
        } else if (!acc->matrix()) {
          for (auto& x : v->m) x *= acc->s;
          acc = v;
        } else if (!v->matrix()) {
          for (auto& x : acc->m) x *= v->s;
        } else {
          if (acc->cols != v->rows) return std::nullopt;
          Value r;
          r.rows = acc->rows;
          r.cols = v->cols;
          r.m.assign(static_cast<size_t>(r.rows * r.cols), C(0));
          for (int i = 0; i < r.rows; ++i)
            for (int j = 0; j < r.cols; ++j)
              for (int k2 = 0; k2 < acc->cols; ++k2)
                r.m[i * r.cols + j] += acc->m[i * acc->cols + k2] * v->m[k2 * v->cols + j];
          acc = r;
        }
      }
      return acc;
    }
    case Kind::Div: {
      auto a = eval(*n.kids[0], env, depth + 1);
      auto b = eval_scalar(*n.kids[1], env, depth + 1);
      if (!a || !b) return std::nullopt;
      if (*b == C(0)) return scalar(C(kInf));
      a->s /= *b;
      for (auto& x : a->m) x /= *b;
      return a;
    }
    case Kind::Pow: {
      auto a = eval_scalar(*n.kids[0], env, depth + 1);
      auto b = eval_scalar(*n.kids[1], env, depth + 1);
      if (!a || !b) return std::nullopt;
      return scalar(cpow(*a, *b));
    }
    case Kind::Func: {
      if (n.name == "det") {
        auto m = eval(*n.kids[0], env, depth + 1);
        if (!m || !m->matrix() || m->rows != m->cols) return std::nullopt;
        const auto& a = m->m;
        if (m->rows == 1) return scalar(a[0]);
        if (m->rows == 2) return scalar(a[0] * a[3] - a[1] * a[2]);
        if (m->rows == 3)
          return scalar(a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
                        a[2] * (a[3] * a[7] - a[4] * a[6]));
        return std::nullopt;
      }
      std::vector<C> args;
      for (const auto& k : n.kids) {
        auto v = eval_scalar(*k, env, depth + 1);
        if (!v) return std::nullopt;
        args.push_back(*v);
      }
      C x = args[0];
      const std::string& f = n.name;
      if (f == "sin") return scalar(std::sin(x));
      if (f == "cos") return scalar(std::cos(x));
      if (f == "tan") return scalar(std::tan(x));
      if (f == "sec") return scalar(1.0 / std::cos(x));
      if (f == "csc") return scalar(1.0 / std::sin(x));
      if (f == "cot") return scalar(1.0 / std::tan(x));
      if (f == "asin") return scalar(std::asin(x));
      if (f == "acos") return scalar(std::acos(x));
      if (f == "atan") return scalar(std::atan(x));
      if (f == "sinh") return scalar(std::sinh(x));
      if (f == "cosh") return scalar(std::cosh(x));
      if (f == "tanh") return scalar(std::tanh(x));
      if (f == "ln" || f == "log") return scalar(x == C(0) ? C(-kInf) : std::log(x));
      if (f == "exp") return scalar(std::exp(x));
      if (f == "sqrt") return scalar(x.imag() == 0 && x.real() >= 0 ? C(std::sqrt(x.real())) : std::sqrt(x));
      if (f == "abs") return scalar(std::abs(x));
      if (f == "fact") {
        if (x.imag() != 0 || x.real() < 0) return std::nullopt;
        return scalar(std::tgamma(x.real() + 1));
      }
      if (f == "binom" && args.size() == 2) {
        double a = args[0].real(), b = args[1].real();
        return scalar(std::exp(std::lgamma(a + 1) - std::lgamma(b + 1) - std::lgamma(a - b + 1)));
      }
      return std::nullopt;
    }
    case Kind::Indexed: {
      auto i = eval_scalar(*n.kids[0], env, depth + 1);
      if (!i || !finite(*i)) return std::nullopt;
      return scalar(pseudo_random(n.name, std::llround(i->real())));
    }
    case Kind::Sum: {
      auto lo = eval_scalar(*n.kids[0], env, depth + 1);
      auto hi = eval_scalar(*n.kids[1], env, depth + 1);
      if (!lo || !hi || !finite(*lo) || !finite(*hi)) return std::nullopt;
      long long a = std::llround(lo->real()), b = std::llround(hi->real());
      if (b - a > kMaxSumTerms) return std::nullopt;
      auto saved = env.find(n.name) != env.end() ? std::optional<C>(env[n.name]) : std::nullopt;
      C total = 0;
      for (long long k = a; k <= b; ++k) {
        env[n.name] = C(static_cast<double>(k));
        auto v = eval_scalar(*n.kids[2], env, depth + 1);
        if (!v) return std::nullopt;
        total += *v;
      }
      if (saved)
        env[n.name] = *saved;
      else
        env.erase(n.name);
      return scalar(total);
    }
    case Kind::Matrix: {
      Value r;
      r.rows = n.rows;
      r.cols = n.cols;
      for (const auto& k : n.kids) {
        auto v = eval_scalar(*k, env, depth + 1);
        if (!v) return std::nullopt;
        r.m.push_back(*v);
      }
      return r;
    }
    case Kind::PlusMinus:
    default:
      return std::nullopt;
  }
}

void free_symbols(const Node& n, std::set<std::string>& out, const std::set<std::string>& bound = {}) {
  if (n.kind == Kind::Sym) {
    if (n.name != "pi" && n.name != "e" && n.name != "inf" && !bound.count(n.name)) out.insert(n.name);
    return;
  }
  if (n.kind == Kind::Sum) {
    free_symbols(*n.kids[0], out, bound);
    free_symbols(*n.kids[1], out, bound);
    auto b2 = bound;
    b2.insert(n.name);
    free_symbols(*n.kids[2], out, b2);
    return;
  }
  for (const auto& k : n.kids)
    if (k) free_symbols(*k, out, bound);
}

bool has_float(const Node& n) {
  if (n.kind == Kind::Num && n.is_float) return true;
  for (const auto& k : n.kids)
    if (k && has_float(*k)) return true;
  return false;
}

bool has_kind(const Node& n, Kind kind) {
  if (n.kind == kind) return true;
  for (const auto& k : n.kids)
    if (k && has_kind(*k, kind)) return true;
  return false;
}

class Comparer {
 public:
  explicit Comparer(const EqualOptions& o) : o_(o) {}

  bool eq(NodePtr g, NodePtr p, int depth = 0) {
    if (!g || !p || depth > 40) return false;
    if (to_string(*g) == to_string(*p)) return true;
    g = unwrap_in(g);
    p = unwrap_in(p);
    g = unwrap_single(flatten_pm(g));
    p = unwrap_single(flatten_pm(p));
    // "x = 11" vs "11": a predicted equation is read as its last right side; a gold
    // assignment (a left side without numbers: k, f(x), |AB|, A:B) likewise.
    if (is_equation(*p) && g->kind != Kind::Rel) p = p->kids.back();
    if (is_equation(*g) && p->kind != Kind::Rel && is_assignment(*g)) g = g->kids.back();
    if (to_string(*g) == to_string(*p)) return true;

    if (g->kind == Kind::Rel && p->kind == Kind::Rel) return rel_eq(*g, *p);
    if (g->kind == Kind::Rel && is_set_like(*p)) return rel_set_eq(*g, *p);
    if (p->kind == Kind::Rel && is_set_like(*g)) return o_.allow_set_relation && rel_set_eq(*p, *g);
    if (g->kind == Kind::Rel || p->kind == Kind::Rel) return false;

    bool gc = is_container(*g), pc = is_container(*p);
    if (gc || pc) return container_eq(g, p, depth);
    return scalar_eq(g, p);
  }

 private:
  static bool is_container(const Node& n) {
    return n.kind == Kind::Tuple || n.kind == Kind::List || n.kind == Kind::Set || n.kind == Kind::Interval ||
           n.kind == Kind::Union;
  }
  static bool is_set_like(const Node& n) {
    return n.kind == Kind::Interval || n.kind == Kind::Union ||
           (n.kind == Kind::Tuple && n.kids.size() == 2 && n.name.empty());
  }
  static bool is_equation(const Node& n) {
    if (n.kind != Kind::Rel) return false;
    for (const auto& op : n.ops)
      if (op != "=" && op != "~") return false;
    return true;
  }
  static bool has_number(const Node& n) {
    if (n.kind == Kind::Num) return true;
    for (const auto& k : n.kids)
      if (k && has_number(*k)) return true;
    return false;
  }
  static bool is_assignment(const Node& n) {
    for (size_t i = 0; i + 1 < n.kids.size(); ++i)
      if (!has_number(*n.kids[i])) return true;
    return false;
  }
  static NodePtr unwrap_in(NodePtr n) {
    if (n->kind == Kind::Rel && n->ops.size() == 1 && n->ops[0] == "in") return n->kids[1];
    return n;
  }
  static NodePtr unwrap_single(NodePtr n) {
    while ((n->kind == Kind::List || n->kind == Kind::Set) && n->kids.size() == 1) n = n->kids[0];
    return n;
  }

  // \pm: 1 \pm \sqrt{5} -> list{1 + sqrt5, 1 - sqrt5}; inside lists and sets the two
  // values become two elements.
  static std::vector<NodePtr> expand(const NodePtr& n, int budget = 16) {
    if (!n || !has_kind(*n, Kind::PlusMinus)) return {n};
    if (n->kind == Kind::PlusMinus) {
      std::vector<NodePtr> out;
      auto rights = expand(n->kids[1]);
      std::vector<NodePtr> lefts = n->kids[0] ? expand(n->kids[0]) : std::vector<NodePtr>{nullptr};
      for (const auto& l : lefts)
        for (const auto& r : rights) {
          if (static_cast<int>(out.size()) >= budget) break;
          NodePtr neg = make_node(Kind::Neg, {r});
          out.push_back(l ? make_node(Kind::Add, {l, r}) : r);
          out.push_back(l ? make_node(Kind::Add, {l, neg}) : neg);
        }
      return out;
    }
    std::vector<NodePtr> out = {std::make_shared<Node>(*n)};
    for (size_t i = 0; i < n->kids.size(); ++i) {
      auto alts = expand(n->kids[i]);
      std::vector<NodePtr> next;
      for (const auto& base : out)
        for (const auto& a : alts) {
          if (static_cast<int>(next.size()) >= budget) break;
          auto copy = std::make_shared<Node>(*base);
          copy->kids[i] = a;
          next.push_back(copy);
        }
      out = next;
    }
    return out;
  }
  static NodePtr flatten_pm(NodePtr n) {
    if (!has_kind(*n, Kind::PlusMinus)) return n;
    if (n->kind == Kind::List || n->kind == Kind::Set) {
      auto out = std::make_shared<Node>(*n);
      out->kids.clear();
      for (const auto& k : n->kids)
        for (const auto& e : expand(k)) out->kids.push_back(e);
      return out;
    }
    if (n->kind == Kind::Rel || n->kind == Kind::Tuple || n->kind == Kind::Matrix) return n;
    auto alts = expand(n);
    return alts.size() == 1 ? alts[0] : make_node(Kind::List, alts);
  }

  static std::vector<NodePtr> dedup(const std::vector<NodePtr>& kids) {
    std::vector<NodePtr> out;
    std::set<std::string> seen;
    for (const auto& k : kids)
      if (seen.insert(to_string(*k)).second) out.push_back(k);
    return out;
  }

  bool unordered_eq(const std::vector<NodePtr>& a0, const std::vector<NodePtr>& b0, int depth) {
    auto a = dedup(a0), b = dedup(b0);
    if (a.size() != b.size() || a.size() > 64) return false;
    size_t n = a.size();
    std::vector<std::vector<char>> ok(n, std::vector<char>(n));
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) ok[i][j] = eq(a[i], b[j], depth + 1);
    // Bipartite matching (Kuhn): every gold element needs its own predicted element.
    std::vector<int> match(n, -1);
    std::function<bool(size_t, std::vector<char>&)> augment = [&](size_t i, std::vector<char>& seen) {
      for (size_t j = 0; j < n; ++j) {
        if (!ok[i][j] || seen[j]) continue;
        seen[j] = 1;
        if (match[j] < 0 || augment(static_cast<size_t>(match[j]), seen)) {
          match[j] = static_cast<int>(i);
          return true;
        }
      }
      return false;
    };
    for (size_t i = 0; i < n; ++i) {
      std::vector<char> seen(n);
      if (!augment(i, seen)) return false;
    }
    return true;
  }
  bool ordered_eq(const std::vector<NodePtr>& a, const std::vector<NodePtr>& b, int depth) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!eq(a[i], b[i], depth + 1)) return false;
    return true;
  }

  bool interval_eq(const Node& a, const Node& b) {
    if (a.kids.size() != 2 || b.kids.size() != 2) return false;
    if (a.open_lo != b.open_lo || a.open_hi != b.open_hi) return false;
    return scalar_eq(a.kids[0], b.kids[0]) && scalar_eq(a.kids[1], b.kids[1]);
  }

  bool container_eq(const NodePtr& g, const NodePtr& p, int depth) {
    Kind gk = g->kind, pk = p->kind;
    auto interval_like = [](const Node& n) {
      return n.kind == Kind::Interval || (n.kind == Kind::Tuple && n.kids.size() == 2 && n.name.empty());
    };
    if (gk == Kind::Interval || pk == Kind::Interval) {
      if (interval_like(*g) && interval_like(*p)) return interval_eq(*g, *p);
      if (gk == Kind::Union && p->kids.size() == 2) return false;
      return false;
    }
    if (gk == Kind::Union || pk == Kind::Union) {
      if (gk != pk) return false;
      return unordered_eq(g->kids, p->kids, depth);
    }
    if (gk == Kind::Tuple && pk == Kind::Tuple) return ordered_eq(g->kids, p->kids, depth);
    if ((gk == Kind::Tuple && pk == Kind::List) || (gk == Kind::List && pk == Kind::Tuple))
      return ordered_eq(g->kids, p->kids, depth);
    if ((gk == Kind::List || gk == Kind::Set) && (pk == Kind::List || pk == Kind::Set))
      return unordered_eq(g->kids, p->kids, depth);
    if ((gk == Kind::Tuple && pk == Kind::Set) || (gk == Kind::Set && pk == Kind::Tuple))
      return !o_.strict && unordered_eq(g->kids, p->kids, depth);
    return false;  // a container vs a single value
  }

  // ---- relations ----
  struct Ineq {
    NodePtr d;  // the relation says d > 0 (strict) or d >= 0
    bool strict;
  };
  static bool to_ineqs(const Node& r, std::vector<Ineq>& out) {
    for (size_t i = 0; i < r.ops.size(); ++i) {
      const auto& a = r.kids[i];
      const auto& b = r.kids[i + 1];
      const std::string& op = r.ops[i];
      auto sub = [](NodePtr x, NodePtr y) { return make_node(Kind::Add, {x, make_node(Kind::Neg, {y})}); };
      if (op == "<")
        out.push_back({sub(b, a), true});
      else if (op == "<=")
        out.push_back({sub(b, a), false});
      else if (op == ">")
        out.push_back({sub(a, b), true});
      else if (op == ">=")
        out.push_back({sub(a, b), false});
      else
        return false;
    }
    return true;
  }

  bool rel_eq(const Node& g, const Node& p) {
    if (is_equation(g) && is_equation(p)) {
      const NodePtr &gl = g.kids.front(), &gr = g.kids.back(), &pl = p.kids.front(), &pr = p.kids.back();
      if (gl->kind == Kind::Sym && pl->kind == Kind::Sym && gl->name != pl->name && o_.strict) return false;
      if (eq(gl, pl) && eq(gr, pr)) return true;
      if (is_container(*gl) || is_container(*gr) || is_container(*pl) || is_container(*pr)) return false;
      auto sub = [](NodePtr x, NodePtr y) { return make_node(Kind::Add, {x, make_node(Kind::Neg, {y})}); };
      return proportional(sub(gl, gr), sub(pl, pr), /*positive=*/false);
    }
    if (g.ops.size() == 1 && p.ops.size() == 1 && g.ops[0] == "!=" && p.ops[0] == "!=") {
      auto sub = [](NodePtr x, NodePtr y) { return make_node(Kind::Add, {x, make_node(Kind::Neg, {y})}); };
      return proportional(sub(g.kids[0], g.kids[1]), sub(p.kids[0], p.kids[1]), false);
    }
    std::vector<Ineq> gi, pi;
    if (!to_ineqs(g, gi) || !to_ineqs(p, pi) || gi.size() != pi.size()) return false;
    auto match = [&](bool reversed) {
      for (size_t i = 0; i < gi.size(); ++i) {
        const Ineq& a = gi[i];
        const Ineq& b = pi[reversed ? pi.size() - 1 - i : i];
        if (a.strict != b.strict || !proportional(a.d, b.d, /*positive=*/true)) return false;
      }
      return true;
    };
    return match(false) || match(true);
  }

  // d1 == k * d2 for a constant k != 0 (k > 0 when `positive`), checked at random points.
  bool proportional(const NodePtr& d1, const NodePtr& d2, bool positive) {
    std::set<std::string> syms;
    free_symbols(*d1, syms);
    free_symbols(*d2, syms);
    std::mt19937_64 rng(20250101);
    std::uniform_real_distribution<double> dist(0.5, 2.5);
    std::optional<C> k;
    int valid = 0;
    for (int t = 0; t < o_.points + 2; ++t) {
      Env env;
      for (const auto& s : syms) env[s] = dist(rng);
      auto a = eval(*d1, env);
      auto b = eval(*d2, env);
      if (!a || !b || a->matrix() || b->matrix()) return false;
      if (!finite(a->s) || !finite(b->s)) continue;
      double scale = std::max({std::abs(a->s), std::abs(b->s), 1e-12});
      if (std::abs(b->s) < 1e-12 * scale || std::abs(b->s) < 1e-300) {
        if (std::abs(a->s) > o_.symbolic_rel_tol * std::max(1.0, scale)) return false;
        ++valid;
        continue;
      }
      C ratio = a->s / b->s;
      if (!k) {
        if (std::abs(ratio) < 1e-12) return false;
        k = ratio;
        if (positive && (k->real() <= 0 || std::fabs(k->imag()) > 1e-9 * std::abs(*k))) return false;
      } else if (std::abs(ratio - *k) > o_.symbolic_rel_tol * std::abs(*k)) {
        return false;
      }
      ++valid;
    }
    return valid >= 2 || (syms.empty() && valid >= 1);
  }

  // Membership of t in a set-like node.
  std::optional<bool> contains(const Node& s, double t) {
    if (s.kind == Kind::Union) {
      bool any = false;
      for (const auto& k : s.kids) {
        auto c = contains(*k, t);
        if (!c) return std::nullopt;
        any = any || *c;
      }
      return any;
    }
    if (s.kind == Kind::Set || s.kind == Kind::List) {
      for (const auto& k : s.kids) {
        Env env;
        auto v = eval_scalar(*k, env, 0);
        if (!v) return std::nullopt;
        if (std::fabs(v->real() - t) <= 1e-12 * std::max(1.0, std::fabs(t))) return true;
      }
      return false;
    }
    if (s.kind == Kind::Interval || s.kind == Kind::Tuple) {
      Env env;
      auto lo = eval_scalar(*s.kids[0], env, 0);
      auto hi = eval_scalar(*s.kids[1], env, 0);
      if (!lo || !hi) return std::nullopt;
      bool open_lo = s.kind == Kind::Tuple || s.open_lo;
      bool open_hi = s.kind == Kind::Tuple || s.open_hi;
      bool above = open_lo ? t > lo->real() : t >= lo->real();
      bool below = open_hi ? t < hi->real() : t <= hi->real();
      return above && below;
    }
    return std::nullopt;
  }
  void endpoints(const Node& s, std::vector<double>& out) {
    if (s.kind == Kind::Union || s.kind == Kind::Set || s.kind == Kind::List || s.kind == Kind::Interval ||
        s.kind == Kind::Tuple) {
      for (const auto& k : s.kids) {
        if (is_container(*k)) {
          endpoints(*k, out);
          continue;
        }
        Env env;
        auto v = eval_scalar(*k, env, 0);
        if (v && std::isfinite(v->real())) out.push_back(v->real());
      }
    }
  }

  // A gold inequality (chain) vs a predicted interval / union: the same set of reals?
  bool rel_set_eq(const Node& rel, const Node& set) {
    std::vector<Ineq> ineqs;
    if (!to_ineqs(rel, ineqs)) return false;
    std::set<std::string> syms;
    free_symbols(rel, syms);
    // c1 < E < c2 where E has several symbols (0 < f(x) < 1): the interval (c1, c2).
    std::string var;
    std::optional<NodePtr> middle;
    if (syms.size() == 1) {
      var = *syms.begin();
    } else if (rel.kids.size() == 3) {
      middle = rel.kids[1];
      var = "__middle";
    } else {
      return false;
    }
    std::vector<double> points;
    endpoints(set, points);
    for (const auto& k : rel.kids) {
      Env env;
      auto v = eval_scalar(*k, env, 0);
      if (v && std::isfinite(v->real())) points.push_back(v->real());
    }
    std::vector<double> probes = {-1e6, 0, 1e6, 0.5, -0.5};
    std::sort(points.begin(), points.end());
    for (size_t i = 0; i < points.size(); ++i) {
      double e = points[i], d = 1e-6 * std::max(1.0, std::fabs(e));
      probes.insert(probes.end(), {e, e - d, e + d, e - 1, e + 1});
      if (i + 1 < points.size()) probes.push_back((e + points[i + 1]) / 2);
    }
    for (double t : probes) {
      auto in_set = contains(set, t);
      if (!in_set) return false;
      bool in_rel = true;
      for (size_t i = 0; i < rel.ops.size(); ++i) {
        auto side = [&](const NodePtr& n) -> std::optional<C> {
          if (middle && n == *middle) return C(t);
          Env e2;
          e2[var] = t;
          return eval_scalar(*n, e2, 0);
        };
        auto av = side(rel.kids[i]);
        auto bv = side(rel.kids[i + 1]);
        if (!av || !bv) return false;
        double x = av->real(), y = bv->real();
        const std::string& op = rel.ops[i];
        bool ok = op == "<" ? x < y : op == "<=" ? x <= y : op == ">" ? x > y : x >= y;
        in_rel = in_rel && ok;
      }
      if (in_rel != *in_set) return false;
    }
    return true;
  }

  // ---- scalars ----
  static std::optional<std::string> as_word(const Node& n) {
    if (n.kind == Kind::Text) {
      std::string w;
      for (char c : n.name)
        if (c != '(' && c != ')' && c != ' ') w += static_cast<char>(std::tolower(c));
      return w;
    }
    if (n.kind == Kind::Sym && n.name.find('_') == std::string::npos) {
      std::string w;
      for (char c : n.name) w += static_cast<char>(std::tolower(c));
      return w;
    }
    if (n.kind == Kind::Mul) {
      std::string w;
      for (const auto& k : n.kids) {
        auto kw = as_word(*k);
        if (!kw || k->kind == Kind::Text) return std::nullopt;
        w += *kw;
      }
      return w;
    }
    return std::nullopt;
  }

  bool scalar_eq(NodePtr g, NodePtr p) {
    if (g->kind == Kind::Text || p->kind == Kind::Text) {
      auto a = as_word(*g), b = as_word(*p);
      if (a && b && *a == *b) return true;
      // \text{13} vs 13: read the words as math.
      auto reparse = [](const NodePtr& n) { return n->kind == Kind::Text ? parse_math(n->name) : n; };
      NodePtr g2 = reparse(g), p2 = reparse(p);
      if (!g2 || !p2 || g2->kind == Kind::Text || p2->kind == Kind::Text) return false;
      if (g2 == g && p2 == p) return false;
      return scalar_eq(g2, p2);
    }
    if (o_.percent_lenient) {
      if (g->kind == Kind::Percent && p->kind != Kind::Percent && value_eq(g->kids[0], p)) return true;
      if (p->kind == Kind::Percent && g->kind != Kind::Percent && value_eq(g, p->kids[0])) return true;
    }
    return value_eq(g, p);
  }

  bool close(C a, C b, bool rounding) const {
    if (!finite(a) || !finite(b)) {
      return a.real() == b.real() && (std::isinf(a.real()) || std::isinf(a.imag()));
    }
    double scale = std::max(std::abs(a), std::abs(b));
    if (std::abs(a - b) <= o_.rel_tol * scale + 1e-12) return true;
    if (rounding && o_.float_rounding >= 0) {
      double f = std::pow(10.0, o_.float_rounding);
      return std::round(a.real() * f) == std::round(b.real() * f) &&
             std::round(a.imag() * f) == std::round(b.imag() * f);
    }
    return false;
  }
  bool close(const Value& a, const Value& b, bool rounding) const {
    if (a.matrix() != b.matrix()) return false;
    if (!a.matrix()) return close(a.s, b.s, rounding);
    if (a.rows != b.rows || a.cols != b.cols) return false;
    for (size_t i = 0; i < a.m.size(); ++i)
      if (!close(a.m[i], b.m[i], rounding)) return false;
    return true;
  }

  bool value_eq(const NodePtr& g, NodePtr p) {
    std::set<std::string> gs, ps;
    free_symbols(*g, gs);
    free_symbols(*p, ps);
    bool rounding = has_float(*g) || has_float(*p);
    std::map<std::string, std::string> rename;
    if (!o_.strict && gs != ps && gs.size() == ps.size()) {
      auto gi = gs.begin();
      for (auto pi = ps.begin(); pi != ps.end(); ++pi, ++gi) rename[*pi] = *gi;
    }
    std::set<std::string> all = gs;
    for (const auto& s : ps) all.insert(rename.count(s) ? rename[s] : s);
    if (all.empty()) {
      Env env;
      auto a = eval(*g, env);
      auto b = eval(*p, env);
      return a && b && close(*a, *b, rounding);
    }
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> dist(0.5, 2.5);
    int valid = 0;
    for (int t = 0; t < o_.points; ++t) {
      Env ge, pe;
      for (const auto& s : all) ge[s] = dist(rng);
      for (const auto& s : ps) pe[s] = ge[rename.count(s) ? rename[s] : s];
      auto a = eval(*g, ge);
      auto b = eval(*p, pe);
      if (!a || !b) return false;
      if (a->matrix() != b->matrix()) return false;
      if (!a->matrix() && (!finite(a->s) || !finite(b->s))) continue;
      if (a->matrix()) {
        if (!close(*a, *b, rounding)) return false;
      } else {
        double scale = std::max(std::abs(a->s), std::abs(b->s));
        if (std::abs(a->s - b->s) > o_.symbolic_rel_tol * scale + 1e-9) return false;
      }
      ++valid;
    }
    return valid >= 2;
  }

  const EqualOptions& o_;
};

}  // namespace

bool math_equal(const NodePtr& gold, const NodePtr& pred, const EqualOptions& options) {
  Comparer c(options);
  return c.eq(gold, pred);
}

}  // namespace r1kit::rewards::math
