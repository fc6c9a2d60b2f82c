#pragma once
// Waits inside a coroutine until a condition holds, polling every millisecond,
// failing the test after a deadline: tests wait for conditions, never for time.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <functional>
#include <stdexcept>

namespace chatd::test {

inline boost::asio::awaitable<void> wait_until(
    std::function<bool()> condition, std::chrono::seconds deadline = std::chrono::seconds(20)) {
    auto ex = co_await boost::asio::this_coro::executor;
    auto until = std::chrono::steady_clock::now() + deadline;
    boost::asio::steady_timer timer(ex);
    while (!condition()) {
        if (std::chrono::steady_clock::now() > until)
            throw std::runtime_error("condition not reached before the deadline");
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
}

}  // namespace chatd::test
