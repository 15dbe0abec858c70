// Logging levels and line format; the progress bar's text and its silence off a terminal.
#include <gtest/gtest.h>

#include <string>

#include "src/logging.h"
#include "src/progress.h"

namespace r1kit {
namespace {

TEST(Logging, ParseLevel) {
  log::Level l = log::Level::Info;
  EXPECT_TRUE(log::parse_level("debug", l));
  EXPECT_EQ(l, log::Level::Debug);
  EXPECT_TRUE(log::parse_level("warning", l));
  EXPECT_EQ(l, log::Level::Warn);
  EXPECT_TRUE(log::parse_level("error", l));
  EXPECT_EQ(l, log::Level::Error);
  EXPECT_FALSE(log::parse_level("verbose", l));
  EXPECT_EQ(l, log::Level::Error);  // untouched on failure
}

TEST(Logging, LevelFiltersAndLineFormat) {
  const log::Level saved = log::level();
  log::set_level(log::Level::Warn);
  testing::internal::CaptureStderr();
  log::info("hidden {}", 1);
  log::warn("step {} loss {:.4f}", 3, 0.12345);
  const std::string out = testing::internal::GetCapturedStderr();
  log::set_level(saved);
  // "[W 0.012s] step 3 loss 0.1235\n": tag, elapsed seconds, the formatted message.
  EXPECT_EQ(out.rfind("[W ", 0), 0u) << out;
  const size_t close = out.find("s] ");
  ASSERT_NE(close, std::string::npos) << out;
  EXPECT_NO_THROW(std::stod(out.substr(3, close - 3))) << out;
  EXPECT_EQ(out.substr(close + 3), "step 3 loss 0.1235\n");
  EXPECT_FALSE(log::enabled(log::Level::Debug) && saved != log::Level::Debug);
}

TEST(Progress, LineText) {
  // 50 of 100 in 10 s: 5 items/s, 50 left -> 10 s; 50 * 24 / 100 = 12 cells filled.
  EXPECT_EQ(progress_line("rollout", 50, 100, 10.0, "loss 0.5", 200),
            "rollout [############............] 50/100 5.00/s eta 0:10 loss 0.5");
  // Unknown total: count and rate only; rates >= 10 without decimals.
  EXPECT_EQ(progress_line("gen", 30, 0, 2.0, "", 200), "gen 30 15/s");
  // 1 of 3601 in 1 s: 3600 left at 1/s is one hour.
  EXPECT_EQ(progress_line("x", 1, 3601, 1.0, "", 200), "x [........................] 1/3601 1.00/s eta 1:00:00");
  // Nothing done yet: no rate, so no ETA.
  EXPECT_EQ(progress_line("x", 0, 10, 0.0, "", 200), "x [........................] 0/10 0.00/s eta ?");
  EXPECT_EQ(progress_line("rollout", 50, 100, 10.0, "", 7), "rollout");  // cut to the width
}

TEST(Progress, SilentWhenStderrIsNotATerminal) {
  testing::internal::CaptureStderr();  // stderr is now a file, not a terminal
  {
    Progress p("score", 3);
    EXPECT_FALSE(p.visible());
    p.update(1);
    p.update(3, "done");
    p.finish();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace r1kit
