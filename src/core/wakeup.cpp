#include "core/wakeup.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace chatd {

struct Wakeup::State {
    explicit State(const boost::asio::any_io_executor& ex) : signal(ex, 1) {}
    // One slot: a full slot is a wake-up pending, and more coalesce into it.
    boost::asio::experimental::channel<void(boost::system::error_code)> signal;
    Clock::time_point armed = Clock::time_point::min();  // the timer's deadline
    bool waiting = false;
};

Wakeup::Wakeup(const boost::asio::any_io_executor& ex)
    : state_(std::make_shared<State>(ex)), timer_(ex) {}

Wakeup::~Wakeup() = default;

void Wakeup::notify() {
    // A waiting receiver's completion is posted (the channel requires
    // blocking.never), so the waiter never resumes inside this call; a full
    // slot (a wake-up pending) makes this a no-op.
    state_->signal.try_send(boost::system::error_code{});
}

boost::asio::awaitable<void> Wakeup::wait_until(Clock::time_point deadline) {
    auto& s = *state_;
    if (!s.signal.ready()) {
        if (deadline <= Clock::now()) co_return;
        if (deadline == Clock::time_point::max())
            s.armed = deadline;  // a timer still set wakes nobody
        else if (deadline != s.armed)
            arm(deadline);
        s.waiting = true;
    }
    co_await s.signal.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
    s.waiting = false;
}

void Wakeup::arm(Clock::time_point deadline) {
    state_->armed = deadline;
    timer_.expires_at(deadline);
    timer_.async_wait(
        [weak = std::weak_ptr<State>(state_), deadline](boost::system::error_code ec) {
            auto s = weak.lock();
            if (ec || !s || s->armed != deadline) return;
            s->armed = Clock::time_point::min();
            if (s->waiting) s->signal.try_send(boost::system::error_code{});
        });
}

}  // namespace chatd
