#pragma once
// How an event stream's events look on the wire. EventStream decides what a
// reader gets and when (which text, the message's start and end); a format
// decides how it is written: chatd's own SSE events (DESIGN §4, ChatdEvents)
// or the AI SDK's UI message stream (ui_message_stream.hpp). Every event
// carries the cursor (engine/cursor.hpp) of the text it follows as its id.
#include "engine/cursor.hpp"
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
    // What comes before the text, for a reader starting at `at` of `m`
    // (which may have ended); may be empty.
    virtual std::string opening(const store::Message& m, const engine::Cursor& at) const = 0;
    // `reasoning[at.reasoning_offset..]` (a prefix of m.reasoning) as
    // reasoning events of at most `max_bytes` of text each, cut only between
    // UTF-8 characters.
    virtual std::string reasoning(const store::Message& m, const engine::Cursor& at,
                                  std::string_view reasoning, std::size_t max_bytes) const = 0;
    // `content[at.offset..]` (a prefix of m.content) as text events, the same way.
    virtual std::string deltas(const store::Message& m, const engine::Cursor& at,
                               std::string_view content, std::size_t max_bytes) const = 0;
    // After the last text of an ended message, at `at` (its end).
    virtual std::string ending(const store::Message& m, const engine::Cursor& at) const = 0;
};

// chatd's SSE events: `reasoning` and `delta` events, and `status` events
// when a message generates (from its start) and when it ends.
class ChatdEvents final : public StreamFormat {
public:
    std::string opening(const store::Message& m, const engine::Cursor& at) const override;
    std::string reasoning(const store::Message& m, const engine::Cursor& at,
                          std::string_view reasoning, std::size_t max_bytes) const override;
    std::string deltas(const store::Message& m, const engine::Cursor& at, std::string_view content,
                       std::size_t max_bytes) const override;
    std::string ending(const store::Message& m, const engine::Cursor& at) const override;
};
extern const ChatdEvents kChatdEvents;

// Splits `content[at.offset..]` into `delta` events of at most `max_bytes`
// each, cut only between UTF-8 characters; each event's id is the cursor
// after its text.
std::string format_deltas(const engine::Cursor& at, std::string_view content,
                          std::size_t max_bytes);
// The same for `reasoning[at.reasoning_offset..]`, as `reasoning` events.
std::string format_reasoning(const engine::Cursor& at, std::string_view reasoning,
                             std::size_t max_bytes);
std::string format_status(const store::Message& m, const engine::Cursor& at);

// Where the next piece of `content` from `from` ends: at most `max_bytes`
// later, between UTF-8 characters (one character at least).
std::size_t catch_up_end(std::string_view content, std::size_t from, std::size_t max_bytes);

// Calls `piece(from, end)` for each piece of `text[from..]` of at most
// `max_bytes`, cut between UTF-8 characters.
template <class Piece>
void for_each_piece(std::string_view text, std::size_t from, std::size_t max_bytes, Piece piece) {
    while (from < text.size()) {
        auto end = catch_up_end(text, from, max_bytes);
        piece(from, end);
        from = end;
    }
}

}  // namespace chatd::api
