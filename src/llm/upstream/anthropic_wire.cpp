// Anthropic messages: POST {base}/v1/messages with `stream: true`. Named events:
// message_start (input usage), content_block_start/_delta/_stop per block,
// message_delta (stop_reason, output usage), message_stop (the end), ping, and
// error. Only text blocks are the answer: thinking blocks (thinking_delta,
// signature_delta) and tool input are dropped, not stored.
#include "llm/upstream/json_access.hpp"
#include "llm/upstream/wire.hpp"

#include <map>

namespace chatd::llm::upstream {
namespace {

namespace json = boost::json;

constexpr std::string_view kWhitespace = " \t\r\n";

std::string map_stop_reason(std::string_view raw) {
    if (raw == "max_tokens" || raw == "model_context_window_exceeded") return "length";
    if (raw == "refusal") return "content_filter";
    return "stop";  // end_turn, stop_sequence, tool_use, pause_turn
}

// Anthropic rejects a final assistant turn that ends in whitespace.
std::string_view trim_trailing_whitespace(std::string_view s) {
    auto end = s.find_last_not_of(kWhitespace);
    return end == std::string_view::npos ? std::string_view() : s.substr(0, end + 1);
}

class AnthropicDecoder final : public WireDecoder {
public:
    // When the partial answer sent for continuation lost its trailing
    // whitespace, the continuation's leading whitespace replaces it.
    explicit AnthropicDecoder(bool skip_leading_whitespace)
        : skip_leading_whitespace_(skip_leading_whitespace) {}

    std::optional<Failure> feed(const SseEvent& event, Decoded& out) override {
        if (done_) return std::nullopt;
        auto parsed = parse_object(event.data);
        if (!parsed) return malformed_event();
        const auto& o = *parsed;
        auto type = string_at(o, "type");
        if (type.empty()) type = event.event;
        if (type == "message_start") {
            if (auto* m = object_at(o, "message"))
                if (auto* u = object_at(*m, "usage"))
                    usage_ = Usage{int_at(*u, "input_tokens"), int_at(*u, "output_tokens")};
        } else if (type == "content_block_start") {
            auto* block = object_at(o, "content_block");
            auto block_type = block ? string_at(*block, "type") : std::string_view();
            auto kind = block_type == "text"       ? Block::text
                        : block_type == "thinking" ? Block::thinking
                                                   : Block::other;  // tool use, redacted thinking
            blocks_[int_at(o, "index")] = kind;
            if (kind == Block::text) append(string_at(*block, "text"), out.text);
            if (kind == Block::thinking) out.reasoning.append(string_at(*block, "thinking"));
        } else if (type == "content_block_delta") {
            auto* delta = object_at(o, "delta");
            auto delta_type = delta ? string_at(*delta, "type") : std::string_view();
            auto kind = blocks_[int_at(o, "index")];
            if (delta_type == "text_delta" && kind == Block::text)
                append(string_at(*delta, "text"), out.text);
            else if (delta_type == "thinking_delta" && kind == Block::thinking)
                out.reasoning.append(string_at(*delta, "thinking"));
            // signature_delta: the thinking's signature, needed only to send
            // it back with tool use, which chatd does not do.
        } else if (type == "message_delta") {
            if (auto* delta = object_at(o, "delta"))
                if (auto reason = string_at(*delta, "stop_reason"); !reason.empty())
                    finish_reason_ = map_stop_reason(reason);
            if (auto* u = object_at(o, "usage")) {
                if (!usage_) usage_ = Usage{};
                if (u->contains("input_tokens")) usage_->input_tokens = int_at(*u, "input_tokens");
                usage_->output_tokens = int_at(*u, "output_tokens");  // cumulative
            }
        } else if (type == "message_stop") {
            done_ = true;
        } else if (type == "error") {
            auto* error = object_at(o, "error");
            if (!error) return failure_for_error_event({}, {});
            return failure_for_error_event(string_at(*error, "type"), string_at(*error, "message"));
        }
        // ping, content_block_stop and event types added later mean nothing here.
        return std::nullopt;
    }
    bool finished() const override { return done_; }
    std::string finish_reason() const override { return finish_reason_; }
    std::optional<Usage> usage() const override { return usage_; }

private:
    void append(std::string_view piece, std::string& text) {
        if (skip_leading_whitespace_) {
            auto start = piece.find_first_not_of(kWhitespace);
            if (start == std::string_view::npos) return;
            piece.remove_prefix(start);
            skip_leading_whitespace_ = false;
        }
        text.append(piece);
    }

    bool skip_leading_whitespace_;
    bool done_ = false;
    std::string finish_reason_ = "stop";
    std::optional<Usage> usage_;
    enum class Block { other, text, thinking };
    std::map<std::int64_t, Block> blocks_;  // by block index
};

class AnthropicWire final : public Wire {
public:
    explicit AnthropicWire(WireSettings s) : settings_(std::move(s)) {}
    std::string_view name() const override { return "anthropic"; }
    std::string_view path() const override { return "/v1/messages"; }
    std::vector<std::pair<std::string, std::string>> headers(
        const std::string& api_key) const override {
        return {{"x-api-key", api_key}, {"anthropic-version", settings_.anthropic_version}};
    }
    std::string body(const GenerationRequest& request) const override {
        std::string system;
        json::array messages;
        for (const auto& m : request.prompt) {
            if (m.role == PromptRole::system) {
                if (!system.empty()) system += "\n\n";
                system += m.content;
                continue;
            }
            messages.push_back(
                message_object(m.role == PromptRole::assistant ? "assistant" : "user", m.content));
        }
        // Continuation: the partial answer as the last assistant turn (prefill;
        // never with thinking, see can_continue).
        if (auto prefill = trim_trailing_whitespace(request.partial); !prefill.empty()) {
            messages.push_back(message_object("assistant", prefill));
        }
        json::object body;
        body["model"] = request.model;
        body["max_tokens"] = settings_.max_output_tokens;
        body["stream"] = true;
        if (!system.empty()) body["system"] = system;
        body["messages"] = std::move(messages);
        if (settings_.anthropic_thinking_budget > 0) {
            body["thinking"] = {{"type", "enabled"},
                                {"budget_tokens", settings_.anthropic_thinking_budget}};
        } else if (settings_.temperature) {
            body["temperature"] = *settings_.temperature;
        }
        return json::serialize(body);
    }
    std::unique_ptr<WireDecoder> decoder(const GenerationRequest& request) const override {
        auto prefill = trim_trailing_whitespace(request.partial);
        return std::make_unique<AnthropicDecoder>(!prefill.empty() &&
                                                  prefill.size() < request.partial.size());
    }
    bool can_continue() const override { return settings_.anthropic_thinking_budget == 0; }

private:
    WireSettings settings_;
};

}  // namespace

std::unique_ptr<Wire> make_anthropic_wire(WireSettings settings) {
    return std::make_unique<AnthropicWire>(std::move(settings));
}

}  // namespace chatd::llm::upstream
