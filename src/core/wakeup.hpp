#pragma once
// A one-waiter wake-up signal on one executor: notify() wakes the waiter, or
// makes its next wait return at once. Not thread-safe: notify and wait run on
// the same executor (the I/O thread).
//
// The waiter is a coroutine (wait_until) or a callback (async_wait_until with
// a plain handler): a session stream with nothing to write parks on a
// callback instead of keeping a chain of suspended coroutines (see
// api/session_stream.hpp).
//
// It is on every token's path (a commit wakes each of its readers), so a
// wake-up posts the waiter's completion and does nothing else: the
// deadline's timer is armed only when the deadline changes (a stream's next
// heartbeat, not every wait), and no timer is cancelled to wake a waiter (so
// a deadline's timer stays set until it is due or the Wakeup goes, waking
// nobody if no wait has it). The waiter runs from a posted handler, never
// inside notify(): notify() is called while its callers iterate.
#include "core/net.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>

namespace chatd {

class Wakeup {
public:
    using Clock = std::chrono::steady_clock;

    explicit Wakeup(const boost::asio::any_io_executor& ex);
    ~Wakeup();
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;

    void notify();
    // Returns when notified or at `deadline`, whichever is first.
    boost::asio::awaitable<void> wait_until(Clock::time_point deadline);
    boost::asio::awaitable<void> wait() { return wait_until(Clock::time_point::max()); }
    // The same wait for any completion token: `void()` completes when
    // notified or at `deadline`. One wait at a time; a waiter still waiting
    // when the Wakeup goes is destroyed without being called.
    template <typename Token>
    auto async_wait_until(Clock::time_point deadline, Token&& token) {
        return boost::asio::async_initiate<Token, void()>(
            [this]<typename Handler>(Handler handler, Clock::time_point d) {
                start_wait(std::make_unique<WaiterOf<Handler>>(std::move(handler)), d);
            },
            token, deadline);
    }

private:
    // The waiting handler, type-erased. (Not Asio's any_completion_handler:
    // Boost 1.81's move assignment of it recurses without end.)
    struct Waiter {
        virtual ~Waiter() = default;
        virtual void complete() = 0;
    };
    template <typename Handler>
    struct WaiterOf final : Waiter {
        explicit WaiterOf(Handler h) : handler(std::move(h)) {}
        void complete() override { std::move(handler)(); }
        Handler handler;
    };
    struct State;
    void start_wait(std::unique_ptr<Waiter> waiter, Clock::time_point deadline);
    // The timer wakes the waiter at `deadline` if one waits then; a timer
    // re-armed or destroyed meanwhile wakes nobody.
    void arm(Clock::time_point deadline);

    std::shared_ptr<State> state_;  // shared with the timer's handler, which may outlive this
    boost::asio::steady_timer timer_;
};

}  // namespace chatd
