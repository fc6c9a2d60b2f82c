#include "llm/prompt.hpp"

#include <algorithm>

namespace chatd::llm {

void fit_prompt(std::vector<PromptMessage>& prompt, std::size_t budget_bytes) {
    std::size_t total = 0;
    for (const auto& m : prompt) total += m.content.size();
    auto first_turn = std::find_if(prompt.begin(), prompt.end(), [](const PromptMessage& m) {
        return m.role != PromptRole::system;
    });
    auto drop = first_turn;
    auto last = prompt.end() - (prompt.empty() ? 0 : 1);
    while (drop < last && total > budget_bytes) total -= (drop++)->content.size();
    while (drop < last && drop->role != PromptRole::user) ++drop;
    prompt.erase(first_turn, drop);
}

}  // namespace chatd::llm
