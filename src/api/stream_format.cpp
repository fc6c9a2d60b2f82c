#include "api/stream_format.hpp"

#include "api/json_codec.hpp"
#include "core/utf8.hpp"
#include "engine/cursor.hpp"
#include "http/sse.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>

#include <charconv>

namespace chatd::api {

std::size_t catch_up_end(std::string_view content, std::size_t from, std::size_t max_bytes) {
    if (from >= content.size()) return content.size();
    auto end = utf8_floor(content, std::min(content.size(), from + max_bytes));
    if (end > from) return end;
    // One character at least, however small the piece.
    for (end = from + 1; end < content.size() && !is_utf8_boundary(content, end);) ++end;
    return end;
}

namespace {

// Appends `s` as a JSON string, quoted and escaped by Boost.JSON.
void append_json_string(std::string& out, std::string_view s) {
    json::serializer sr;
    sr.reset(s);
    char buffer[1024];
    while (!sr.done()) out.append(sr.read(buffer, sizeof buffer));
}

// `text[from..]` as events named `name`, their data the message id, the
// piece's offset and text; `advance(cursor, end)` moves the cursor past it.
template <class Advance>
std::string text_events(std::string_view name, engine::Cursor at, std::string_view text,
                        std::size_t from, std::size_t max_bytes, Advance advance) {
    // Every token of every stream passes here: the event is written into one
    // string, without a json::object and the strings it would copy. Its data
    // is one line (JSON escapes every line break), as format_sse_event would
    // frame it.
    std::string out;
    for_each_piece(text, from, max_bytes, [&](std::size_t piece_from, std::size_t end) {
        auto piece = text.substr(piece_from, end - piece_from);
        advance(at, static_cast<std::int64_t>(end));
        out.reserve(out.size() + piece.size() + 160);
        out.append("event: ").append(name).append("\nid: ").append(engine::encode_cursor(at));
        out.append("\ndata: {\"message_id\":");
        append_json_string(out, at.message.value);
        char offset[24];
        auto [offset_end, ec] = std::to_chars(offset, offset + sizeof offset, piece_from);
        out.append(",\"offset\":").append(offset, offset_end).append(",\"text\":");
        append_json_string(out, piece);
        out.append("}\n\n");
    });
    return out;
}

}  // namespace

std::string format_deltas(const engine::Cursor& at, std::string_view content,
                          std::size_t max_bytes) {
    return text_events("delta", at, content, static_cast<std::size_t>(at.offset), max_bytes,
                       [](engine::Cursor& c, std::int64_t end) { c.offset = end; });
}

std::string format_reasoning(const engine::Cursor& at, std::string_view reasoning,
                             std::size_t max_bytes) {
    return text_events("reasoning", at, reasoning, static_cast<std::size_t>(at.reasoning_offset),
                       max_bytes, [](engine::Cursor& c, std::int64_t end) { c.reasoning_offset = end; });
}

std::string format_status(const store::Message& m, const engine::Cursor& at) {
    return http::format_sse_event("status", engine::encode_cursor(at),
                                  json::serialize(to_json(m, WithContent::no)));
}

const ChatdEvents kChatdEvents;

std::string ChatdEvents::opening(const store::Message& m, const engine::Cursor& at) const {
    // "Started" is news only while it generates; an ended message's only
    // status event is its terminal one, after its text.
    if (at.offset != 0 || at.reasoning_offset != 0 || m.status != store::MessageStatus::generating)
        return {};
    return format_status(m, at);
}

std::string ChatdEvents::reasoning(const store::Message&, const engine::Cursor& at,
                                   std::string_view reasoning, std::size_t max_bytes) const {
    return format_reasoning(at, reasoning, max_bytes);
}

std::string ChatdEvents::deltas(const store::Message&, const engine::Cursor& at,
                                std::string_view content, std::size_t max_bytes) const {
    return format_deltas(at, content, max_bytes);
}

std::string ChatdEvents::ending(const store::Message& m, const engine::Cursor& at) const {
    return format_status(m, at);
}

}  // namespace chatd::api
