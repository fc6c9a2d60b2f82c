// Fuzzes what a model provider's server sends back: the event-stream parser
// (src/llm/upstream/sse_parser.hpp) and both vendors' decoders
// (src/llm/upstream/wire.hpp), as UpstreamProvider::read_more runs them.
//
// The input is the response body. Properties, from the headers' contracts:
//   - bytes may arrive split anywhere: feeding the body whole, in reads of
//     sizes drawn from the input, and byte by byte yields the same events and
//     the same failed() state;
//   - no event's data outgrows the parser's limit;
//   - a decoder reports a finish reason among stop, length and
//     content_filter, and fails only with the documented codes; an event
//     that fails adds no text.
// Whether the text is valid UTF-8 is not checked: the decoders do not promise
// it (it holds today only because Boost.JSON rejects invalid UTF-8).
#include "fuzz_support.hpp"
#include "llm/upstream/sse_parser.hpp"
#include "llm/upstream/wire.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace up = chatd::llm::upstream;

struct Parsed {
    std::vector<up::SseEvent> events;
    bool failed = false;
};

bool same_events(const std::vector<up::SseEvent>& a, const std::vector<up::SseEvent>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].event != b[i].event || a[i].data != b[i].data) return false;
    return true;
}

template <class NextSize>
Parsed parse(std::string_view body, std::size_t max_event_bytes, NextSize next_size) {
    up::SseParser parser(max_event_bytes);
    Parsed out;
    while (!body.empty()) {
        auto n = std::min(body.size(), next_size(body.size()));
        bool ok = parser.feed(body.substr(0, n), out.events);
        CHATD_FUZZ_CHECK(ok == !parser.failed());
        if (!ok) break;
        body.remove_prefix(n);
    }
    out.failed = parser.failed();
    return out;
}

bool documented_failure_code(std::string_view code) {
    return code == "upstream_auth" || code == "upstream_bad_request" ||
           code == "upstream_rate_limited" || code == "upstream_unavailable" ||
           code == "upstream_timeout" || code == "upstream_protocol";
}

void decode(const up::Wire& wire, const chatd::llm::GenerationRequest& request,
            const std::vector<up::SseEvent>& events) {
    auto decoder = wire.decoder(request);
    for (const auto& event : events) {
        up::Decoded out;
        auto failure = decoder->feed(event, out);
        CHATD_FUZZ_CHECK(!failure || (out.text.empty() && out.reasoning.empty()));
        if (failure) {
            CHATD_FUZZ_CHECK(documented_failure_code(failure->code));
            return;  // the provider ends the attempt here
        }
        if (decoder->finished()) break;
    }
    auto reason = decoder->finish_reason();
    CHATD_FUZZ_CHECK(reason == "stop" || reason == "length" || reason == "content_filter");
    (void)decoder->usage();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto openai = up::make_openai_wire({});
    static const auto anthropic = up::make_anthropic_wire({});

    auto body = chatd::fuzz::as_text(data, size);
    chatd::fuzz::Splitter random(body);
    // Mostly the production limit; sometimes one small enough for inputs to outgrow.
    std::size_t max_event_bytes = random.next() % 4 == 0 ? 16 + random.next() % 1024 : 1 << 20;

    auto whole = parse(body, max_event_bytes, [](std::size_t left) { return left; });
    auto split =
        parse(body, max_event_bytes, [&](std::size_t left) { return random.read_size(left); });
    auto bytewise = parse(body, max_event_bytes, [](std::size_t) { return std::size_t{1}; });
    CHATD_FUZZ_CHECK(whole.failed == split.failed && whole.failed == bytewise.failed);
    CHATD_FUZZ_CHECK(same_events(whole.events, split.events));
    CHATD_FUZZ_CHECK(same_events(whole.events, bytewise.events));
    for (const auto& e : whole.events) CHATD_FUZZ_CHECK(e.data.size() <= max_event_bytes);

    // A continuation request makes Anthropic's decoder skip leading whitespace.
    chatd::llm::GenerationRequest request{.model = "m", .prompt = {}, .partial = {}};
    if (random.next() % 2) request.partial = "The answer is ";
    decode(*openai, request, whole.events);
    decode(*anthropic, request, whole.events);
    return 0;
}
