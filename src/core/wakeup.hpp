#pragma once
// A one-waiter wake-up signal for coroutines on one executor: notify() wakes the
// waiter, or makes its next wait() return at once. Not thread-safe: notify and
// wait run on the same executor (the I/O thread).
#include "core/net.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace chatd {

class Wakeup {
public:
    explicit Wakeup(const boost::asio::any_io_executor& ex) : timer_(ex) {}

    void notify() {
        pending_ = true;
        timer_.cancel();
    }

    // Returns when notified or at `deadline`, whichever is first.
    boost::asio::awaitable<void> wait_until(std::chrono::steady_clock::time_point deadline) {
        if (!pending_) {
            timer_.expires_at(deadline);
            co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
        pending_ = false;
    }

    boost::asio::awaitable<void> wait() {
        return wait_until(std::chrono::steady_clock::time_point::max());
    }

private:
    boost::asio::steady_timer timer_;
    bool pending_ = false;
};

}  // namespace chatd
