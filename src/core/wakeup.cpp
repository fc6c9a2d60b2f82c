#include "core/wakeup.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace chatd {

struct Wakeup::State {
    explicit State(const boost::asio::any_io_executor& e) : ex(e) {}
    boost::asio::any_io_executor ex;
    std::unique_ptr<Waiter> waiter;                      // null: nobody waits
    bool pending = false;                                // a wake-up came with nobody waiting
    Clock::time_point armed = Clock::time_point::min();  // the timer's deadline

    // Hands the waiter to the executor: it runs after the caller returns.
    void wake() {
        boost::asio::post(ex, [w = std::move(waiter)] { w->complete(); });
    }
};

Wakeup::Wakeup(const boost::asio::any_io_executor& ex)
    : state_(std::make_shared<State>(ex)), timer_(ex) {}

Wakeup::~Wakeup() = default;

void Wakeup::notify() {
    auto& s = *state_;
    if (s.waiter)
        s.wake();
    else
        s.pending = true;  // more coalesce into it
}

boost::asio::awaitable<void> Wakeup::wait_until(Clock::time_point deadline) {
    auto& s = *state_;
    if (s.pending) {  // the common case on a busy stream: no suspension at all
        s.pending = false;
        co_return;
    }
    if (deadline <= Clock::now()) co_return;
    co_await async_wait_until(deadline, boost::asio::use_awaitable);
}

void Wakeup::start_wait(std::unique_ptr<Waiter> waiter, Clock::time_point deadline) {
    auto& s = *state_;
    s.waiter = std::move(waiter);
    if (s.pending || deadline <= Clock::now()) {
        s.pending = false;
        s.wake();
        return;
    }
    if (deadline == Clock::time_point::max())
        s.armed = deadline;  // a timer still set wakes nobody
    else if (deadline != s.armed)
        arm(deadline);
}

void Wakeup::arm(Clock::time_point deadline) {
    state_->armed = deadline;
    timer_.expires_at(deadline);
    timer_.async_wait(
        [weak = std::weak_ptr<State>(state_), deadline](boost::system::error_code ec) {
            auto s = weak.lock();
            if (ec || !s || s->armed != deadline) return;
            s->armed = Clock::time_point::min();
            if (s->waiter) s->wake();
        });
}

}  // namespace chatd
