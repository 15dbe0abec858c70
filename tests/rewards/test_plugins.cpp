// Plug-ins: the example C++ shared library (dlopen) and the example Python process
// reward (JSON lines, one request or a batch), plus their error paths.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "rewards/scorer.h"
#include "src/error.h"
#include "src/thread_pool.h"

using namespace r1kit;
using namespace r1kit::rewards;

namespace {
const std::string kPlugin = std::string(R1KIT_BINARY_DIR) + "/examples/rewards/libkeyword_reward_plugin.so";
const std::string kPython = std::string(R1KIT_SOURCE_DIR) + "/examples/rewards/python_reward.py";

RewardResult one(const Scorer& s, const std::string& completion, const Json& row) {
  RewardInput in;
  in.completion = completion;
  in.fields = &row;
  return s.score(in);
}
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(PluginLibrary, KeywordExample) {
  Scorer s = Scorer::from_json(
      Json::parse(R"([{"name": "plugin", "path": ")" + kPlugin + R"(", "options": {"keyword": "therefore"}}])"), "t");
  Json row = Json::object();
  EXPECT_EQ(*one(s, "x, therefore y", row).value, 1.0);
  EXPECT_EQ(*one(s, "x, so y", row).value, 0.0);
  Json skip = {{"skip", true}};
  EXPECT_FALSE(one(s, "therefore", skip).value);
}

TEST(PluginLibrary, ErrorsNameThePath) {
  std::string missing = message_of(
      [] { Scorer::from_json(Json::parse(R"([{"name": "plugin", "path": "/nonexistent/libx.so"}])"), "t"); });
  EXPECT_NE(missing.find("t[0].path"), std::string::npos) << missing;
  EXPECT_NE(missing.find("/nonexistent/libx.so"), std::string::npos) << missing;
  std::string bad_options =
      message_of([] { Scorer::from_json(Json::parse(R"([{"name": "plugin", "path": ")" + kPlugin + R"("}])"), "t"); });
  EXPECT_NE(bad_options.find("keyword"), std::string::npos) << bad_options;
}

TEST(PluginProcess, PythonExampleOneByOneAndBatched) {
  for (bool batch : {false, true}) {
    Scorer s = Scorer::from_json(Json::parse(R"([{"name": "process", "command": ["python3", ")" + kPython +
                                             R"("], "batch": )" + (batch ? "true" : "false") + "}]"),
                                 "t");
    // 250 chars of a 1000-char budget: 1 - 0.25.
    Json row = {{"max_chars", 1000}};
    std::vector<Json> rows(8, row);
    std::vector<std::string> texts(8, std::string(250, 'x'));
    std::vector<RewardInput> inputs(8);
    for (size_t i = 0; i < 8; ++i) {
      inputs[i].completion = texts[i];
      inputs[i].fields = &rows[i];
    }
    ThreadPool pool(4);
    for (const auto& r : s.score_batch(inputs, &pool)) {
      ASSERT_TRUE(r.value);
      EXPECT_DOUBLE_EQ(*r.value, 0.75);
      EXPECT_EQ(r.parts.at("process.chars"), 250);
    }
  }
}

TEST(PluginProcess, DeadProcessIsAClearErrorAndSlowOneTimesOut) {
  Scorer dead = Scorer::from_json(Json::parse(R"([{"name": "process", "command": "exit 3"}])"), "t");
  std::string m = message_of([&] { one(dead, "x", Json::object()); });
  EXPECT_NE(m.find("process reward 'exit 3'"), std::string::npos) << m;
  EXPECT_NE(m.find("exited with status 3"), std::string::npos) << m;
  Scorer slow = Scorer::from_json(Json::parse(R"([{"name": "process", "command": "sleep 5", "timeout_s": 0.3}])"), "t");
  auto t0 = std::chrono::steady_clock::now();
  RewardResult r = one(slow, "x", Json::object());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.value);
  EXPECT_EQ(*r.value, 0.0);
  EXPECT_NE(r.why.find("timeout"), std::string::npos) << r.why;
  EXPECT_LT(secs, 2.0);
}

// ---- Isolation (issue 12, case 3): the plug-in host process. ----
namespace {
const std::string kMisbehaving = std::string(R1KIT_BINARY_DIR) + "/tests/rewards/libmisbehaving_reward_plugin.so";

Scorer misbehaving(const std::string& mode, bool isolate, double timeout_s = 10) {
  return Scorer::from_json(Json::parse(fmt::format(
                               R"([{{"name": "plugin", "path": "{}", "options": {{"mode": "{}"}}, "isolate": {},
                                    "timeout_s": {}}}])",
                               kMisbehaving, mode, isolate ? "true" : "false", timeout_s)),
                           "recipe.json: stages[0].rewards");
}

// Rows "ok 0", "ok 1", ..., with "BAD" at index `bad`.
struct Batch {
  std::vector<std::string> texts;
  std::vector<Json> rows;
  std::vector<RewardInput> inputs;
  Batch(size_t n, size_t bad) : texts(n), rows(n, Json::object()), inputs(n) {
    for (size_t i = 0; i < n; ++i) {
      texts[i] = i == bad ? "this one is BAD" : "ok " + std::to_string(i);
      inputs[i].completion = texts[i];
      inputs[i].fields = &rows[i];
    }
  }
};
}  // namespace

