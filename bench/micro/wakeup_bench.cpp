// The cost of one wake-up of a stream waiting for its next commit, with its
// heartbeat as the deadline: chatd's Wakeup (the deadline entered once in
// the context's shared timer) against the shape it replaced (a timer armed
// for every wait and cancelled for every wake-up), in the same run. Run:
// build/release/bin/chatd_micro --benchmark_filter=wakeup
#include "core/wakeup.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <functional>

namespace {

using namespace chatd;
namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

// The replaced Wakeup, for comparison.
class TimerWakeup {
public:
    explicit TimerWakeup(const net::any_io_executor& ex) : timer_(ex) {}
    void notify() {
        pending_ = true;
        timer_.cancel();
    }
    net::awaitable<void> wait_until(Clock::time_point deadline) {
        if (!pending_) {
            timer_.expires_at(deadline);
            co_await timer_.async_wait(net::as_tuple(net::use_awaitable));
        }
        pending_ = false;
    }

private:
    net::steady_timer timer_;
    bool pending_ = false;
};

// `rounds` wake-ups: a waiter loops on wait_until(heartbeat); a posted
// producer notifies it once per round, after the waiter has gone back to
// waiting (as a commit wakes a stream that is idle).
template <class W>
void wake_rounds(benchmark::State& state) {
    constexpr int kRounds = 1000;
    for (auto _ : state) {
        net::io_context io(1);
        W w(io.get_executor());
        int woken = 0;
        const auto heartbeat = Clock::now() + std::chrono::seconds(15);
        net::co_spawn(
            io,
            [&]() -> net::awaitable<void> {
                while (woken < kRounds) {
                    co_await w.wait_until(heartbeat);
                    ++woken;
                }
                io.stop();  // the heartbeat stays entered until it is due
            },
            net::detached);
        std::function<void()> produce = [&] {
            if (woken >= kRounds) return;
            w.notify();
            net::post(io, produce);
        };
        net::post(io, produce);
        io.run();
        if (woken != kRounds) state.SkipWithError("not every round woke the waiter");
    }
    state.SetItemsProcessed(state.iterations() * kRounds);
}

void BM_wakeup(benchmark::State& state) {
    wake_rounds<Wakeup>(state);
}
BENCHMARK(BM_wakeup);

void BM_wakeup_timer_per_wait(benchmark::State& state) {
    wake_rounds<TimerWakeup>(state);
}
BENCHMARK(BM_wakeup_timer_per_wait);

}  // namespace
