// Micro-benchmarks of what chatd does per token and per delta event on the I/O
// thread: framing delta events, encoding and decoding cursors, SSE framing,
// and UTF-8 boundary search. Run: build/release/bin/chatd_micro
#include "api/event_stream.hpp"
#include "core/ids.hpp"
#include "core/utf8.hpp"
#include "engine/cursor.hpp"
#include "http/sse.hpp"
#include "llm/simulated/simulated_provider.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace {

using namespace chatd;

// `count` stamped tokens, as chatd --sim-stamp-tokens produces them (27 bytes
// each).
std::string stamped_text(std::size_t count) {
    std::string text;
    auto at = std::chrono::system_clock::now();
    for (std::size_t i = 0; i < count; ++i)
        text += llm::simulated::stamped_token(at + std::chrono::milliseconds(20 * i),
                                              0x9E3779B97F4A7C15ull * (i + 1));
    return text;
}

// Multi-byte text like the simulated model's default answers.
std::string mixed_text(std::size_t bytes) {
    const std::string words = "the stream café naïve 日本語 文字 🙂 🚀 durable token ";
    std::string text;
    while (text.size() < bytes) text += words;
    text.resize(utf8_floor(text, bytes));
    return text;
}

// One delta event for the last `tokens` tokens of a message: what a subscriber
// writes after a commit (group commit coalesces several tokens per event).
void BM_format_deltas_tail(benchmark::State& state) {
    auto tokens = static_cast<std::size_t>(state.range(0));
    auto id = new_message_id();
    auto content = stamped_text(500);
    std::size_t from = content.size() - tokens * 27;
    for (auto _ : state) {
        auto out = api::format_deltas({id, static_cast<std::int64_t>(from)}, content, 16 * 1024);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(tokens * 27));
}
BENCHMARK(BM_format_deltas_tail)->Arg(1)->Arg(4)->Arg(16);

// A resume from offset 0 of a whole answer: many 16 KiB delta events.
void BM_format_deltas_whole(benchmark::State& state) {
    auto id = new_message_id();
    auto content = mixed_text(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        auto out = api::format_deltas({id}, content, 16 * 1024);
        benchmark::DoNotOptimize(out);
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_format_deltas_whole)->Arg(16 * 1024)->Arg(256 * 1024);

void BM_format_sse_event(benchmark::State& state) {
    auto id = engine::encode_cursor({new_message_id(), 12345});
    std::string data = R"({"message_id":"msg_01JB8Z5Q0000000000000000AA","offset":12318,)"
                       R"("text":"@1732406400000000:9e3779b9 "})";
    for (auto _ : state) {
        auto out = http::format_sse_event("delta", id, data);
        benchmark::DoNotOptimize(out);
    }
}
BENCHMARK(BM_format_sse_event);

void BM_encode_cursor(benchmark::State& state) {
    engine::Cursor c{new_message_id(), 123456};
    for (auto _ : state) {
        auto out = engine::encode_cursor(c);
        benchmark::DoNotOptimize(out);
    }
}
BENCHMARK(BM_encode_cursor);

void BM_decode_cursor(benchmark::State& state) {
    auto text = engine::encode_cursor({new_message_id(), 123456});
    for (auto _ : state) {
        auto c = engine::decode_cursor(text);
        benchmark::DoNotOptimize(c);
    }
}
BENCHMARK(BM_decode_cursor);

void BM_decode_cursor_malformed(benchmark::State& state) {
    std::string text = "msg_not-a-cursor.00012";
    for (auto _ : state) {
        auto c = engine::decode_cursor(text);
        benchmark::DoNotOptimize(c);
    }
}
BENCHMARK(BM_decode_cursor_malformed);

void BM_utf8_floor(benchmark::State& state) {
    auto text = mixed_text(64 * 1024);
    std::size_t at = 0;
    for (auto _ : state) {
        at = (at + 16 * 1024 + 7) % text.size();
        benchmark::DoNotOptimize(utf8_floor(text, at));
    }
}
BENCHMARK(BM_utf8_floor);

void BM_stamped_token(benchmark::State& state) {
    auto at = std::chrono::system_clock::now();
    std::uint64_t r = 1;
    for (auto _ : state) {
        auto out = llm::simulated::stamped_token(at, r++);
        benchmark::DoNotOptimize(out);
    }
}
BENCHMARK(BM_stamped_token);

}  // namespace