TEST(PluginIsolation, SameResultsAsInProcess) {
  for (bool isolate : {false, true}) {
    Scorer s = Scorer::from_json(
        Json::parse(R"([{"name": "plugin", "path": ")" + kPlugin +
                    R"(", "options": {"keyword": "therefore"}, "isolate": )" + (isolate ? "true" : "false") + "}]"),
        "t");
    std::vector<std::string> texts = {"x, therefore y", "x, so y", "therefore", "\xff\xfe bytes"};
    std::vector<Json> rows = {Json::object(), Json::object(), {{"skip", true}}, Json::object()};
    std::vector<RewardInput> inputs(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) inputs[i].completion = texts[i], inputs[i].fields = &rows[i];
    ThreadPool pool(3);
    const auto r = s.score_batch(inputs, &pool);
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(*r[0].value, 1.0);
    EXPECT_EQ(*r[1].value, 0.0);
    EXPECT_FALSE(r[2].value);
    EXPECT_NE(r[2].why.find("row asked to be skipped"), std::string::npos) << r[2].why;
    EXPECT_EQ(*r[3].value, 0.0);
    EXPECT_EQ(*one(s, "therefore", Json::object()).value, 1.0);  // one row at a time too
  }
}

TEST(PluginIsolation, CrashIsAnErrorNamingPluginRowAndSignal) {
  for (const auto& [mode, signal] : {std::pair{"segv", "SIGSEGV"}, std::pair{"abort", "SIGABRT"}}) {
    Scorer s = misbehaving(mode, true);
    Batch b(6, 4);
    ThreadPool pool(2);
    const std::string m = message_of([&] { s.score_batch(b.inputs, &pool); });
    EXPECT_NE(m.find(kMisbehaving), std::string::npos) << m;
    EXPECT_NE(m.find(signal), std::string::npos) << m;
    EXPECT_NE(m.find("row 4 of the batch"), std::string::npos) << m;
    EXPECT_NE(m.find("this one is BAD"), std::string::npos) << m;
    // A batch sent as several chunks names the row of the whole batch.
    Scorer again = misbehaving(mode, true);
    Batch big(200, 173);
    const std::string m2 = message_of([&] { again.score_batch(big.inputs, &pool); });
    EXPECT_NE(m2.find("row 173 of the batch"), std::string::npos) << m2;
    // The host is gone, r1kit is not: a new Scorer works in this very process.
    Scorer fine = misbehaving(mode, true);
    EXPECT_EQ(*one(fine, "all good", Json::object()).value, 0.5);
  }
}

TEST(PluginIsolation, CreateErrorWithoutNulIsReadWithItsLength) {
  for (bool isolate : {false, true}) {
    const std::string m = message_of([&] { misbehaving("no_nul", isolate); });
    const std::string want = "create failed: " + std::string(512, 'x');
    ASSERT_NE(m.find(want), std::string::npos) << m;
    EXPECT_EQ(m.size(), m.find(want) + want.size())
        << "bytes after the buffer: " << m.substr(m.find(want) + want.size());
    EXPECT_NE(m.find("recipe.json: stages[0].rewards[0].path"), std::string::npos) << m;
  }
}

TEST(PluginIsolation, NaNAndErrorReturnsAreCountedErrorsNotSkips) {
  for (bool isolate : {false, true}) {
    for (const char* mode : {"nan", "fail"}) {
      Scorer s = misbehaving(mode, isolate);
      Batch b(8, 3);
      ThreadPool pool(2);
      const auto results = s.score_batch(b.inputs, &pool);
      ASSERT_TRUE(results[3].value) << "an error scores 0, it is not a skip";
      EXPECT_EQ(*results[3].value, 0.0);
      EXPECT_EQ(results[3].errored_rewards, std::vector<std::string>{"plugin"});
      EXPECT_EQ(*results[0].value, 0.5);
      RewardTally tally;
      s.tally(results, tally);
      EXPECT_EQ(tally.errors[0], 1.0);
      EXPECT_EQ(tally.timeouts[0], 0.0);
      EXPECT_EQ(s.too_many_failures(tally, 8, 0.2), "");
      const std::string too_many = s.too_many_failures(tally, 8, 0.1);
      EXPECT_NE(too_many.find("reward 'plugin' failed on 1 of 8 completions (> 10%): 0 timeouts, 1 errors"),
                std::string::npos)
          << too_many;
    }
  }
}

TEST(PluginIsolation, HangIsStoppedAtTheBudgetNamingTheRowAndTheHostRestarts) {
  Scorer s = misbehaving("hang", true, 0.5);
  Batch b(4, 2);
  ThreadPool pool(2);
  const auto t0 = std::chrono::steady_clock::now();
  const auto results = s.score_batch(b.inputs, &pool);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 5.0);
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) EXPECT_EQ(r.timed_out_rewards, std::vector<std::string>{"plugin"});
  EXPECT_NE(results[2].why.find("still scoring this row"), std::string::npos) << results[2].why;
  EXPECT_NE(results[0].why.find("stuck on row(s) 2"), std::string::npos) << results[0].why;
  // The next call starts a new host.
  EXPECT_EQ(*one(s, "fine now", Json::object()).value, 0.5);
  // Several chunks: those scored before the stuck one keep their results (budget 0.02 s x 100).
  Scorer quick = misbehaving("hang", true, 0.02);
  Batch big(200, 173);
  const auto partial = quick.score_batch(big.inputs, &pool);
  ASSERT_EQ(partial.size(), 200u);
  EXPECT_EQ(*partial[0].value, 0.5);
  EXPECT_TRUE(partial[0].timed_out_rewards.empty());
  EXPECT_EQ(partial[173].timed_out_rewards, std::vector<std::string>{"plugin"});
  EXPECT_NE(partial[173].why.find("still scoring this row"), std::string::npos) << partial[173].why;
  EXPECT_NE(partial[199].why.find("stuck on row(s) 173"), std::string::npos) << partial[199].why;
}
