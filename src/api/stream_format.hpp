#pragma once
// How an event stream's events look on the wire. EventStream decides what a
// reader gets and when (which text, the message's start and end); a format
// decides how it is written: chatd's own SSE events (DESIGN §4, ChatdEvents)
// or the AI SDK's UI message stream (ui_message_stream.hpp). Every event
// carries the cursor (engine/cursor.hpp) of the text it follows as its id.
#include "store/model.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace chatd::api {

class StreamFormat {
public:
    virtual ~StreamFormat() = default;
    // Response head lines of the format's own (`Name: value\r\n`).
    virtual std::string head_lines() const { return {}; }
    // A chunked body is complete only when the stream says so: a client
    // then tells a stream cut off (deadline, shutdown) from an ended one.
    virtual bool chunked() const { return false; }
    // What comes before the text, for a reader starting at `offset` of `m`
    // (which may have ended); may be empty.
    virtual std::string opening(const store::Message& m, std::int64_t offset) const = 0;
    // `content[from..]` as text events of at most `max_bytes` of text each,
    // cut only between UTF-8 characters.
    virtual std::string deltas(const MessageId& id, std::string_view content, std::size_t from,
                               std::size_t max_bytes) const = 0;
    // After the last text of an ended message, at `offset` (its end).
    virtual std::string ending(const store::Message& m, std::int64_t offset) const = 0;
};

// chatd's SSE events: `delta` events, and `status` events when a message
// generates (from its start) and when it ends.
class ChatdEvents final : public StreamFormat {
public:
    std::string opening(const store::Message& m, std::int64_t offset) const override;
    std::string deltas(const MessageId& id, std::string_view content, std::size_t from,
                       std::size_t max_bytes) const override;
    std::string ending(const store::Message& m, std::int64_t offset) const override;
};
extern const ChatdEvents kChatdEvents;

// Splits `content[from..]` into delta events of at most `max_bytes` each,
// cut only between UTF-8 characters.
std::string format_deltas(const MessageId& id, std::string_view content, std::size_t from,
                          std::size_t max_bytes);
std::string format_status(const store::Message& m, std::int64_t offset);

// Where the next piece of `content` from `from` ends: at most `max_bytes`
// later, between UTF-8 characters (one character at least).
std::size_t catch_up_end(std::string_view content, std::size_t from, std::size_t max_bytes);

}  // namespace chatd::api
