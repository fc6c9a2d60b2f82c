#include "api/stream_format.hpp"

#include "api/json_codec.hpp"
#include "core/utf8.hpp"
#include "engine/cursor.hpp"
#include "http/sse.hpp"

#include <boost/json/serialize.hpp>

namespace chatd::api {

std::size_t catch_up_end(std::string_view content, std::size_t from, std::size_t max_bytes) {
    if (from >= content.size()) return content.size();
    auto end = utf8_floor(content, std::min(content.size(), from + max_bytes));
    if (end > from) return end;
    // One character at least, however small the piece.
    for (end = from + 1; end < content.size() && !is_utf8_boundary(content, end);) ++end;
    return end;
}

std::string format_deltas(const MessageId& id, std::string_view content, std::size_t from,
                          std::size_t max_bytes) {
    std::string out;
    while (from < content.size()) {
        auto end = catch_up_end(content, from, max_bytes);
        auto data = json::serialize(json::object{{"message_id", id.value},
                                                 {"offset", static_cast<std::int64_t>(from)},
                                                 {"text", content.substr(from, end - from)}});
        out += http::format_sse_event(
            "delta", engine::encode_cursor({id, static_cast<std::int64_t>(end)}), data);
        from = end;
    }
    return out;
}

std::string format_status(const store::Message& m, std::int64_t offset) {
    return http::format_sse_event("status", engine::encode_cursor({m.id, offset}),
                                  json::serialize(to_json(m, WithContent::no)));
}

const ChatdEvents kChatdEvents;

std::string ChatdEvents::opening(const store::Message& m, std::int64_t offset) const {
    // "Started" is news only while it generates; an ended message's only
    // status event is its terminal one, after its text.
    if (offset != 0 || m.status != store::MessageStatus::generating) return {};
    return format_status(m, offset);
}

std::string ChatdEvents::deltas(const MessageId& id, std::string_view content, std::size_t from,
                                std::size_t max_bytes) const {
    return format_deltas(id, content, from, max_bytes);
}

std::string ChatdEvents::ending(const store::Message& m, std::int64_t offset) const {
    return format_status(m, offset);
}

}  // namespace chatd::api
