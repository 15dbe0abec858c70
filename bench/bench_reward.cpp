// `r1kit bench reward` (see bench_reward.h).
#include "bench/bench_reward.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "bench/peer_runner.h"
#include "rewards/math_reward.h"
#include "rewards/sandbox.h"
#include "rewards/scorer.h"
#include "src/config.h"
#include "src/files.h"
#include "src/thread_pool.h"

namespace r1kit::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Pair {
  std::string gold, pred;
  bool expected;
};

// MATH-500 answers (right and wrong) and GSM8K finals, as a model would write them.
std::vector<Pair> make_pairs(const std::string& data) {
  std::vector<Pair> pairs;
  std::ifstream math(data + "/math500/test.jsonl");
  std::string line;
  int i = 0;
  while (std::getline(math, line)) {
    Json row = Json::parse(line);
    std::string a = row["answer"].get<std::string>();
    std::string gold = "$\\boxed{" + a + "}$";
    pairs.push_back({gold, "Let me think step by step. So the final answer is $\\boxed{" + a + "}$.", true});
    pairs.push_back({gold, fmt::format("After some algebra, the answer is $\\boxed{{{}}}$.", 1000 + i), false});
    ++i;
  }
  std::ifstream gsm(data + "/gsm8k/test.jsonl");
  int n = 0;
  while (std::getline(gsm, line) && n < 500) {
    Json row = Json::parse(line);
    std::string ans = row["answer"].get<std::string>();
    std::string fin = ans.substr(ans.rfind("####") + 4);
    while (!fin.empty() && fin.front() == ' ') fin.erase(fin.begin());
    pairs.push_back({"$" + fin + "$", "She pays 3 * 4 = 12 dollars in total. The answer is $" + fin + "$.", true});
    ++n;
  }
  return pairs;
}

// Runs a bare `python3 -I -c pass` (no sandbox, no peer): the baseline the sandbox's
// overhead is measured against.
void run_bare_python() {
  FILE* p = ::popen("/usr/bin/python3 -I -c pass", "r");
  if (p == nullptr) return;
  char buf[256];
  while (std::fread(buf, 1, sizeof(buf), p) > 0) {
  }
  ::pclose(p);
}

// The example keyword plug-in on GRPO-sized batches (256 completions of ~1 KB with their
// rows), in-process and isolated in the plug-in host, on the same thread pool: rows/s of
// each, repeated until at least 1 s has passed.
Json bench_plugin(const std::vector<Pair>& pairs, bool json) {
  const std::string exe = executable_path();
  const std::string lib =
      std::filesystem::path(exe).parent_path().string() + "/examples/rewards/libkeyword_reward_plugin.so";
  if (::access(lib.c_str(), R_OK) != 0) return {{"plugin_error", lib + " not found (build the example)"}};
  const size_t rows = 256;
  std::vector<std::string> texts(rows);
  std::vector<Json> fields(rows);
  std::vector<rewards::RewardInput> batch(rows);
  for (size_t i = 0; i < rows; ++i) {
    const Pair& p = pairs[i % pairs.size()];
    while (texts[i].size() < 1000) texts[i] += p.pred + (i % 3 == 0 ? " therefore " : " so ");
    fields[i] = {{"answer", p.gold}, {"prompt", "Solve the problem and put the answer in a box."}};
    batch[i].completion = texts[i];
    batch[i].fields = &fields[i];
  }
  ThreadPool pool(0);
  Json out;
  double per_s[2] = {0, 0};
  for (bool isolate : {false, true}) {
    const rewards::Scorer scorer = rewards::Scorer::from_json(
        Json::array(
            {{{"name", "plugin"}, {"path", lib}, {"options", {{"keyword", "therefore"}}}, {"isolate", isolate}}}),
        "bench");
    scorer.score_batch(batch, &pool);  // warm: the host is started, the library loaded
    size_t scored = 0;
    const auto t0 = Clock::now();
    double secs = 0;
    do {
      scored += scorer.score_batch(batch, &pool).size();
      secs = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (secs < 1.0);
    per_s[isolate] = static_cast<double>(scored) / secs;
  }
  out["plugin_rows_per_s_in_process"] = per_s[0];
  out["plugin_rows_per_s_isolated"] = per_s[1];
  out["plugin_isolated_over_in_process"] = per_s[1] / per_s[0];
  out["plugin_threads"] = pool.size();
  if (!json) {
    fmt::print("plugin: {:.0f} rows/s in-process, {:.0f} rows/s isolated ({:.2f}x; {} threads, batches of {})\n",
               per_s[0], per_s[1], per_s[1] / per_s[0], pool.size(), rows);
  }
  return out;
}

}  // namespace

