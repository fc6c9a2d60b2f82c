#include "api/ui_message_stream.hpp"

#include "engine/cursor.hpp"
#include "http/sse.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace chatd::api {
namespace {

namespace json = boost::json;

// The answer's parts: its reasoning, then its text. Reasoning that comes
// after the text has begun (models that think between answers) is a part of
// its own per piece, named by its offset.
constexpr std::string_view kTextPart = "text";
constexpr std::string_view kReasoningPart = "reasoning";

std::string event(const json::object& chunk, const engine::Cursor& at) {
    return http::format_sse_event({}, engine::encode_cursor(at), json::serialize(chunk));
}

json::object part_event(std::string_view type, std::string_view id) {
    return {{"type", type}, {"id", id}};
}

// The reasoning part is open while reasoning came and text has not.
bool reasoning_open(const engine::Cursor& at) {
    return at.offset == 0 && at.reasoning_offset > 0;
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

std::string UiMessageStream::opening(const store::Message& m, const engine::Cursor& at) const {
    if (continuation_) return {};
    return event({{"type", "start"}, {"messageId", m.id.value}}, at) +
           event({{"type", "start-step"}}, at);
}

std::string UiMessageStream::reasoning(const store::Message&, const engine::Cursor& at,
                                       std::string_view reasoning, std::size_t max_bytes) const {
    std::string out;
    const bool late = at.offset > 0;
    auto c = at;
    for_each_piece(reasoning, static_cast<std::size_t>(at.reasoning_offset), max_bytes,
                   [&](std::size_t from, std::size_t end) {
                       c.reasoning_offset = static_cast<std::int64_t>(end);
                       std::string late_id = late ? "reasoning-" + std::to_string(from) : "";
                       std::string_view id = late ? std::string_view(late_id) : kReasoningPart;
                       if (late || from == 0) out += event(part_event("reasoning-start", id), c);
                       auto delta = part_event("reasoning-delta", id);
                       delta["delta"] = reasoning.substr(from, end - from);
                       out += event(delta, c);
                       if (late) out += event(part_event("reasoning-end", id), c);
                   });
    return out;
}

std::string UiMessageStream::deltas(const store::Message&, const engine::Cursor& at,
                                    std::string_view content, std::size_t max_bytes) const {
    std::string out;
    auto c = at;
    for_each_piece(content, static_cast<std::size_t>(at.offset), max_bytes,
                   [&](std::size_t from, std::size_t end) {
                       c.offset = static_cast<std::int64_t>(end);
                       if (from == 0) {
                           if (reasoning_open(at)) out += event(part_event("reasoning-end", kReasoningPart), c);
                           out += event(part_event("text-start", kTextPart), c);
                       }
                       auto delta = part_event("text-delta", kTextPart);
                       delta["delta"] = content.substr(from, end - from);
                       out += event(delta, c);
                   });
    return out;
}

std::string UiMessageStream::ending(const store::Message& m, const engine::Cursor& at) const {
    std::string out;
    if (at.offset == 0) {
        // No text came: the parts open and close here.
        if (reasoning_open(at)) out += event(part_event("reasoning-end", kReasoningPart), at);
        out += event(part_event("text-start", kTextPart), at);
    }
    out += event(part_event("text-end", kTextPart), at);
    if (m.status == store::MessageStatus::cancelled) {
        // As the AI SDK's own servers end a stream whose request was aborted.
        out += event({{"type", "abort"}, {"reason", "cancelled"}}, at);
    } else {
        if (m.status == store::MessageStatus::error) {
            std::string text = m.error ? m.error->code + ": " + m.error->message : "error";
            out += event({{"type", "error"}, {"errorText", text}}, at);
        }
        out += event({{"type", "finish-step"}}, at);
        out += event({{"type", "finish"}, {"finishReason", ui_finish_reason(m)}}, at);
    }
    out += http::format_sse_event({}, engine::encode_cursor(at), "[DONE]");
    return out;
}

}  // namespace chatd::api
