#pragma once
// The one interface every model provider implements (DESIGN §6). A provider
// starts streams; a stream yields events on the executor it was created with
// (the I/O thread) until `done` or `failed`. cancel() stops it promptly: the
// pending next() completes and any upstream request is aborted.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::llm {

namespace net = boost::asio;

enum class PromptRole { system, user, assistant };

struct PromptMessage {
    PromptRole role;
    std::string content;
};

struct GenerationRequest {
    std::string model;
    std::vector<PromptMessage> prompt;
    // Text already produced for this answer; a provider that can_continue()
    // continues after it (and is not asked to otherwise).
    std::string partial;
    // Reasoning already produced for it. Only the simulated model goes on
    // from it (a vendor's model thinks afresh); never sent to a vendor.
    std::string partial_reasoning;
    // The request that caused it, for the provider's log lines (may be empty).
    std::string request_id;
};

struct Usage {
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
};

struct StreamEvent {
    // reasoning: the model's thinking (Anthropic's thinking, OpenAI-compatible
    // servers' reasoning_content), kept apart from the answer's text.
    enum class Kind { text, reasoning, done, failed };
    Kind kind = Kind::text;
    std::string text;            // kind == text or reasoning
    std::string finish_reason;   // kind == done: stop, length, content_filter
    std::optional<Usage> usage;  // kind == done, or failed when the provider knows it
    std::string error_code;      // kind == failed
    std::string error_message;   // kind == failed
    // kind == failed: another attempt could succeed (a dropped connection, an
    // overloaded server), so a partial answer is worth continuing.
    bool transient = false;
};

class ProviderStream {
public:
    virtual ~ProviderStream() = default;
    virtual net::awaitable<StreamEvent> next() = 0;
    virtual void cancel() = 0;
};

class Provider {
public:
    virtual ~Provider() = default;
    virtual std::string_view name() const = 0;
    // Whether start() continues GenerationRequest::partial instead of
    // answering afresh (continuation after a failure, resume after a crash).
    virtual bool can_continue() const = 0;
    virtual std::unique_ptr<ProviderStream> start(net::any_io_executor ex,
                                                  GenerationRequest request) = 0;
};

}  // namespace chatd::llm
