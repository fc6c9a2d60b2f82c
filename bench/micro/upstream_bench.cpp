// Micro-benchmarks of reading a vendor stream: the cost per upstream token of
// SSE framing (baseline), of JSON parsing alone, and of the whole decode (SSE
// parser + the vendor's decoder), for OpenAI-compatible and Anthropic events.
// Run: build/release/bin/chatd_micro --benchmark_filter=Upstream
#include "llm/upstream/sse_parser.hpp"
#include "llm/upstream/wire.hpp"

#include <benchmark/benchmark.h>
#include <boost/json.hpp>

#include <string>
#include <vector>

namespace {

using namespace chatd::llm;
using namespace chatd::llm::upstream;

constexpr int kTokens = 1000;

// One typical chunk per token, as the vendors send them.
std::string openai_stream() {
    std::string s;
    for (int i = 0; i < kTokens; ++i)
        s +=
            R"(data: {"id":"chatcmpl-AX1b2c3","object":"chat.completion.chunk","created":1727721900,)"
            R"("model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_f85bea6784","choices":)"
            R"([{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]})"
            "\n\n";
    s += "data: [DONE]\n\n";
    return s;
}

std::string anthropic_stream() {
    std::string s =
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
    for (int i = 0; i < kTokens; ++i)
        s += "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
             "\"delta\":{\"type\":\"text_delta\",\"text\":\" token\"}}\n\n";
    s += "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    return s;
}

// Reads arrive in 4 KiB pieces, as from a socket.
template <class Each>
void in_reads(const std::string& bytes, Each&& each) {
    for (std::size_t at = 0; at < bytes.size(); at += 4096)
        each(std::string_view(bytes).substr(at, 4096));
}

void framing_only(benchmark::State& state, const std::string& bytes) {
    std::vector<SseEvent> events;
    for (auto _ : state) {
        SseParser parser;
        std::size_t n = 0;
        in_reads(bytes, [&](std::string_view piece) {
            events.clear();
            parser.feed(piece, events);
            n += events.size();
        });
        benchmark::DoNotOptimize(n);
    }
    state.SetItemsProcessed(state.iterations() * kTokens);
}

void json_only(benchmark::State& state, const std::string& bytes) {
    SseParser parser;
    std::vector<SseEvent> events;
    parser.feed(bytes, events);
    for (auto _ : state) {
        for (const auto& e : events) {
            boost::system::error_code ec;
            auto v = boost::json::parse(e.data, ec);
            benchmark::DoNotOptimize(v);
        }
    }
    state.SetItemsProcessed(state.iterations() * kTokens);
}

void full_decode(benchmark::State& state, const Wire& wire, const std::string& bytes) {
    std::vector<SseEvent> events;
    GenerationRequest request;
    for (auto _ : state) {
        SseParser parser;
        auto decoder = wire.decoder(request);
        std::string text;
        in_reads(bytes, [&](std::string_view piece) {
            events.clear();
            parser.feed(piece, events);
            for (const auto& e : events) {
                Decoded out;
                decoder->feed(e, out);
                text += out.text;
            }
        });
        benchmark::DoNotOptimize(text);
        if (!decoder->finished()) state.SkipWithError("stream did not finish");
    }
    state.SetItemsProcessed(state.iterations() * kTokens);
}

void BM_UpstreamOpenAiFramingOnly(benchmark::State& state) {
    framing_only(state, openai_stream());
}
void BM_UpstreamOpenAiJsonOnly(benchmark::State& state) {
    json_only(state, openai_stream());
}
void BM_UpstreamOpenAiDecode(benchmark::State& state) {
    auto wire = make_openai_wire({});
    full_decode(state, *wire, openai_stream());
}
void BM_UpstreamAnthropicFramingOnly(benchmark::State& state) {
    framing_only(state, anthropic_stream());
}
void BM_UpstreamAnthropicJsonOnly(benchmark::State& state) {
    json_only(state, anthropic_stream());
}
void BM_UpstreamAnthropicDecode(benchmark::State& state) {
    auto wire = make_anthropic_wire({});
    full_decode(state, *wire, anthropic_stream());
}

BENCHMARK(BM_UpstreamOpenAiFramingOnly);
BENCHMARK(BM_UpstreamOpenAiJsonOnly);
BENCHMARK(BM_UpstreamOpenAiDecode);
BENCHMARK(BM_UpstreamAnthropicFramingOnly);
BENCHMARK(BM_UpstreamAnthropicJsonOnly);
BENCHMARK(BM_UpstreamAnthropicDecode);

}  // namespace
