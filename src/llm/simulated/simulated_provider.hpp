#pragma once
// The `simulated` model: deterministic text (a function of the prompt) at a
// configurable rate, with configurable faults, able to continue from any byte
// offset of its own answer. The default provider and the one tests use.
#include "llm/provider.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chatd::llm::simulated {

struct SimulatedConfig {
    double tokens_per_second = 40;  // <= 0: as fast as the loop allows
    std::size_t min_tokens = 150;
    std::size_t max_tokens = 400;
    // Reasoning (thinking) tokens before each answer's text, at the same
    // rate (a continuation goes on from GenerationRequest::partial_reasoning).
    std::size_t reasoning_tokens = 0;
    std::optional<std::size_t> fail_after;   // fail after this many tokens
    std::optional<std::size_t> stall_after;  // stop emitting after this many tokens
    // What a real upstream's reader allows (--upstream-first-token-timeout-ms,
    // --upstream-idle-timeout-ms): a stall ends as a transient upstream_timeout
    // after it, as it would upstream. Unset: a stall lasts until cancelled.
    std::optional<std::chrono::milliseconds> first_token_timeout;
    std::optional<std::chrono::milliseconds> idle_timeout;
    // A transient failure (as a dropped connection) after this many tokens of
    // each stream, which the engine continues.
    std::optional<std::size_t> drop_every;
    // Benchmarks: each token becomes `@<scheduled emission time, µs since the
    // epoch>:<8 random hex digits> `, so a client can measure emission-to-
    // arrival latency; the text is then neither deterministic nor compressible.
    bool stamp_tokens = false;
};

// The stamped form of a token scheduled at `at` (see stamp_tokens).
std::string stamped_token(std::chrono::system_clock::time_point at, std::uint64_t random);

// The whole answer for a prompt, as tokens (words with their trailing space or
// line break). Contains multi-byte UTF-8 (accents, CJK, emoji).
std::vector<std::string> simulated_answer(const std::vector<PromptMessage>& prompt,
                                          const SimulatedConfig& config);

// The reasoning before the answer to a prompt, as tokens (config.reasoning_tokens
// of them).
std::vector<std::string> simulated_reasoning(const std::vector<PromptMessage>& prompt,
                                             const SimulatedConfig& config);

// The tokens that follow byte `offset` of the answer: a token cut by the offset
// is resumed from there. `offset` must be a UTF-8 boundary of the answer.
std::vector<std::string> tokens_after(const std::vector<std::string>& answer, std::size_t offset);

class SimulatedProvider final : public Provider {
public:
    explicit SimulatedProvider(SimulatedConfig config) : config_(config) {}
    std::string_view name() const override { return "simulated"; }
    bool can_continue() const override { return true; }
    std::unique_ptr<ProviderStream> start(net::any_io_executor ex,
                                          GenerationRequest request) override;

private:
    SimulatedConfig config_;
};

}  // namespace chatd::llm::simulated
