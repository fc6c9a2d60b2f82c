#include "llm/simulated/simulated_provider.hpp"

#include "core/utf8.hpp"
#include "support/run.hpp"

#include <gtest/gtest.h>
#include <boost/asio/steady_timer.hpp>

namespace chatd::llm::simulated {
namespace {

std::vector<PromptMessage> prompt(std::string text) {
    return {{PromptRole::user, std::move(text)}};
}

std::string join(const std::vector<std::string>& tokens) {
    std::string s;
    for (const auto& t : tokens) s += t;
    return s;
}

TEST(SimulatedAnswer, IsADeterministicFunctionOfThePrompt) {
    SimulatedConfig config;
    EXPECT_EQ(simulated_answer(prompt("hi"), config), simulated_answer(prompt("hi"), config));
    EXPECT_NE(simulated_answer(prompt("hi"), config), simulated_answer(prompt("ho"), config));
}

TEST(SimulatedAnswer, LengthStaysWithinConfiguredRange) {
    SimulatedConfig config{.min_tokens = 10, .max_tokens = 20};
    for (int i = 0; i < 50; ++i) {
        auto n = simulated_answer(prompt(std::to_string(i)), config).size();
        EXPECT_GE(n, 10u);
        EXPECT_LE(n, 20u);
    }
}

TEST(SimulatedAnswer, IsValidUtf8WithMultiByteCharacters) {
    auto text = join(simulated_answer(prompt("x"), SimulatedConfig{}));
    EXPECT_TRUE(is_valid_utf8(text));
    EXPECT_TRUE(std::any_of(text.begin(), text.end(),
                            [](char c) { return static_cast<unsigned char>(c) >= 0x80; }));
}

TEST(SimulatedAnswer, ContinuesFromAnyCharacterBoundary) {
    auto answer = simulated_answer(prompt("continue"), SimulatedConfig{});
    auto whole = join(answer);
    for (std::size_t offset = 0; offset <= whole.size(); ++offset) {
        if (!is_utf8_boundary(whole, offset)) continue;
        EXPECT_EQ(whole.substr(0, offset) + join(tokens_after(answer, offset)), whole) << offset;
    }
}

std::vector<StreamEvent> drain(SimulatedConfig config, std::string partial = {}) {
    boost::asio::io_context io;
    SimulatedProvider provider(config);
    auto stream = provider.start(io.get_executor(),
                                 GenerationRequest{.prompt = prompt("q"), .partial = partial});
    return test::run(io, [](ProviderStream& s) -> net::awaitable<std::vector<StreamEvent>> {
        std::vector<StreamEvent> events;
        for (;;) {
            events.push_back(co_await s.next());
            auto kind = events.back().kind;
            if (kind != StreamEvent::Kind::text && kind != StreamEvent::Kind::reasoning)
                co_return events;
        }
    }(*stream));
}

TEST(SimulatedProvider, StreamsTheAnswerAndEndsWithStop) {
    SimulatedConfig config{.tokens_per_second = 0, .min_tokens = 5, .max_tokens = 5};
    auto events = drain(config);
    ASSERT_EQ(events.size(), 6u);
    EXPECT_EQ(events.back().kind, StreamEvent::Kind::done);
    EXPECT_EQ(events.back().finish_reason, "stop");
    ASSERT_TRUE(events.back().usage);
    EXPECT_EQ(events.back().usage->output_tokens, 5);
    std::string text;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) text += events[i].text;
    EXPECT_EQ(text, join(simulated_answer(prompt("q"), config)));
}

TEST(SimulatedProvider, ContinuesAfterAPartialAnswer) {
    SimulatedConfig config{.tokens_per_second = 0, .min_tokens = 8, .max_tokens = 8};
    auto whole = join(simulated_answer(prompt("q"), config));
    auto cut = utf8_floor(whole, whole.size() / 2);
    auto events = drain(config, whole.substr(0, cut));
    std::string rest;
    for (const auto& e : events) rest += e.text;
    EXPECT_EQ(whole.substr(0, cut) + rest, whole);
}

TEST(SimulatedProvider, FailsAfterConfiguredTokens) {
    SimulatedConfig config{
        .tokens_per_second = 0, .min_tokens = 10, .max_tokens = 10, .fail_after = 3};
    auto events = drain(config);
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events.back().kind, StreamEvent::Kind::failed);
    EXPECT_EQ(events.back().error_code, "provider_error");
}

TEST(SimulatedProvider, CancelEndsAStalledStream) {
    boost::asio::io_context io;
    SimulatedProvider provider(SimulatedConfig{.tokens_per_second = 0, .stall_after = 0});
    auto stream = provider.start(io.get_executor(), GenerationRequest{.prompt = prompt("q")});
    boost::asio::steady_timer later(io, std::chrono::milliseconds(20));
    later.async_wait([&](boost::system::error_code) { stream->cancel(); });
    auto event = test::run(io, stream->next());
    EXPECT_EQ(event.kind, StreamEvent::Kind::failed);
}

