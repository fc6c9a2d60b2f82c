#include "api/session_stream.hpp"

#include "core/log.hpp"

#include <boost/asio/co_spawn.hpp>

namespace chatd::api {

SessionStream::SessionStream(Parts parts, engine::Feeds& feeds, store::ChatStore& store,
                             const StreamConfig& config, SessionStreams& owner)
    : socket_(std::move(parts.socket)),
      place_(std::move(parts.place)),
      slot_(std::move(parts.slot)),
      session_(std::move(parts.session)),
      answer_log_(std::move(parts.answer_log)),
      feeds_(feeds),
      store_(store),
      owner_(owner),
      events_(socket_, feeds, store, std::move(parts.user), config) {}

void SessionStream::start(std::string head_lines, engine::SessionStreamStart from) {
    owner_.insert(shared_from_this());
    after_ = std::move(from.after);
    spawn(open(std::move(head_lines), std::move(from.first)));
}

void SessionStream::spawn(net::awaitable<bool> period) {
    net::co_spawn(socket_.get_executor(), std::move(period),
                  [self = shared_from_this()](std::exception_ptr e, bool open) {
                      if (e) {
                          open = false;
                          try {
                              std::rethrow_exception(e);
                          } catch (const std::exception& ex) {
                              log::error("session stream crashed: {}", ex.what());
                          }
                      }
                      if (open)
                          self->park();
                      else
                          self->end();
                  });
}

void SessionStream::park() {
    events_.park([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->spawn(self->resume());
    });
}

// Both periods test each step's result rather than `if (!co_await ...)
// co_return false;`, which GCC 12 miscompiles in these frames (see
// EventStream::open).
net::awaitable<bool> SessionStream::open(std::string head_lines,
                                         std::optional<engine::Cursor> first) {
    bool open = co_await events_.open(std::move(head_lines));
    // A message that started since `after_` was read is found by
    // follow_new()'s read, or by the notice that wakes this stream.
    if (open) events_.watch_session(session_);
    if (open && first) open = co_await events_.follow(std::move(*first));
    if (open) open = co_await follow_new();
    co_return open;
}

net::awaitable<bool> SessionStream::resume() {
    // Only a notice brings a new message (a notice that comes while this
    // runs wakes the next park at once): a wake-up at the heartbeat pings
    // and reads nothing, or thousands of idle streams would read the store
    // every heartbeat.
    const bool noticed = !events_.woken_by_heartbeat();
    bool open = co_await events_.ping_if_due();
    if (open && noticed) open = co_await follow_new();
    co_return open;
}

net::awaitable<bool> SessionStream::follow_new() {
    for (;;) {
        std::optional<engine::Cursor> from;
        if (auto active = feeds_.active_in(events_.user(), session_);
            active && (!after_ || after_->value < active->id().value))
            from = engine::Cursor{active->id()};
        if (!from) {
            auto next = co_await store_.next_assistant_message(events_.user(), session_, after_);
            if (!next) co_return false;  // the session was deleted
            // Nothing to write: the store's notices wake this stream when a
            // message starts in the session, on any node.
            if (!*next) co_return !events_.client_gone();
            from = engine::Cursor{(*next)->id};
        }
        if (!co_await events_.follow(*from)) co_return false;
        after_ = from->message;
    }
}

void SessionStream::end() {
    if (ended_) return;
    ended_ = true;
    answer_log_.write(200, events_.bytes_written());
    boost::system::error_code ignored;
    socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    socket_.close(ignored);
    slot_.reset();  // the user may open another stream now
    owner_.erase(shared_from_this());
}

}  // namespace chatd::api
