#include "api/event_stream.hpp"

#include "api/json_codec.hpp"
#include "core/log.hpp"
#include "core/utf8.hpp"

#include <boost/asio/co_spawn.hpp>

#include <array>

#include <boost/json/serialize.hpp>

namespace chatd::api {

std::string format_deltas(const MessageId& id, std::string_view content, std::size_t from,
                          std::size_t max_bytes) {
    std::string out;
    while (from < content.size()) {
        std::size_t end = utf8_floor(content, std::min(content.size(), from + max_bytes));
        if (end <= from) end = std::min(content.size(), from + 4);  // one character at least
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

EventStream::EventStream(http::beast::tcp_stream& stream, engine::Engine& engine,
                         store::ChatStore& store, UserId user, const StreamConfig& config)
    : writer_(stream, config.sse),
      engine_(engine),
      store_(store),
      user_(std::move(user)),
      config_(config),
      wake_(std::make_shared<Wakeup>(stream.get_executor())),
      stream_(stream),
      next_ping_(std::chrono::steady_clock::now() + config.heartbeat) {}

net::awaitable<bool> EventStream::open(std::string extra_headers) {
    if (!co_await writer_.open(config_.retry, extra_headers)) co_return false;
    watch_->wake = wake_;
    net::co_spawn(stream_.get_executor(), watch_client(stream_.socket(), watch_),
                  [](std::exception_ptr e) {
                      if (!e) return;
                      try {
                          std::rethrow_exception(e);
                      } catch (const std::exception& ex) {
                          log::error("stream client watch crashed: {}", ex.what());
                      }
                  });
    co_return true;
}

net::awaitable<void> EventStream::watch_client(http::net::ip::tcp::socket& socket,
                                               std::shared_ptr<ClientWatch> watch) {
    constexpr std::size_t kMaxIgnoredBytes = 64 * 1024;
    std::size_t ignored = 0;
    for (;;) {
        auto [ec] = co_await socket.async_wait(http::net::ip::tcp::socket::wait_read,
                                               net::as_tuple(net::use_awaitable));
        // Aborted: the stream ended and closed the socket, which must not be
        // touched any more (it may be gone).
        if (ec == net::error::operation_aborted || watch->gone) co_return;
        std::array<char, 4096> scratch;
        std::size_t n = 0;
        if (!ec) {
            auto available = socket.available(ec);
            if (!ec && available > 0)
                n = socket.read_some(net::buffer(scratch, std::min(available, scratch.size())), ec);
        }
        ignored += n;
        if (!ec && n > 0 && ignored <= kMaxIgnoredBytes) continue;  // stray bytes: dropped
        watch->gone = true;  // EOF, reset, or a client that will not stop talking
        if (auto w = watch->wake.lock()) w->notify();
        boost::system::error_code ignored_ec;
        socket.cancel(ignored_ec);  // a write waiting on a full buffer ends now
        co_return;
    }
}

net::awaitable<bool> EventStream::write(std::string bytes) {
    if (watch_->gone) co_return false;
    if (bytes.empty()) co_return true;
    co_return co_await writer_.write(bytes);
}

net::awaitable<bool> EventStream::idle(std::chrono::steady_clock::time_point until) {
    auto deadline = std::min(until, next_ping_);
    co_await wake_->wait_until(deadline);
    if (watch_->gone) co_return false;
    if (std::chrono::steady_clock::now() >= next_ping_) {
        next_ping_ = std::chrono::steady_clock::now() + config_.heartbeat;
        co_return co_await write(http::format_sse_comment("ping"));
    }
    co_return true;
}

std::size_t catch_up_end(std::string_view content, std::size_t from, std::size_t piece_bytes) {
    if (from >= content.size()) return content.size();
    auto end = utf8_floor(content, std::min(content.size(), from + piece_bytes));
    if (end > from) return end;
    // One character at least, however small the piece.
    for (end = from + 1; end < content.size() && !is_utf8_boundary(content, end);) ++end;
    return end;
}

net::awaitable<bool> EventStream::follow(MessageId id, std::int64_t offset) {
    bool announce = offset == 0;
    auto g = engine_.find(user_, id);
    if (g) g->subscribe(wake_);
    std::optional<store::Message> stored;  // read from the store; re-read only while generating
    for (;;) {
        // A live generation is read from memory; once we hold it, it stays
        // readable after it ends, so there is no gap between memory and store.
        // One that moved to another node goes on there: read from the store.
        if (g && g->moved()) {
            g.reset();
            stored.reset();
        }
        const store::Message* m = nullptr;
        if (g) {
            m = &g->message();
        } else {
            if (!stored || stored->status == store::MessageStatus::generating) {
                auto r = co_await store_.get_message(user_, id);
                if (!r) co_return false;
                if ((g = engine_.find(user_, id))) {  // it started while we read
                    g->subscribe(wake_);
                    continue;
                }
                stored = std::move(*r);
            }
            m = &*stored;
        }
        if (announce) {
            // "Started" is news only while it generates; an ended message's
            // only status event is its terminal one, after its text.
            announce = false;
            if (m->status == store::MessageStatus::generating &&
                !co_await write(format_status(*m, offset)))
                co_return false;
        }
        auto size = m->content.size();
        if (static_cast<std::size_t>(offset) < size) {
            // Catch-up goes out in bounded pieces, each with its own write
            // deadline: never one buffer of the whole rest per subscriber.
            auto end = catch_up_end(m->content, static_cast<std::size_t>(offset),
                                    config_.catch_up_piece_bytes);
            auto bytes = format_deltas(id, std::string_view(m->content).substr(0, end),
                                       static_cast<std::size_t>(offset), config_.max_delta_bytes);
            // The status is taken now: a live message may change while we write.
            auto status = m->status != store::MessageStatus::generating && end == size
                              ? format_status(*m, static_cast<std::int64_t>(end))
                              : std::string();
            offset = static_cast<std::int64_t>(end);
            if (!co_await write(std::move(bytes))) co_return false;
            if (!status.empty()) co_return co_await write(std::move(status));
            continue;  // more may have been committed while we wrote
        }
        if (m->status != store::MessageStatus::generating)
            co_return co_await write(format_status(*m, offset));
        auto until = g ? std::chrono::steady_clock::time_point::max()
                       : std::chrono::steady_clock::now() + config_.store_poll;
        if (!co_await idle(until)) co_return false;
    }
}

net::awaitable<void> EventStream::follow_session(SessionId session,
                                                 std::optional<engine::Cursor> cursor) {
    engine_.watch_session(session, wake_);
    // Without a cursor, "later" means created after this stream opened; ids
    // sort by creation, so a fresh id marks the moment.
    auto floor = new_message_id();
    std::optional<MessageId> last;  // the message followed last
    if (cursor) {
        if (!co_await follow(cursor->message, cursor->offset)) co_return;
        last = floor = cursor->message;
    }
    for (;;) {
        auto active = engine_.active_in(user_, session);
        if (active && (!last || last->value < active->id().value)) {
            auto id = active->id();
            if (!co_await follow(id, 0)) co_return;
            last = id;
            if (floor.value < id.value) floor = id;
            continue;
        }
        auto next = co_await store_.next_assistant_message(user_, session, floor);
        if (!next) co_return;  // the session was deleted
        if (*next) {
            auto id = (*next)->id;
            if (!co_await follow(id, 0)) co_return;
            last = floor = id;
            continue;
        }
        // The engine wakes us when a generation starts in this session; one
        // another node starts is found by reading the store again.
        auto until = config_.shared_store ? std::chrono::steady_clock::now() + config_.store_poll
                                          : std::chrono::steady_clock::time_point::max();
        if (!co_await idle(until)) co_return;
    }
}

}  // namespace chatd::api
