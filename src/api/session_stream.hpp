#pragma once
// A session's event stream (GET /messages/stream?session_id=, DESIGN §4): the
// rest of the cursor's message, then every later assistant message of the
// session as it starts, for as long as the client stays.
//
// Such a stream has nothing to write most of its life, and there may be
// thousands. So it is an object that owns its connection, not a chain of
// suspended coroutines: between messages it is parked on a callback of its
// Wakeup (fired by a notice of the session, the client leaving, or the
// heartbeat), and a coroutine runs only from a wake-up until it has written
// what was due. Parked, it costs this object, its bare socket (no Beast
// stream: see http/sse.hpp) and two pending waits (the client watch, the
// heartbeat).
//
// StreamsApi keeps it (SessionStreams) until it ends; I/O thread only.
#include "api/call.hpp"
#include "api/event_stream.hpp"
#include "api/stream_slots.hpp"
#include "engine/cursor.hpp"

#include <memory>
#include <optional>
#include <unordered_set>

namespace chatd::api {

class SessionStream;
// The open session streams: each is held here from start() to its end.
using SessionStreams = std::unordered_set<std::shared_ptr<SessionStream>>;

class SessionStream : public std::enable_shared_from_this<SessionStream> {
public:
    struct Parts {
        http::net::ip::tcp::socket socket;  // taken from the connection's stream
        http::ConnectionPlace place;
        StreamSlots::Slot slot;  // held until the stream ends
        UserId user;
        SessionId session;
        AnswerLog answer_log;  // written when it ends
    };
    SessionStream(Parts parts, engine::Feeds& feeds, store::ChatStore& store,
                  const StreamConfig& config, SessionStreams& owner);

    // Writes the head (with `head_lines`) and follows the session from
    // `from` (Conversations::session_stream_start, read before); `owner`
    // keeps it until it ends.
    void start(std::string head_lines, engine::SessionStreamStart from);

private:
    // A stream's periods of work: each returns true when it has written what
    // was due (park), false when the stream is over.
    net::awaitable<bool> open(std::string head_lines, std::optional<engine::Cursor> first);
    // After a wake-up: the heartbeat, then what started meanwhile.
    net::awaitable<bool> resume();
    // Follows the messages of the session that started after the last one
    // followed: true when none is left to write (park), false when the
    // stream is over (client gone, write failed, session deleted).
    net::awaitable<bool> follow_new();
    // Runs `period` (open or resume), then parks or ends.
    void spawn(net::awaitable<bool> period);
    void park();
    // Closes the connection, writes the log line, and leaves `owner_`.
    void end();

    http::net::ip::tcp::socket socket_;
    http::ConnectionPlace place_;
    StreamSlots::Slot slot_;
    SessionId session_;
    AnswerLog answer_log_;
    engine::Feeds& feeds_;
    store::ChatStore& store_;
    SessionStreams& owner_;
    EventStream events_;
    // The assistant messages after this one are still to follow (ids sort
    // by creation); none: all of them.
    std::optional<MessageId> after_;
    bool ended_ = false;
};

}  // namespace chatd::api
