#include "llm/prompt.hpp"

#include <gtest/gtest.h>

namespace chatd::llm {
namespace {

std::vector<PromptMessage> conversation() {
    return {{PromptRole::system, "SYSTEM"},   {PromptRole::user, "u1-----"},
            {PromptRole::assistant, "a1---"}, {PromptRole::user, "u2---"},
            {PromptRole::assistant, "a2---"}, {PromptRole::user, "u3"}};
}

std::string roles(const std::vector<PromptMessage>& p) {
    std::string out;
    for (const auto& m : p) out += m.content.substr(0, 2) + " ";
    return out;
}

TEST(FitPrompt, KeepsEverythingWithinBudget) {
    auto p = conversation();
    fit_prompt(p, 1000);
    EXPECT_EQ(roles(p), "SY u1 a1 u2 a2 u3 ");
}

TEST(FitPrompt, DropsOldestTurnsAndStartsWithAUserTurn) {
    auto p = conversation();  // 6 + 7 + 5 + 5 + 5 + 2 = 30 bytes
    fit_prompt(p, 25);        // dropping u1 fits, but a1 would lead: dropped too
    EXPECT_EQ(roles(p), "SY u2 a2 u3 ");
    p = conversation();
    fit_prompt(p, 12);
    EXPECT_EQ(roles(p), "SY u3 ");
}

TEST(FitPrompt, NeverDropsTheSystemPromptOrTheNewestTurn) {
    auto p = conversation();
    fit_prompt(p, 1);
    EXPECT_EQ(roles(p), "SY u3 ");
    std::vector<PromptMessage> only{{PromptRole::user, "a long question"}};
    fit_prompt(only, 1);
    EXPECT_EQ(only.size(), 1u);
}

}  // namespace
}  // namespace chatd::llm
