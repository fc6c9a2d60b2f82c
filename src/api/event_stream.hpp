#pragma once
// The text side of one SSE connection (DESIGN §4, "Which text a stream
// carries"): follows messages from a cursor, writes their text and ends in
// a StreamFormat (chatd's events, or the AI SDK's), and pings while idle. Messages are read as
// feeds (engine/feeds.hpp), the same whichever node runs them; it waits for a feed to wake it, and
// never polls. Runs on the I/O thread; holds at most one write's bytes.
#include "api/stream_format.hpp"
#include "engine/cursor.hpp"
#include "engine/feeds.hpp"
#include "http/sse.hpp"
#include "store/chat_store.hpp"

#include <chrono>
#include <memory>

namespace chatd::api {

struct StreamConfig {
    std::chrono::milliseconds heartbeat{15000};
    std::chrono::milliseconds retry{1000};
    std::size_t max_delta_bytes = 16 * 1024;
    std::size_t catch_up_piece_bytes = 64 * 1024;  // content per write when far behind
    http::SseConfig sse;
};

class EventStream {
public:
    // `format` outlives the stream.
    EventStream(http::net::ip::tcp::socket& socket, engine::Feeds& feeds, store::ChatStore& store,
                UserId user, const StreamConfig& config, const StreamFormat& format = kChatdEvents);
    // The watcher's completion may already be queued when the stream goes
    // (the client closed as it ended): it must not touch the socket then.
    ~EventStream() { watch_->done = true; }
    EventStream(const EventStream&) = delete;
    EventStream& operator=(const EventStream&) = delete;

    // Writes the head (with `extra_headers`, e.g. CORS) and starts watching
    // the client.
    net::awaitable<bool> open(std::string extra_headers = {});
    // Writes a message from `from` to its end: the format's opening, the
    // reasoning and text, its ending. False when the connection is gone or
    // the message disappeared. `read`: the message as just read for this
    // stream's user, if it was (Feeds::open).
    net::awaitable<bool> follow(engine::Cursor from,
                                std::optional<store::Message> read = std::nullopt);
    // The body is complete (a chunked one's last chunk); after follow().
    // The client watcher then stops without reading, so that the connection
    // can carry the next request (see reusable()).
    net::awaitable<bool> finish();
    // After finish(): nothing the client sent was read and dropped, so the
    // connection can go on (a chunked body delimits itself).
    bool reusable() const { return !watch_->gone && watch_->dropped == 0; }
    // For a session stream (api/session_stream.hpp): the store's notices of
    // messages starting in `session` wake this stream.
    void watch_session(const SessionId& session);
    // Calls `on_wake` (a plain callback, `void()`) once, from the I/O
    // executor, when a notice or the client's leaving wakes this stream or
    // its heartbeat is due: what a stream with nothing to write waits on
    // without a coroutine. Then ping_if_due().
    template <typename F>
    void park(F&& on_wake) {
        wake_->async_wait_until(next_ping_, std::forward<F>(on_wake));
    }
    // Whether the last wake-up was the heartbeat alone: no notice, no
    // client leaving.
    bool woken_by_heartbeat() const { return wake_->woken_at_deadline(); }
    // False when the client has gone; else writes a ping when the heartbeat
    // is due (false if that fails).
    net::awaitable<bool> ping_if_due();

    // The body bytes written so far.
    std::uint64_t bytes_written() const { return writer_.bytes_written(); }
    const UserId& user() const { return user_; }
    // Whether the client has gone (noticed by reading its socket).
    bool client_gone() const { return watch_->gone; }

private:
    // Shared with the watcher coroutine, which may outlive this object.
    struct ClientWatch {
        bool gone = false;
        bool done = false;        // the stream ended: read nothing more
        std::size_t dropped = 0;  // bytes read and dropped while streaming
        std::weak_ptr<Wakeup> wake;
    };
    // Reads the socket while events are written: an SSE client sends nothing
    // after its request, so readability means it closed (or misbehaves). Marks
    // it gone, wakes the stream and cancels a pending write, so the stream and
    // its slot end now rather than at the next heartbeat. A chain of
    // callbacks, not a coroutine: it waits as long as the stream lives.
    static void watch_client(http::net::ip::tcp::socket& socket,
                             std::shared_ptr<ClientWatch> watch);

    net::awaitable<bool> write(std::string bytes);
    // Waits for a wake-up, writing a ping when the heartbeat is due.
    net::awaitable<bool> idle();
    // follow() caught up with `feed`'s live message at `at`, waiting: while
    // it does, each commit's new text is written from the notify that
    // tells of it (deliver_now), and the coroutine wakes only for what that
    // does not do (the end, a write that must wait, the client leaving, a
    // ping, a stale feed).
    net::awaitable<bool> wait_live(engine::Cursor& at, const engine::MessageFeed& feed);
    static bool deliver_now(void* self);
    bool deliver_now();

    http::SseWriter writer_;
    const StreamFormat& format_;
    engine::Feeds& feeds_;
    store::ChatStore& store_;
    UserId user_;
    const StreamConfig& config_;
    std::shared_ptr<Wakeup> wake_;
    std::shared_ptr<ClientWatch> watch_ = std::make_shared<ClientWatch>();
    http::net::ip::tcp::socket& socket_;
    std::chrono::steady_clock::time_point next_ping_;
    // Set while wait_live() waits.
    engine::Cursor* live_at_ = nullptr;
    const engine::MessageFeed* live_feed_ = nullptr;
};

}  // namespace chatd::api
