#include "api/event_stream.hpp"

#include <boost/asio/co_spawn.hpp>

#include <algorithm>
#include <array>
#include <utility>

namespace chatd::api {

EventStream::EventStream(http::net::ip::tcp::socket& socket, engine::Feeds& feeds,
                         store::ChatStore& store, UserId user, const StreamConfig& config,
                         const StreamFormat& format)
    : writer_(socket, config.sse),
      format_(format),
      feeds_(feeds),
      store_(store),
      user_(std::move(user)),
      config_(config),
      wake_(std::make_shared<Wakeup>(socket.get_executor())),
      socket_(socket),
      next_ping_(std::chrono::steady_clock::now() + config.heartbeat) {}

net::awaitable<bool> EventStream::open(std::string extra_headers) {
    extra_headers += format_.head_lines();
    // Not `if (!co_await ...) co_return false;` here: with that, GCC 12 laid
    // this frame out 8 bytes off from where a resumption looks for it.
    bool opened = co_await writer_.open(config_.retry, extra_headers, format_.chunked());
    if (opened) {
        watch_->wake = wake_;
        watch_client(socket_, watch_);
    }
    co_return opened;
}

namespace {

// Reads and drops what the client has sent, up to 4 KiB.
std::size_t drop_available(http::net::ip::tcp::socket& socket, boost::system::error_code& ec) {
    std::array<char, 4096> scratch;
    auto available = socket.available(ec);
    if (ec || available == 0) return 0;
    return socket.read_some(net::buffer(scratch, std::min(available, scratch.size())), ec);
}

}  // namespace

void EventStream::watch_client(http::net::ip::tcp::socket& socket,
                               std::shared_ptr<ClientWatch> watch) {
    socket.async_wait(
        http::net::ip::tcp::socket::wait_read,
        [&socket, watch = std::move(watch)](boost::system::error_code ec) mutable {
            constexpr std::size_t kMaxIgnoredBytes = 64 * 1024;
            // Aborted: the stream ended and closed the socket, which must not
            // be touched any more (it may be gone). Done: the stream ended
            // and what the client sends now is its next request, for the
            // server to read.
            if (ec == net::error::operation_aborted || watch->gone || watch->done) return;
            std::size_t n = 0;
            if (!ec) n = drop_available(socket, ec);
            watch->dropped += n;
            if (!ec && n > 0 && watch->dropped <= kMaxIgnoredBytes)  // stray bytes: dropped
                return watch_client(socket, std::move(watch));
            watch->gone = true;  // EOF, reset, or a client that will not stop talking
            if (auto w = watch->wake.lock()) w->notify();
            boost::system::error_code ignored_ec;
            socket.cancel(ignored_ec);  // a write waiting on a full buffer ends now
        });
}

net::awaitable<bool> EventStream::finish() {
    if (watch_->gone) co_return false;
    bool finished = co_await writer_.finish();  // not inside ||: GCC 12 miscompiles that
    if (!finished) co_return false;
    // The watcher's wait stays pending and ends without reading when the
    // next request arrives or the connection closes.
    watch_->done = true;
    co_return true;
}

net::awaitable<bool> EventStream::write(std::string bytes) {
    if (watch_->gone) co_return false;
    if (bytes.empty()) co_return true;
    co_return co_await writer_.write(bytes);
}

net::awaitable<bool> EventStream::idle() {
    co_await wake_->wait_until(next_ping_);
    if (writer_.has_rest()) {  // what deliver_now() could not write at once
        bool flushed = co_await writer_.flush();
        if (!flushed) co_return false;
    }
    co_return co_await ping_if_due();
}

net::awaitable<bool> EventStream::ping_if_due() {
    if (watch_->gone) co_return false;
    if (std::chrono::steady_clock::now() >= next_ping_) {
        next_ping_ = std::chrono::steady_clock::now() + config_.heartbeat;
        co_return co_await write(http::format_sse_comment("ping"));
    }
    co_return true;
}

void EventStream::watch_session(const SessionId& session) {
    feeds_.watch_session(session, wake_);
}

net::awaitable<bool> EventStream::follow(engine::Cursor at, std::optional<store::Message> read) {
    bool announce = true;  // the format's opening, once
    std::shared_ptr<engine::MessageFeed> feed;
    for (;;) {
        // A feed stays readable after its message ends, so there is no gap
        // between text in memory and text in the store. One that went stale
        // (its generation moved to another node) is replaced by the feed
        // that goes on from what is committed.
        if (!feed || feed->stale()) {
            auto seen = std::exchange(read, std::nullopt);  // only the first open
            auto opened = co_await feeds_.open(user_, at.message, std::move(seen));
            if (!opened) co_return false;
            feed = std::move(*opened);
            feed->subscribe(wake_);
            continue;  // it may have gone stale while it was opened
        }
        const store::Message& m = feed->message();
        if (announce) {
            announce = false;
            if (!co_await write(format_.opening(m, at))) co_return false;
            continue;  // the message may have changed while we wrote
        }
        // Catch-up goes out in bounded pieces, each with its own write
        // deadline: never one buffer of the whole rest per subscriber. The
        // reasoning first: it came before the text it led to.
        const auto piece = config_.catch_up_piece_bytes;
        if (static_cast<std::size_t>(at.reasoning_offset) < m.reasoning.size()) {
            auto end =
                catch_up_end(m.reasoning, static_cast<std::size_t>(at.reasoning_offset), piece);
            auto bytes = format_.reasoning(m, at, std::string_view(m.reasoning).substr(0, end),
                                           config_.max_delta_bytes);
            at.reasoning_offset = static_cast<std::int64_t>(end);
            if (!co_await write(std::move(bytes))) co_return false;
            continue;  // more may have been committed while we wrote
        }
        auto size = m.content.size();
        if (static_cast<std::size_t>(at.offset) < size) {
            auto end = catch_up_end(m.content, static_cast<std::size_t>(at.offset), piece);
            auto bytes = format_.deltas(m, at, std::string_view(m.content).substr(0, end),
                                        config_.max_delta_bytes);
            at.offset = static_cast<std::int64_t>(end);
            // The ending is taken now: the message may change while we write.
            auto status = m.status != store::MessageStatus::generating && end == size
                              ? format_.ending(m, at)
                              : std::string();
            if (!co_await write(std::move(bytes))) co_return false;
            if (!status.empty()) co_return co_await write(std::move(status));
            continue;
        }
        if (m.status != store::MessageStatus::generating)
            co_return co_await write(format_.ending(m, at));
        if (!co_await wait_live(at, *feed)) co_return false;
    }
}

net::awaitable<bool> EventStream::wait_live(engine::Cursor& at, const engine::MessageFeed& feed) {
    // Stops the offer when the wait ends, or when its frame goes with it
    // (the context's shutdown): through its own reference to the Wakeup, so
    // that it does not depend on this stream outliving the frame.
    struct Offered {
        std::shared_ptr<Wakeup> wake;
        ~Offered() { wake->stop_offering(); }
    } offered{wake_};
    live_at_ = &at;
    live_feed_ = &feed;
    wake_->offer(&EventStream::deliver_now, this);
    bool more = co_await idle();
    live_at_ = nullptr;
    live_feed_ = nullptr;
    co_return more;
}

bool EventStream::deliver_now(void* self) {
    return static_cast<EventStream*>(self)->deliver_now();
}

// What follow() does for a live message's next text, when it fits in one
// piece and the send buffer: anything else wakes the coroutine.
bool EventStream::deliver_now() {
    if (!live_at_ || watch_->gone || live_feed_->stale()) return false;
    engine::Cursor& at = *live_at_;
    const store::Message& m = live_feed_->message();
    if (m.status != store::MessageStatus::generating ||
        static_cast<std::size_t>(at.reasoning_offset) < m.reasoning.size())
        return false;
    const auto size = m.content.size();
    if (static_cast<std::size_t>(at.offset) >= size ||
        catch_up_end(m.content, static_cast<std::size_t>(at.offset),
                     config_.catch_up_piece_bytes) != size)
        return false;
    auto bytes = format_.deltas(m, at, m.content, config_.max_delta_bytes);
    switch (writer_.write_now(bytes)) {
        case http::SseWriter::Now::written:
            at.offset = static_cast<std::int64_t>(size);
            return true;
        case http::SseWriter::Now::partly:  // the coroutine writes the rest first
            at.offset = static_cast<std::int64_t>(size);
            return false;
        case http::SseWriter::Now::not_written:
            return false;
    }
    return false;
}

}  // namespace chatd::api
