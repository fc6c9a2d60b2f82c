#include "api/ui_message_stream.hpp"

#include "engine/cursor.hpp"
#include "http/sse.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace chatd::api {
namespace {

namespace json = boost::json;

// The one text part of an answer.
constexpr std::string_view kTextPart = "text";

std::string event(const json::object& chunk, const MessageId& id, std::int64_t offset) {
    return http::format_sse_event({}, engine::encode_cursor({id, offset}), json::serialize(chunk));
}

}  // namespace

std::string_view ui_finish_reason(const store::Message& m) {
    using store::MessageStatus;
    if (m.status == MessageStatus::error) return "error";
    std::string_view reason = m.finish_reason ? std::string_view(*m.finish_reason) : "stop";
    if (reason == "stop" || reason == "end_turn" || reason == "stop_sequence") return "stop";
    if (reason == "length" || reason == "max_tokens") return "length";
    if (reason == "content_filter") return "content-filter";
    if (reason == "tool_calls" || reason == "tool_use") return "tool-calls";
    return "other";
}

std::string UiMessageStream::head_lines() const {
    return "x-vercel-ai-ui-message-stream: v1\r\n";
}

std::string UiMessageStream::opening(const store::Message& m, std::int64_t offset) const {
    if (continuation_) return {};
    return event({{"type", "start"}, {"messageId", m.id.value}}, m.id, offset) +
           event({{"type", "start-step"}}, m.id, offset) +
           event({{"type", "text-start"}, {"id", kTextPart}}, m.id, offset);
}

std::string UiMessageStream::deltas(const MessageId& id, std::string_view content, std::size_t from,
                                    std::size_t max_bytes) const {
    std::string out;
    while (from < content.size()) {
        auto end = catch_up_end(content, from, max_bytes);
        out += event({{"type", "text-delta"},
                      {"id", kTextPart},
                      {"delta", content.substr(from, end - from)}},
                     id, static_cast<std::int64_t>(end));
        from = end;
    }
    return out;
}

std::string UiMessageStream::ending(const store::Message& m, std::int64_t offset) const {
    std::string out = event({{"type", "text-end"}, {"id", kTextPart}}, m.id, offset);
    if (m.status == store::MessageStatus::cancelled) {
        // As the AI SDK's own servers end a stream whose request was aborted.
        out += event({{"type", "abort"}, {"reason", "cancelled"}}, m.id, offset);
    } else {
        if (m.status == store::MessageStatus::error) {
            std::string text = m.error ? m.error->code + ": " + m.error->message : "error";
            out += event({{"type", "error"}, {"errorText", text}}, m.id, offset);
        }
        out += event({{"type", "finish-step"}}, m.id, offset);
        out += event({{"type", "finish"}, {"finishReason", ui_finish_reason(m)}}, m.id, offset);
    }
    out += http::format_sse_event({}, engine::encode_cursor({m.id, offset}), "[DONE]");
    return out;
}

}  // namespace chatd::api