// A stall ends as a real upstream's reader would end it: after the idle
// timeout once text came, after the first-token timeout before any.
TEST(SimulatedProvider, AStallEndsAsAnUpstreamTimeoutOnceTextFlowed) {
    using std::chrono::milliseconds;
    auto events = drain(SimulatedConfig{.tokens_per_second = 0,
                                        .min_tokens = 10,
                                        .max_tokens = 10,
                                        .stall_after = 3,
                                        .first_token_timeout = milliseconds(60000),
                                        .idle_timeout = milliseconds(20)});
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events.back().kind, StreamEvent::Kind::failed);
    EXPECT_EQ(events.back().error_code, "upstream_timeout");
    EXPECT_TRUE(events.back().transient);  // continued, as an upstream's would be
    EXPECT_NE(events.back().error_message.find("20 ms"), std::string::npos);
}

TEST(SimulatedProvider, AStallBeforeAnyTextEndsAfterTheFirstTokenTimeout) {
    using std::chrono::milliseconds;
    auto events = drain(SimulatedConfig{.tokens_per_second = 0,
                                        .stall_after = 0,
                                        .first_token_timeout = milliseconds(20),
                                        .idle_timeout = milliseconds(60000)});
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events.back().error_code, "upstream_timeout");
    EXPECT_NE(events.back().error_message.find("no answer within 20 ms"), std::string::npos);
}

TEST(SimulatedProvider, ThinksFirstAsReasoningNeverText) {
    SimulatedConfig config{
        .tokens_per_second = 0, .min_tokens = 3, .max_tokens = 3, .reasoning_tokens = 4};
    auto events = drain(config);
    ASSERT_EQ(events.size(), 8u);
    std::string reasoning, text;
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(events[i].kind, StreamEvent::Kind::reasoning);
        reasoning += events[i].text;
    }
    for (std::size_t i = 4; i < 7; ++i) {
        EXPECT_EQ(events[i].kind, StreamEvent::Kind::text);
        text += events[i].text;
    }
    EXPECT_EQ(reasoning, join(simulated_reasoning(prompt("q"), config)));
    EXPECT_EQ(reasoning.rfind("Thinking: ", 0), 0u);
    EXPECT_EQ(text, join(simulated_answer(prompt("q"), config)));
    EXPECT_EQ(events.back().kind, StreamEvent::Kind::done);
}

TEST(SimulatedProvider, AContinuationInsideTheReasoningGoesOnFromIt) {
    SimulatedConfig config{
        .tokens_per_second = 0, .min_tokens = 3, .max_tokens = 3, .reasoning_tokens = 6};
    auto whole = join(simulated_reasoning(prompt("q"), config));
    auto cut = utf8_floor(whole, whole.size() / 2);
    boost::asio::io_context io;
    SimulatedProvider provider(config);
    auto stream = provider.start(
        io.get_executor(),
        GenerationRequest{.prompt = prompt("q"), .partial_reasoning = whole.substr(0, cut)});
    std::string rest, text;
    for (;;) {
        auto e = test::run(io, stream->next());
        if (e.kind == StreamEvent::Kind::reasoning) rest += e.text;
        else if (e.kind == StreamEvent::Kind::text) text += e.text;
        else break;
    }
    EXPECT_EQ(whole.substr(0, cut) + rest, whole);
    EXPECT_EQ(text, join(simulated_answer(prompt("q"), config)));
}

TEST(SimulatedProvider, AContinuationDoesNotThinkAgain) {
    SimulatedConfig config{
        .tokens_per_second = 0, .min_tokens = 6, .max_tokens = 6, .reasoning_tokens = 4};
    auto whole = join(simulated_answer(prompt("q"), config));
    for (const auto& e : drain(config, whole.substr(0, utf8_floor(whole, 5))))
        EXPECT_NE(e.kind, StreamEvent::Kind::reasoning);
}

// Thinking is progress: a stall after it is an idle stall, not a first-token one.
TEST(SimulatedProvider, AStallAfterReasoningEndsAfterTheIdleTimeout) {
    using std::chrono::milliseconds;
    auto events = drain(SimulatedConfig{.tokens_per_second = 0,
                                        .reasoning_tokens = 2,
                                        .stall_after = 0,
                                        .first_token_timeout = milliseconds(60000),
                                        .idle_timeout = milliseconds(20)});
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events.back().error_code, "upstream_timeout");
    EXPECT_NE(events.back().error_message.find("sent nothing for 20 ms"), std::string::npos);
}

}  // namespace
}  // namespace chatd::llm::simulated

namespace chatd::llm::simulated {
namespace {

TEST(SimulatedProvider, StampedTokensCarryTheirEmissionTimeInMicroseconds) {
    auto at = std::chrono::system_clock::time_point(std::chrono::microseconds(1759257900123456));
    EXPECT_EQ(stamped_token(at, 0xABCDEF0123ull), "@1759257900123456:cdef0123 ");
}

}  // namespace
}  // namespace chatd::llm::simulated
