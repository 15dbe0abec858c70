// maj@k of the eval stage (pipelines/eval.h majority_vote_correct), hand-checked cases: the
// majority answer decides, equal answers in different notations vote together, only the
// first k completions vote, ties go to the answer that got there first, no answer abstains.
#include <gtest/gtest.h>

#include "pipelines/eval.h"

namespace r1kit::pipelines {
namespace {

std::vector<std::string> answers(std::initializer_list<const char*> xs) {
  std::vector<std::string> out;
  for (const char* x : xs) out.push_back(std::string("<think>...</think> <answer>") + x + "</answer>");
  return out;
}

TEST(EvalVote, MajorityAnswerDecides) {
  EXPECT_TRUE(majority_vote_correct(answers({"3", "3", "4"}), {true, true, false}, 3));
  EXPECT_FALSE(majority_vote_correct(answers({"4", "3", "4"}), {false, true, false}, 3));
}

TEST(EvalVote, EqualValuesInOtherNotationsVoteTogether) {
  EXPECT_TRUE(majority_vote_correct(answers({"1/2", "\\frac{1}{2}", "0.7"}), {true, true, false}, 3));
  EXPECT_TRUE(majority_vote_correct(answers({"0.7", "1/2", "\\frac{1}{2}"}), {false, true, true}, 3));
}

TEST(EvalVote, OnlyTheFirstKVote) {
  EXPECT_FALSE(majority_vote_correct(answers({"4", "3", "3"}), {false, true, true}, 1));
  EXPECT_TRUE(majority_vote_correct(answers({"4", "3", "3"}), {false, true, true}, 3));
}

TEST(EvalVote, TiesGoToTheFirstAndNoAnswerAbstains) {
  EXPECT_TRUE(majority_vote_correct(answers({"3", "4"}), {true, false}, 2));
  EXPECT_FALSE(majority_vote_correct(answers({"4", "3"}), {false, true}, 2));
  EXPECT_FALSE(majority_vote_correct({"no idea", "none"}, {false, false}, 2));
  // Two abstentions do not outvote one answer.
  EXPECT_TRUE(majority_vote_correct({"no idea", "none", "<answer>7</answer>"}, {false, false, true}, 3));
}

}  // namespace
}  // namespace r1kit::pipelines
