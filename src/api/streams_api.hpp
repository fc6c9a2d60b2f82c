#pragma once
// Event streams (DESIGN §4): one message from a cursor, or a session's
// answers as they come. Each open stream holds one of its user's stream slots
// (StreamSlots) until it ends; a client that goes away gives it back at once.
#include "api/call.hpp"
#include "api/event_stream.hpp"
#include "api/session_stream.hpp"
#include "api/stream_slots.hpp"
#include "engine/conversations.hpp"

namespace chatd::api {

class StreamsApi {
public:
    StreamsApi(engine::Conversations& conversations, engine::Feeds& feeds,
               store::ChatStore& store, StreamConfig config, std::size_t max_streams_per_user);

    void add_routes(Routes& routes);

    // A stream slot of `user`: too_many_streams when all are open.
    Result<StreamSlots::Slot> open_slot(const UserId& user) { return slots_.open(user); }
    // Event streams open now, every user's.
    std::size_t open_streams() const { return slots_.open_total(); }
    // Streams a message from `from` (its id and offsets) over SSE in
    // `format`, then closes; `slot` is held meanwhile. `read`: the message
    // as the caller has just read it for `c.user`, if it has.
    net::awaitable<http::After> follow(Call& c, StreamSlots::Slot slot, engine::Cursor from,
                                       const StreamFormat& format = kChatdEvents,
                                       std::optional<store::Message> read = std::nullopt);

private:
    net::awaitable<http::After> stream_message(Call& c);
    net::awaitable<http::After> stream_session(Call& c);

    engine::Conversations& conversations_;
    engine::Feeds& feeds_;
    store::ChatStore& store_;
    StreamConfig config_;
    StreamSlots slots_;
    SessionStreams session_streams_;  // destroyed first: they hold slots
};

}  // namespace chatd::api
