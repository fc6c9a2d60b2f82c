// OpenAI-compatible chat completions (OpenAI, OpenRouter, vLLM, llama.cpp's
// server, Ollama's /v1, LM Studio): POST {base}/chat/completions with
// `stream: true`; `data:` events carry chat.completion.chunk objects, the usage
// chunk (stream_options.include_usage) has no choices, and `data: [DONE]` ends
// the stream. An `{"error": …}` object may arrive mid-stream instead.
#include "llm/upstream/json_access.hpp"
#include "llm/upstream/wire.hpp"

namespace chatd::llm::upstream {
namespace {

namespace json = boost::json;

std::string_view role_name(PromptRole r) {
    switch (r) {
        case PromptRole::system:
            return "system";
        case PromptRole::assistant:
            return "assistant";
        case PromptRole::user:
            break;
    }
    return "user";
}

std::string map_finish_reason(std::string_view raw) {
    if (raw == "length") return "length";
    if (raw == "content_filter") return "content_filter";
    return "stop";  // stop, tool_calls, function_call, eos…
}

class OpenAiDecoder final : public WireDecoder {
public:
    std::optional<Failure> feed(const SseEvent& event, Decoded& out) override {
        if (done_) return std::nullopt;
        if (event.data == "[DONE]") {
            done_ = true;
            return std::nullopt;
        }
        auto parsed = parse_object(event.data);
        if (!parsed) return malformed_event();
        const auto& o = *parsed;
        if (auto* error = object_at(o, "error")) {
            return failure_for_error_event(string_at(*error, "type"), string_at(*error, "message"));
        }
        if (auto* u = object_at(o, "usage"))
            usage_ = Usage{int_at(*u, "prompt_tokens"), int_at(*u, "completion_tokens")};
        auto* choices = o.if_contains("choices");
        if (!choices || !choices->is_array()) return std::nullopt;
        for (const auto& c : choices->as_array()) {
            if (!c.is_object() || int_at(c.as_object(), "index") != 0) continue;
            if (auto* delta = object_at(c.as_object(), "delta")) {
                // `content` is the answer; thinking comes as `reasoning_content`
                // (DeepSeek, vLLM, llama.cpp) or `reasoning` (OpenRouter, Ollama);
                // a server that sends both sends the same text twice.
                auto reasoning = string_at(*delta, "reasoning_content");
                out.reasoning.append(reasoning.empty() ? string_at(*delta, "reasoning") : reasoning);
                out.text.append(string_at(*delta, "content"));
            }
            if (auto* f = c.as_object().if_contains("finish_reason"); f && f->is_string())
                finish_reason_ = map_finish_reason(f->as_string());
        }
        return std::nullopt;
    }
    bool finished() const override { return done_; }
    std::string finish_reason() const override { return finish_reason_; }
    std::optional<Usage> usage() const override { return usage_; }

private:
    bool done_ = false;
    std::string finish_reason_ = "stop";
    std::optional<Usage> usage_;
};

class OpenAiWire final : public Wire {
public:
    explicit OpenAiWire(WireSettings s) : settings_(std::move(s)) {}
    std::string_view name() const override { return "openai"; }
    std::string_view path() const override { return "/chat/completions"; }
    std::vector<std::pair<std::string, std::string>> headers(
        const std::string& api_key) const override {
        if (api_key.empty()) return {};  // local servers need none
        return {{"Authorization", "Bearer " + api_key}};
    }
    std::string body(const GenerationRequest& request) const override {
        json::array messages;
        for (const auto& m : request.prompt) {
            messages.push_back(message_object(role_name(m.role), m.content));
        }
        json::object body;
        body["model"] = request.model;
        if (!request.partial.empty() && settings_.continue_final_message) {
            messages.push_back(message_object("assistant", request.partial));
            body["continue_final_message"] = true;
            body["add_generation_prompt"] = false;
        }
        body["messages"] = std::move(messages);
        body["stream"] = true;
        json::object stream_options;
        stream_options["include_usage"] = true;
        body["stream_options"] = std::move(stream_options);
        body[settings_.openai_max_tokens_field] = settings_.max_output_tokens;
        if (settings_.temperature) body["temperature"] = *settings_.temperature;
        return json::serialize(body);
    }
    std::unique_ptr<WireDecoder> decoder(const GenerationRequest&) const override {
        return std::make_unique<OpenAiDecoder>();
    }
    bool can_continue() const override { return settings_.continue_final_message; }

private:
    WireSettings settings_;
};

}  // namespace

std::unique_ptr<Wire> make_openai_wire(WireSettings settings) {
    return std::make_unique<OpenAiWire>(std::move(settings));
}

}  // namespace chatd::llm::upstream
