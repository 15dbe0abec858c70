// Plug-ins: the example C++ shared library (dlopen) and the example Python process
// reward (JSON lines, one request or a batch), plus their error paths.
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
