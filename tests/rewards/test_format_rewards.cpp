// Format rewards: hand-checked cases.
#include <gtest/gtest.h>

#include "rewards/format_rewards.h"

using namespace r1kit::rewards;

TEST(Format, R1ZeroTemplate) {
  EXPECT_EQ(format_score("<think>a</think><answer>b</answer>", false), 1.0);
  EXPECT_EQ(format_score("  <think>\na\n</think>\n<answer>\nb\n</answer>\n", false), 1.0);
  EXPECT_EQ(format_score("hi <think>a</think><answer>b</answer>", false), 0.0);  // text outside
  EXPECT_EQ(format_score("<think>a</think><answer>b</answer> bye", false), 0.0);
  EXPECT_EQ(format_score("<answer>b</answer><think>a</think>", false), 0.0);                  // wrong order
  EXPECT_EQ(format_score("<think>a</think><think>c</think><answer>b</answer>", false), 0.0);  // two thinks
  EXPECT_EQ(format_score("a</think><answer>b</answer>", true), 1.0);                          // <think> in the prompt
}

TEST(Format, TagCount) {
  EXPECT_EQ(tag_count_score("<think>a</think><answer>b</answer>"), 1.0);
  EXPECT_EQ(tag_count_score("<think>a</think>"), 0.5);         // 2 of 4 tags
  EXPECT_EQ(tag_count_score("<think><think></think>"), 0.25);  // only </think> once
}

TEST(Format, DapoOverlong) {
  // max 100, cache 20: free up to 80, then (80 - L) / 20, -1 beyond 100.
  EXPECT_EQ(overlong_penalty(80, 100, 20), 0.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(90, 100, 20), -0.5);
  EXPECT_DOUBLE_EQ(overlong_penalty(100, 100, 20), -1.0);
  EXPECT_EQ(overlong_penalty(101, 100, 20), -1.0);
}

TEST(Format, LanguageConsistency) {
  EXPECT_DOUBLE_EQ(script_share("hello world", "latin"), 1.0);
  // "ab" + "你好": 2 latin letters, 2 han characters -> half in each.
  EXPECT_DOUBLE_EQ(script_share("ab 你好", "han"), 0.5);
  EXPECT_DOUBLE_EQ(script_share("我们 $x+y$ \\frac{1}{2}", "han"), 1.0);  // math is not language
  EXPECT_EQ(dominant_script("请计算 1+1"), "han");
  EXPECT_EQ(dominant_script("Compute 1+1"), "latin");
}

TEST(Format, Repetition) {
  EXPECT_EQ(repetition_penalty("a b c d e", 3, 1.0), 0.0);  // 3 trigrams, all distinct
  // "a b a b a b": trigrams aba bab aba bab -> 2 distinct of 4 -> -(1 - 0.5).
  EXPECT_DOUBLE_EQ(repetition_penalty("a b a b a b", 3, 1.0), -0.5);
  EXPECT_EQ(repetition_penalty("a b", 3, 1.0), 0.0);
}
