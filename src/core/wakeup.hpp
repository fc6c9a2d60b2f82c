#pragma once
// A one-waiter wake-up signal on one executor: notify() wakes the waiter, or
// makes its next wait return at once. Not thread-safe: notify and wait run on
// the same executor (the I/O thread), and every Wakeup of one execution
// context on one thread (they share its timer, see below).
//
// The waiter is a coroutine (wait_until) or a callback (async_wait_until with
// a plain handler): a session stream with nothing to write parks on a
// callback instead of keeping a chain of suspended coroutines (see
// api/session_stream.hpp).
//
// It is on every token's path (a commit wakes each of its readers), so a
// wake-up posts the waiter's completion and does nothing else. Deadlines are
// a stream's heartbeat, mostly far off and rarely changed, and there may be
// thousands: the Wakeups of an execution context share one timer (Waits, a
// service of the context, holds them in order of deadline), so a Wakeup
// holds no timer and a wait allocates no timer operation. A deadline is
// entered only when it changes (a stream's next heartbeat, not every wait),
// and a wake-up does not take it out: it stays entered until it is due or
// the Wakeup goes, waking nobody if no wait has it. The waiter runs from a
// posted handler, never inside notify(): notify() is called while its
// callers iterate.
//
// A waiter often owns its Wakeup (a coroutine's frame holds the stream that
// holds it), so nothing else would free either if the context stopped with
// it waiting: as for any pending handler, the context's shutdown destroys
// the waiters still waiting.
#include "core/net.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/intrusive/list_hook.hpp>
#include <boost/intrusive/set_hook.hpp>

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
    // A wake-up handled where it happens: while offered, a notify() that
    // finds a waiter first calls `handle(context)`; true means it did all
    // that the waiter would have done (so the waiter waits on), false wakes
    // the waiter as usual. A stream caught up with a live answer writes the
    // next token this way instead of resuming its coroutine for it. It runs
    // inside notify(), while the notifier iterates: it must not notify, nor
    // start or end a wait.
    using Handle = bool (*)(void* context);
    void offer(Handle handle, void* context) {
        handle_ = handle;
        handle_context_ = context;
    }
    void stop_offering() { handle_ = nullptr; }
    // Whether the last wait ended at its deadline rather than by notify():
    // a stream woken at its heartbeat knows that nothing else woke it (a
    // notify() that comes meanwhile ends the next wait at once).
    bool woken_at_deadline() const { return woken_at_deadline_; }
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
                start_wait(WaiterOf<Handler>::make(std::move(handler)), d);
            },
            token, deadline);
    }

private:
    // The waiting handler, type-erased. (Not Asio's any_completion_handler:
    // Boost 1.81's move assignment of it recurses without end.) Freed
    // before its handler runs, so that the wait the handler starts next may
    // reuse its memory. (Not from Asio's recycled blocks: a parked stream's
    // waiter lives for minutes, and a small one there took whatever larger
    // block the thread had cached, ~350 B more per idle stream.)
    struct Waiter {
        virtual void complete() = 0;  // frees the waiter, then calls its handler
        virtual void destroy() = 0;   // frees it without calling

    protected:
        ~Waiter() = default;
    };
    template <typename Handler>
    struct WaiterOf final : Waiter {
        explicit WaiterOf(Handler h) : handler(std::move(h)) {}
        static Waiter* make(Handler h) { return new WaiterOf(std::move(h)); }
        void complete() override {
            Handler h(std::move(handler));
            destroy();
            std::move(h)();
        }
        void destroy() override { delete this; }
        Handler handler;
    };
    struct DestroyWaiter {
        void operator()(Waiter* w) const { w->destroy(); }
    };
    using WaiterPtr = std::unique_ptr<Waiter, DestroyWaiter>;
    class Waits;  // the context's waiting Wakeups and their timer (wakeup.cpp)

    void start_wait(Waiter* waiter, Clock::time_point deadline);
    // Hands the waiter to the executor: it runs after the caller returns.
    void wake(bool at_deadline);

    using AutoUnlink = boost::intrusive::link_mode<boost::intrusive::auto_unlink>;

    boost::asio::any_io_executor ex_;
    Waits& waits_;
    WaiterPtr waiter_;      // null: nobody waits
    bool pending_ = false;  // a wake-up came with nobody waiting
    bool woken_at_deadline_ = false;
    Handle handle_ = nullptr;
    void* handle_context_ = nullptr;
    // The deadline entered in `waits_` while `deadline_hook_` is linked.
    Clock::time_point deadline_ = Clock::time_point::min();
    boost::intrusive::set_member_hook<AutoUnlink, boost::intrusive::optimize_size<true>>
        deadline_hook_;
    boost::intrusive::list_member_hook<AutoUnlink> waiter_hook_;  // linked while waiter_ is set
};

}  // namespace chatd
