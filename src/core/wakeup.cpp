#include "core/wakeup.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/intrusive/set.hpp>

#include <optional>
#include <utility>

namespace chatd {

// The Wakeups of one execution context that wait: those with a deadline in
// order of it, with one timer set to the earliest, and those with a waiter,
// whose waiters the context's shutdown destroys. Entering or leaving either
// costs no allocation (a Wakeup is its own node); the timer is set again
// only when an earlier deadline comes in, or when the earliest is due.
class Wakeup::Waits final : public boost::asio::execution_context::service {
public:
    static boost::asio::execution_context::id id;

    explicit Waits(boost::asio::execution_context& context) : service(context) {}

    // Enters `w`'s deadline_ (not entered now).
    void enter_deadline(Wakeup& w) {
        if (shut_down_) return;
        deadlines_.insert(w);
        if (w.deadline_ < armed_) arm(w.deadline_, w.ex_);
    }
    // `w` has a waiter now.
    void enter_waiter(Wakeup& w) {
        if (!shut_down_) waiters_.push_back(w);
    }

private:
    struct ByDeadline {
        bool operator()(const Wakeup& a, const Wakeup& b) const {
            return a.deadline_ < b.deadline_;
        }
    };
    using Deadlines = boost::intrusive::multiset<
        Wakeup,
        boost::intrusive::member_hook<Wakeup, decltype(Wakeup::deadline_hook_),
                                      &Wakeup::deadline_hook_>,
        boost::intrusive::compare<ByDeadline>, boost::intrusive::constant_time_size<false>>;
    using Waiters =
        boost::intrusive::list<Wakeup,
                               boost::intrusive::member_hook<Wakeup, decltype(Wakeup::waiter_hook_),
                                                             &Wakeup::waiter_hook_>,
                               boost::intrusive::constant_time_size<false>>;

    void shutdown() override {
        shut_down_ = true;
        deadlines_.clear();
        timer_.reset();
        // A waiter destroyed may destroy Wakeups (its own among them), which
        // leave the list as they go: take one at a time from its front.
        while (!waiters_.empty()) {
            Wakeup& w = waiters_.front();
            waiters_.pop_front();
            auto waiter = std::move(w.waiter_);
        }
    }

    void arm(Clock::time_point at, const boost::asio::any_io_executor& ex) {
        if (!timer_) timer_.emplace(ex);
        armed_ = at;
        timer_->expires_at(at);  // a wait for a later deadline ends, aborted
        timer_->async_wait([this](boost::system::error_code ec) {
            if (!ec) fire();
        });
    }

    // Takes out every Wakeup that is due and wakes its waiter, if one waits.
    void fire() {
        armed_ = Clock::time_point::max();
        const auto now = Clock::now();
        while (!deadlines_.empty() && deadlines_.begin()->deadline_ <= now) {
            Wakeup& w = *deadlines_.begin();
            deadlines_.erase(deadlines_.begin());
            w.deadline_ = Clock::time_point::min();
            if (w.waiter_) w.wake(true);
        }
        if (!deadlines_.empty()) arm(deadlines_.begin()->deadline_, timer_->get_executor());
    }

    Deadlines deadlines_;
    Waiters waiters_;
    std::optional<boost::asio::steady_timer> timer_;  // made with the first deadline
    Clock::time_point armed_ = Clock::time_point::max();
    bool shut_down_ = false;
};

boost::asio::execution_context::id Wakeup::Waits::id;

Wakeup::Wakeup(const boost::asio::any_io_executor& ex)
    : ex_(ex),
      waits_(boost::asio::use_service<Waits>(
          boost::asio::query(ex, boost::asio::execution::context))) {}

Wakeup::~Wakeup() = default;  // the hooks leave the lists by themselves

void Wakeup::notify() {
    if (!waiter_)
        pending_ = true;  // more coalesce into it
    else if (!handle_ || !handle_(handle_context_))
        wake(false);
}

void Wakeup::wake(bool at_deadline) {
    woken_at_deadline_ = at_deadline;
    waiter_hook_.unlink();
    // Not destroyed with the handler if it runs: complete() frees it.
    boost::asio::post(ex_, [w = std::move(waiter_)]() mutable { w.release()->complete(); });
}

boost::asio::awaitable<void> Wakeup::wait_until(Clock::time_point deadline) {
    if (pending_) {  // the common case on a busy stream: no suspension at all
        pending_ = false;
        woken_at_deadline_ = false;
        co_return;
    }
    if (deadline <= Clock::now()) {
        woken_at_deadline_ = true;
        co_return;
    }
    co_await async_wait_until(deadline, boost::asio::use_awaitable);
}

void Wakeup::start_wait(Waiter* waiter, Clock::time_point deadline) {
    waiter_.reset(waiter);
    if (pending_ || deadline <= Clock::now()) {
        wake(!std::exchange(pending_, false));
        return;
    }
    waits_.enter_waiter(*this);
    if (deadline == deadline_ && deadline_hook_.is_linked()) return;  // entered already
    deadline_hook_.unlink();
    deadline_ = deadline;
    if (deadline != Clock::time_point::max()) waits_.enter_deadline(*this);
}

}  // namespace chatd
