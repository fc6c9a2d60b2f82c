#include "core/wakeup.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <vector>

namespace chatd {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A coroutine that waits on `w` once (until `deadline`) and records when it
// returned; the test drives the io_context by hand.
struct Waiter {
    bool done = false;
    Clock::time_point returned_at;

    void start(boost::asio::io_context& io, Wakeup& w, Clock::time_point deadline) {
        done = false;
        boost::asio::co_spawn(
            io,
            [this, &w, deadline]() -> net::awaitable<void> {
                co_await w.wait_until(deadline);
                returned_at = Clock::now();
                done = true;
            },
            boost::asio::detached);
    }
};

// Runs ready handlers only: what can happen without time passing.
void run_ready(boost::asio::io_context& io) {
    io.restart();
    io.poll();
}

TEST(Wakeup, NotifyWakesAWaiterOutsideTheNotifyCall) {
    boost::asio::io_context io;
    Wakeup w(io.get_executor());
    Waiter waiter;
    waiter.start(io, w, Clock::time_point::max());
    run_ready(io);
    EXPECT_FALSE(waiter.done);
    w.notify();
    // Not resumed inside notify(): its callers may be iterating.
    EXPECT_FALSE(waiter.done);
    run_ready(io);
    EXPECT_TRUE(waiter.done);
}

// A stream caught up with a live answer writes the next token from the
// notify itself (api/event_stream.cpp): the handler offered takes the
// wake-up while it says it did all there was to do, and the waiter waits on.
TEST(Wakeup, AnOfferedHandlerTakesTheWakeUpsItSaysItHandled) {
    boost::asio::io_context io;
    Wakeup w(io.get_executor());
    struct Offer {
        int calls = 0;
        bool handled = true;
    } offer;
    w.offer(
        [](void* c) {
            auto& o = *static_cast<Offer*>(c);
            ++o.calls;
            return o.handled;
        },
        &offer);
    // No waiter: kept as pending, not offered.
    w.notify();
    EXPECT_EQ(offer.calls, 0);
    Waiter waiter;
    waiter.start(io, w, Clock::time_point::max());
    run_ready(io);
    EXPECT_TRUE(waiter.done) << "a pending wake-up ends the next wait at once";

    waiter.start(io, w, Clock::time_point::max());
    run_ready(io);
    w.notify();
    w.notify();
    EXPECT_EQ(offer.calls, 2);
    run_ready(io);
    EXPECT_FALSE(waiter.done) << "handled where it happened: the waiter waits on";

    offer.handled = false;
    w.notify();
    EXPECT_EQ(offer.calls, 3);
    run_ready(io);
    EXPECT_TRUE(waiter.done) << "not handled: the waiter wakes as usual";

    w.stop_offering();
    waiter.start(io, w, Clock::time_point::max());
    run_ready(io);
    w.notify();
    run_ready(io);
    EXPECT_EQ(offer.calls, 3);
    EXPECT_TRUE(waiter.done);
}

TEST(Wakeup, ANotifyBeforeTheWaitIsKeptAndWakeUpsCoalesce) {
    boost::asio::io_context io;
    Wakeup w(io.get_executor());
    w.notify();
    w.notify();
    w.notify();
    run_ready(io);
    Waiter waiter;
    waiter.start(io, w, Clock::time_point::max());
    run_ready(io);
    EXPECT_TRUE(waiter.done);  // the pending wake-up
    // The three were one: the next wait waits.
    waiter.start(io, w, Clock::time_point::max());
    run_ready(io);
    EXPECT_FALSE(waiter.done);
    w.notify();
    run_ready(io);
    EXPECT_TRUE(waiter.done);
}

TEST(Wakeup, TheDeadlineEndsAWaitAndAPassedOneReturnsAtOnce) {
    boost::asio::io_context io;
    Wakeup w(io.get_executor());
    Waiter waiter;
    const auto deadline = Clock::now() + 30ms;
    waiter.start(io, w, deadline);
    io.restart();
    while (!waiter.done) io.run_one_for(5s);
    EXPECT_GE(waiter.returned_at, deadline);
    waiter.start(io, w, deadline);  // passed already
    run_ready(io);
    EXPECT_TRUE(waiter.done);
}

// The timer of a deadline stays set when a wake-up ends the wait first; it
// must not wake a later wait that has no deadline, nor one with another.
TEST(Wakeup, AnOldDeadlineWakesNoLaterWait) {
    boost::asio::io_context io;
    Wakeup w(io.get_executor());
    Waiter waiter;
    const auto early = Clock::now() + 20ms;
    waiter.start(io, w, early);
    run_ready(io);
    w.notify();
    run_ready(io);
    ASSERT_TRUE(waiter.done);

    waiter.start(io, w, Clock::time_point::max());
    const auto later = Clock::now() + 200ms;
    io.restart();
    io.run_until(later);  // well past `early`
    EXPECT_FALSE(waiter.done);
    w.notify();
    run_ready(io);
    EXPECT_TRUE(waiter.done);

    // And a wait with a later deadline ends at its own.
    waiter.start(io, w, Clock::now() + 40ms);
    const auto started = Clock::now();
    io.restart();
    while (!waiter.done) io.run_one_for(5s);
    EXPECT_GE(waiter.returned_at - started, 40ms);
}

// A parked session stream waits with a plain callback: it is called once,
// after notify() returns or at the deadline, and the same Wakeup then serves
// a coroutine.
TEST(Wakeup, ACallbackWaitsAsACoroutineDoes) {
    boost::asio::io_context io;
    Wakeup w(io.get_executor());
    int calls = 0;
    w.async_wait_until(Clock::time_point::max(), [&] { ++calls; });
    run_ready(io);
    EXPECT_EQ(calls, 0);
    w.notify();
    EXPECT_EQ(calls, 0) << "called inside notify()";
    run_ready(io);
    EXPECT_EQ(calls, 1);
    EXPECT_FALSE(w.woken_at_deadline());
    w.notify();  // nobody waits: kept for the next wait
    run_ready(io);
    EXPECT_EQ(calls, 1);

    Waiter waiter;
    waiter.start(io, w, Clock::time_point::max());
    run_ready(io);
    EXPECT_TRUE(waiter.done) << "the kept wake-up";

    const auto deadline = Clock::now() + 20ms;
    w.async_wait_until(deadline, [&] { ++calls; });
    io.restart();
    while (calls < 2) io.run_one_for(5s);
    EXPECT_GE(Clock::now(), deadline);
    EXPECT_TRUE(w.woken_at_deadline());
}

// A callback still waiting when the Wakeup goes is destroyed, never called.
TEST(Wakeup, AWaitingCallbackIsDroppedWithIt) {
    boost::asio::io_context io;
    auto alive = std::make_shared<int>(0);
    std::weak_ptr<int> watch = alive;
    bool called = false;
    {
        Wakeup w(io.get_executor());
        w.async_wait_until(Clock::now() + 10ms,
                           [&called, held = std::move(alive)] { called = true; });
    }
    EXPECT_TRUE(watch.expired());
    io.restart();
    io.run_for(30ms);
    EXPECT_FALSE(called);
}

// Destroyed with its deadline entered: the context's timer, due later,
// touches nothing of it.
TEST(Wakeup, DestroyedWithItsDeadlineEntered) {
    boost::asio::io_context io;
    bool later_woken = false;
    Wakeup later(io.get_executor());
    later.async_wait_until(Clock::now() + 30ms, [&] { later_woken = true; });
    {
        Wakeup w(io.get_executor());
        Waiter waiter;
        waiter.start(io, w, Clock::now() + 10ms);
        run_ready(io);
        w.notify();
        run_ready(io);
        ASSERT_TRUE(waiter.done);
        w.notify();  // posted, not yet run
    }
    io.restart();
    while (!later_woken) io.run_one_for(5s);  // past the destroyed one's deadline
    SUCCEED();
}

// The Wakeups of a context share one timer: each wait still ends at its own
// deadline, in order, whichever was entered first, and one taken out (a new
// deadline) is not woken at its old one.
TEST(Wakeup, ManyDeadlinesShareTheContextsTimer) {
    boost::asio::io_context io;
    constexpr int kCount = 6;
    std::vector<std::unique_ptr<Wakeup>> wakeups;
    std::vector<Clock::time_point> deadlines, woken(kCount);
    std::vector<int> order;
    const auto base = Clock::now() + 20ms;
    for (int i = 0; i < kCount; ++i) {
        wakeups.push_back(std::make_unique<Wakeup>(io.get_executor()));
        // Entered latest first, so that every one moves the timer earlier.
        deadlines.push_back(base + (kCount - 1 - i) * 15ms);
    }
    for (int i = 0; i < kCount; ++i)
        wakeups[i]->async_wait_until(deadlines[i], [&, i] {
            woken[i] = Clock::now();
            order.push_back(i);
        });
    // The earliest is moved last: woken at its new deadline, not its old.
    wakeups[kCount - 1]->notify();
    run_ready(io);
    ASSERT_EQ(order, std::vector<int>{kCount - 1});
    deadlines[kCount - 1] = base + kCount * 15ms;
    wakeups[kCount - 1]->async_wait_until(deadlines[kCount - 1], [&] {
        woken[kCount - 1] = Clock::now();
        order.push_back(kCount - 1);
    });
    io.restart();
    while (order.size() < kCount + 1u) io.run_one_for(5s);
    EXPECT_EQ(order, (std::vector<int>{kCount - 1, 4, 3, 2, 1, 0, kCount - 1}));
    for (int i = 0; i < kCount; ++i) EXPECT_GE(woken[i], deadlines[i]) << i;
}

// A waiter that owns its Wakeup (a coroutine whose frame holds the stream
// that holds it) is freed by nothing else: the context's shutdown destroys
// it, as it destroys every pending handler, whether or not it has a
// deadline. A Wakeup that outlives its context leaves it cleanly.
TEST(Wakeup, TheContextsShutdownDestroysTheWaitersLeft) {
    auto io = std::make_unique<boost::asio::io_context>();
    auto held = std::make_shared<int>(0);
    std::weak_ptr<int> frames = held;
    for (auto deadline : {Clock::time_point::max(), Clock::now() + 1h}) {
        auto w = std::make_shared<Wakeup>(io->get_executor());
        boost::asio::co_spawn(
            *io,
            [](std::shared_ptr<Wakeup> w, std::shared_ptr<int> /*held*/, Clock::time_point deadline)
                -> net::awaitable<void> { co_await w->wait_until(deadline); }(w, held, deadline),
            boost::asio::detached);
    }
    held.reset();
    run_ready(*io);
    ASSERT_FALSE(frames.expired());  // both wait, each owning its Wakeup

    auto outliving = std::make_unique<Wakeup>(io->get_executor());
    bool called = false;
    outliving->async_wait_until(Clock::now() + 1h, [&] { called = true; });
    io.reset();
    EXPECT_TRUE(frames.expired()) << "a waiting coroutine and its Wakeup leaked";
    outliving.reset();
    EXPECT_FALSE(called);
}

}  // namespace
}  // namespace chatd
