// The `code` reward (see code_reward.h).
#include "rewards/code_reward.h"

#include <fmt/format.h>

#include <random>
#include <sstream>

#include "rewards/code_extract.h"
#include "src/error.h"

namespace r1kit::rewards {
namespace {

// Runs the program, then each test in the program's namespace; after each passing test
// prints "<nonce> pass <i>". The nonce comes on stdin and lives only in this function's
// frame, so the program under test never sees it in its globals or its environment.
constexpr const char* kAssertHarness = R"PY(import json, sys
def _r1kit_run():
    nonce = sys.stdin.readline().strip()
    with open("/task/solution.py") as f:
        src = f.read()
    with open("/task/tests.json") as f:
        tests = json.load(f)
    g = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(src, "solution.py", "exec"), g)
    except BaseException as e:
        sys.stderr.write("solution raised %r\n" % (e,))
        return
    for i, t in enumerate(tests):
        try:
            exec(compile(t, "test_%d.py" % i, "exec"), g)
        except BaseException as e:
            sys.stderr.write("case %d failed: %r\n" % (i, e))
            continue
        sys.stdout.write("\n%s pass %d\n" % (nonce, i))
        sys.stdout.flush()
_r1kit_run()
)PY";

std::string make_nonce() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("R1KIT-{:016x}{:016x}", rng(), rng());
}

std::string as_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {  // a list of lines
    std::string out;
    for (const auto& x : v) out += (x.is_string() ? x.get<std::string>() : x.dump()) + "\n";
    return out;
  }
  return v.dump();
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    lines.push_back(line);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::string short_err(const std::string& err) {
  // The last non-empty stderr line: usually the exception.
  auto lines = split_lines(err);
  if (lines.empty()) return "";
  std::string l = lines.back();
  return l.size() > 120 ? l.substr(0, 117) + "..." : l;
}

std::string run_failure(const SandboxResult& r) {
  if (r.timed_out) return "timed out";
  if (r.output_capped) return "too much output";
  if (r.signal != 0) return fmt::format("killed by signal {}", r.signal);
  if (r.exit_code != 0) return fmt::format("exit {}: {}", r.exit_code, short_err(r.err));
  return "";
}

CodeCheck run_asserts(const std::string& program, const std::vector<std::string>& tests, const CodeOptions& o) {
  CodeCheck c;
  c.total = static_cast<int>(tests.size());
  std::string nonce = make_nonce();
  Json tj = tests;
  std::vector<SandboxFile> files = {
      {"solution.py", program}, {"tests.json", tj.dump()}, {"harness.py", kAssertHarness}};
  SandboxResult r =
      run_sandboxed({o.python, "-I", "/task/harness.py"}, nonce + "\n", files, o.limits, o.unsafe_no_sandbox);
  std::string first_fail;
  for (int i = 0; i < c.total; ++i) {
    if (r.out.find(fmt::format("{} pass {}\n", nonce, i)) != std::string::npos) {
      ++c.passed;
    } else if (first_fail.empty()) {
      first_fail = fmt::format("case {} failed", i);
    }
  }
  std::string how = run_failure(r);
  if (how.empty() && c.passed < c.total) how = short_err(r.err);
  c.why =
      fmt::format("{}/{} cases passed{}{}", c.passed, c.total, how.empty() ? "" : " (", how.empty() ? "" : how + ")");
  return c;
}

CodeCheck run_io(const std::string& program, const std::vector<std::pair<std::string, std::string>>& cases,
                 const CodeOptions& o, const RewardInput& in) {
  CodeCheck c;
  c.total = static_cast<int>(cases.size());
  std::string first_fail;
  std::vector<SandboxFile> files = {{"solution.py", program}};
  for (int i = 0; i < c.total; ++i) {
    if (Clock::now() > in.deadline) {
      if (first_fail.empty()) first_fail = fmt::format("case {}: reward deadline reached", i);
      break;
    }
    SandboxResult r =
        run_sandboxed({o.python, "-I", "/task/solution.py"}, cases[i].first, files, o.limits, o.unsafe_no_sandbox);
    std::string how = run_failure(r);
    if (how.empty() && !outputs_match(r.out, cases[i].second, o.compare)) how = "wrong output";
    if (how.empty()) {
      ++c.passed;
    } else if (first_fail.empty()) {
      first_fail = fmt::format("case {}: {}", i, how);
    }
  }
  c.why = fmt::format("{}/{} cases passed{}{}", c.passed, c.total, first_fail.empty() ? "" : " (",
                      first_fail.empty() ? "" : first_fail + ")");
  return c;
}

class CodeReward : public Reward {
 public:
  explicit CodeReward(CodeOptions o) : o_(std::move(o)) {}
  RewardResult score(const RewardInput& in) const override {
    auto code = extract_code(in.completion, "python", o_.allow_unfenced);
    CodeCheck c = check_code(code.value_or(""), in, o_);
    if (c.total == 0) return RewardResult::skip(c.why);
    double frac = static_cast<double>(c.passed) / c.total;
    double v = o_.partial_credit ? frac : (c.passed == c.total ? 1.0 : 0.0);
    RewardResult r = RewardResult::make(v, c.why);
    r.parts["passed"] = c.passed;
    r.parts["total"] = c.total;
    return r;
  }

