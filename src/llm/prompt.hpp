#pragma once
// Fitting a conversation into a prompt budget.
#include "llm/provider.hpp"

#include <cstddef>
#include <vector>

namespace chatd::llm {

// Drops the oldest turns until the content bytes fit in `budget_bytes`. The
// system prompt and the newest turn always stay (so a prompt may still exceed
// the budget); the first turn after the system prompt is left a user turn, as
// vendors require.
void fit_prompt(std::vector<PromptMessage>& prompt, std::size_t budget_bytes);

}  // namespace chatd::llm
