#pragma once
// A one-waiter wake-up signal for coroutines on one executor: notify() wakes the
// waiter, or makes its next wait() return at once. Not thread-safe: notify and
// wait run on the same executor (the I/O thread).
//
// It is on every token's path (a commit wakes each of its readers), so a
// wake-up puts a message in a one-slot channel, which posts the waiter's
// resumption, and nothing else: the deadline's timer is armed only when the deadline
// changes (a stream's next heartbeat, not every wait), and no timer is
// cancelled to wake a waiter (so a deadline's timer stays set until it is
// due or the Wakeup goes, waking nobody if no wait has it). The waiter resumes
// from that handler, never inside notify(): notify() is called while its
// callers iterate.
#include "core/net.hpp"

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

private:
    struct State;
    // The timer wakes the waiter at `deadline` if one waits then; a timer
    // re-armed or destroyed meanwhile wakes nobody.
    void arm(Clock::time_point deadline);

    std::shared_ptr<State> state_;  // shared with handlers that may outlive this
    boost::asio::steady_timer timer_;
};

}  // namespace chatd