 private:
  CodeOptions o_;
};

std::unique_ptr<Reward> make_code_reward(JsonFields& f) {
  CodeOptions o = parse_code_options(f);
  std::string why;
  if (!o.unsafe_no_sandbox && !sandbox_available(&why)) {
    throw Error(
        fmt::format("{}: bubblewrap cannot create namespaces here ({}); refusing to run untrusted code "
                    "(set \"unsafe_no_sandbox\": true to run it without isolation)",
                    f.path("name"), why));
  }
  auto r = std::make_unique<CodeReward>(o);
  return r;
}

}  // namespace

bool outputs_match(const std::string& got, const std::string& expected, const std::string& mode) {
  if (mode == "exact") {
    auto strip = [](std::string s) {
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      return s;
    };
    return strip(got) == strip(expected);
  }
  auto a = split_lines(got), b = split_lines(expected);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    std::istringstream sa(a[i]), sb(b[i]);
    std::vector<std::string> ta, tb;
    for (std::string t; sa >> t;) ta.push_back(t);
    for (std::string t; sb >> t;) tb.push_back(t);
    if (ta != tb) return false;
  }
  return true;
}

CodeCheck check_code(const std::string& code, const RewardInput& in, const CodeOptions& o) {
  CodeCheck c;
  const Json* tests = in.field(o.tests_field);
  std::string test = in.field_string("test");
  std::string entry = in.field_string("entry_point");
  auto no_code = [&](int total) {
    c.total = total;
    c.why = "no code block found";
    return c;
  };
  if (!test.empty() && !entry.empty()) {  // HumanEval
    if (code.empty()) return no_code(1);
    std::string program = code;
    if (code.find("def " + entry + "(") == std::string::npos) program = in.field_string("prompt") + code;
    return run_asserts(program, {test + "\n\ncheck(" + entry + ")\n"}, o);
  }
  if (tests == nullptr) {
    c.why = fmt::format("row has no '{}' (or HumanEval test/entry_point) field", o.tests_field);
    return c;
  }
  if (tests->is_array() && !tests->empty() && tests->front().is_string()) {
    std::vector<std::string> asserts;
    for (const auto& t : *tests) asserts.push_back(t.get<std::string>());
    if (o.max_cases > 0 && static_cast<int>(asserts.size()) > o.max_cases) asserts.resize(o.max_cases);
    if (code.empty()) return no_code(static_cast<int>(asserts.size()));
    return run_asserts(code, asserts, o);
  }
  std::vector<std::pair<std::string, std::string>> cases;
  if (tests->is_object() && tests->contains("inputs") && tests->contains("outputs")) {
    const Json& ins = (*tests)["inputs"];
    const Json& outs = (*tests)["outputs"];
    for (size_t i = 0; i < std::min(ins.size(), outs.size()); ++i)
      cases.emplace_back(as_text(ins[i]), as_text(outs[i]));
  } else if (tests->is_array()) {
    for (const auto& t : *tests) {
      if (!t.is_object() || !t.contains("input") || !t.contains("output")) continue;
      cases.emplace_back(as_text(t["input"]), as_text(t["output"]));
    }
  }
  if (cases.empty()) {
    c.why = fmt::format("'{}' has no usable cases", o.tests_field);
    return c;
  }
  if (o.max_cases > 0 && static_cast<int>(cases.size()) > o.max_cases) cases.resize(o.max_cases);
  if (code.empty()) return no_code(static_cast<int>(cases.size()));
  return run_io(code, cases, o, in);
}

CodeOptions parse_code_options(JsonFields& f) {
  CodeOptions o;
  f.get("python", o.python);
  f.get("tests_field", o.tests_field);
  f.get("partial_credit", o.partial_credit);
  f.get("compare", o.compare);
  f.get("allow_unfenced", o.allow_unfenced);
  f.get("max_cases", o.max_cases);
  f.get("unsafe_no_sandbox", o.unsafe_no_sandbox);
  f.get("run_timeout_s", o.limits.wall_s);
  f.get("cpu_s", o.limits.cpu_s);
  f.get("memory_mb", o.limits.memory_mb);
  f.get("file_size_mb", o.limits.file_size_mb);
  f.get("max_processes", o.limits.processes);
  int64_t output_bytes = static_cast<int64_t>(o.limits.output_bytes);
  f.get("max_output_bytes", output_bytes);
  o.limits.output_bytes = static_cast<size_t>(output_bytes);
  int parallel = 0;
  f.get("max_parallel", parallel);
  if (parallel > 0) set_sandbox_parallelism(parallel);
  if (o.compare != "tolerant" && o.compare != "exact")
    f.fail("compare", "must be \"tolerant\" or \"exact\", got \"" + o.compare + "\"");
  if (!(o.limits.wall_s > 0)) f.fail("run_timeout_s", "must be > 0");
  return o;
}

R1KIT_REGISTER_REWARD(code, make_code_reward);

}  // namespace r1kit::rewards