int bench_reward(bool json) {
  const std::string data = source_root() + "/../shared/data";
  if (::access((data + "/math500/test.jsonl").c_str(), R_OK) != 0) {
    std::fprintf(stderr, "bench reward: %s/math500/test.jsonl not found (set R1KIT_ROOT to the repo)\n", data.c_str());
    return 1;
  }
  std::vector<Pair> pairs = make_pairs(data);
  Json result = {{"pairs", pairs.size()}};

  // r1kit: one thread, repeated until at least 1 s has passed.
  rewards::MathOptions mo;
  size_t checks = 0, agree = 0;
  auto t0 = Clock::now();
  double secs = 0;
  do {
    for (const auto& p : pairs) {
      bool ok = rewards::check_math_answer(p.gold, p.pred, mo).correct;
      if (checks < pairs.size()) agree += ok == p.expected;
      ++checks;
    }
    secs = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (secs < 1.0);
  double r1kit_cps = static_cast<double>(checks) / secs;
  result["r1kit_checks_per_s"] = r1kit_cps;
  result["r1kit_agree_with_expected"] = agree;
  if (!json) fmt::print("math: r1kit {:.0f} checks/s ({}/{} as expected)\n", r1kit_cps, agree, pairs.size());

  // Math-Verify on the same pairs.
  const std::string peer = "bench/peers/mathverify_peer.py";
  try {
    const ScratchDir dir("bench_reward");
    const std::string pairs_file = dir.path() + "/pairs.jsonl";
    {
      std::ofstream out(pairs_file);
      for (const auto& p : pairs)
        out << Json({{"gold", p.gold}, {"pred", p.pred}, {"expected", p.expected}}).dump() << "\n";
    }
    const Json mv_json = run_peer({peer, {pairs_file}, {}});
    const double mv = mv_json.at("checks_per_s").get<double>();
    result["mathverify_checks_per_s"] = mv;
    result["mathverify_agree_with_expected"] = mv_json.at("agree");
    result["ratio"] = r1kit_cps / mv;
    if (!json)
      fmt::print("math: Math-Verify {:.0f} checks/s ({}/{} as expected); ratio {:.1f}x\n", mv,
                 mv_json["agree"].get<int>(), pairs.size(), r1kit_cps / mv);
  } catch (const std::exception& e) {  // r1kit::Error from the runner, or a JSON line without the keys
    result["ratio"] = nullptr;
    result["mathverify_error"] = fmt::format("{} (is math-verify installed in .venv?)", e.what());
    if (!json) fmt::print("math: Math-Verify peer did not run ({})\n", e.what());
  }

  result.update(bench_plugin(pairs, json));

  // Code: sandboxed executions per second (all cores) and the sandbox's own cost.
  std::string why;
  if (rewards::sandbox_available(&why)) {
    rewards::SandboxLimits limits;
    const int n = 48;
    ThreadPool pool(0);
    auto c0 = Clock::now();
    pool.parallel_for(n, [&](size_t) {
      rewards::run_sandboxed({"/usr/bin/python3", "-I", "/task/main.py"}, "",
                             {{"main.py", "print(sum(range(1000)))\n"}}, limits);
    });
    double code_secs = std::chrono::duration<double>(Clock::now() - c0).count();
    result["code_executions_per_s"] = n / code_secs;
    const int m = 10;
    double sandboxed = 0, bare = 0;
    for (int k = 0; k < m; ++k) {
      sandboxed += rewards::run_sandboxed({"/usr/bin/python3", "-I", "-c", "pass"}, "", {}, limits).wall_s;
      auto b0 = Clock::now();
      run_bare_python();
      bare += std::chrono::duration<double>(Clock::now() - b0).count();
    }
    result["sandbox_overhead_ms"] = (sandboxed - bare) / m * 1000;
    result["python_start_ms"] = bare / m * 1000;
    if (!json)
      fmt::print(
          "code: {:.1f} sandboxed executions/s; sandbox overhead {:.1f} ms per execution (python start {:.1f} ms)\n",
          n / code_secs, (sandboxed - bare) / m * 1000, bare / m * 1000);
  } else {
    result["code_executions_per_s"] = nullptr;
    result["sandbox_error"] = why;
  }
  std::cout << result.dump() << std::endl;
  return 0;
}

}  // namespace r1kit::bench
