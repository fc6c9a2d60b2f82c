#pragma once
// A vendor's wire format: how to ask for a streamed answer, and how to read the
// server-sent events that come back. Pure functions of bytes, no I/O, so every
// fixture can be replayed through them byte by byte in unit tests.
#include "llm/provider.hpp"
#include "llm/upstream/sse_parser.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chatd::llm::upstream {

// Why an upstream attempt failed, in chatd's error codes (upstream_auth,
// upstream_bad_request, upstream_rate_limited, upstream_unavailable,
// upstream_timeout, upstream_protocol). `transient` failures are worth another
// attempt: retried before the first token, continued after it.
struct Failure {
    std::string code;
    std::string message;
    bool transient = false;
    std::optional<std::chrono::milliseconds> retry_after;
};

// A vendor error `type` (from an error body or a mid-stream error event).
Failure failure_for_error_type(std::string_view type, std::string message);
// An error event in the stream: the vendor's error type and message.
Failure failure_for_error_event(std::string_view type, std::string_view message);
// An event whose data is not a JSON object.
Failure malformed_event();
// A non-2xx response; `body` is its (bounded) body, used for the message.
Failure failure_for_status(int status, std::string_view body);

struct WireSettings {
    std::int64_t max_output_tokens = 1024;
    std::optional<double> temperature;
    bool continue_final_message = false;  // OpenAI-compatible servers that support it
    // OpenAI's newer models take `max_completion_tokens`; compatible servers
    // and older models take `max_tokens`.
    std::string openai_max_tokens_field = "max_tokens";
    std::string anthropic_version = "2023-06-01";
    // Anthropic's extended thinking: its budget in tokens (0: off). With it,
    // no temperature is sent and no partial answer is continued (prefill),
    // neither of which the API takes together with thinking.
    std::int64_t anthropic_thinking_budget = 0;
};

// What one event of the stream says of the answer: its text, and the model's
// reasoning (thinking), which is never part of the text.
struct Decoded {
    std::string reasoning;
    std::string text;
};

// Reads one response's events. feed() sets what an event adds to the answer
// and returns a failure for an error event or a malformed one.
class WireDecoder {
public:
    virtual ~WireDecoder() = default;
    virtual std::optional<Failure> feed(const SseEvent& event, Decoded& out) = 0;
    // The terminal event arrived: the answer is complete.
    virtual bool finished() const = 0;
    // chatd's finish reason: stop, length or content_filter.
    virtual std::string finish_reason() const = 0;
    virtual std::optional<Usage> usage() const = 0;
};

class Wire {
public:
    virtual ~Wire() = default;
    virtual std::string_view name() const = 0;
    // Appended to the base URL's path.
    virtual std::string_view path() const = 0;
    virtual std::vector<std::pair<std::string, std::string>> headers(
        const std::string& api_key) const = 0;
    virtual std::string body(const GenerationRequest& request) const = 0;
    virtual std::unique_ptr<WireDecoder> decoder(const GenerationRequest& request) const = 0;
    // Whether a partial answer can be sent back to be continued.
    virtual bool can_continue() const = 0;
};

std::unique_ptr<Wire> make_openai_wire(WireSettings settings);
std::unique_ptr<Wire> make_anthropic_wire(WireSettings settings);

}  // namespace chatd::llm::upstream
