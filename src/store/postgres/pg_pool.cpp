#include "store/postgres/pg_pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <vector>

namespace chatd::store::postgres {

// What the pool and its leases share. Invariant: while acquire() calls wait,
// no connection is idle and every slot is taken (a freed slot or a returned
// connection goes to the first waiter at once).
struct PgPool::State {
    // A waiting acquire(). Woken (its timer cancelled) when handed a
    // connection or a free slot, or when the pool closes.
    struct Waiter {
        explicit Waiter(const net::any_io_executor& ex) : timer(ex) {}
        net::steady_timer timer;
        std::unique_ptr<PgConnection> conn;  // handed over
        bool slot = false;                   // a slot handed over: connect
    };

    State(net::any_io_executor executor, PgPoolConfig pool_config)
        : ex(std::move(executor)), config(std::move(pool_config)) {}

    static net::awaitable<Result<Lease>> acquire(std::shared_ptr<State> self,
                                                 Clock::time_point deadline);
    // Connects in a slot already counted in `open`.
    static net::awaitable<Result<Lease>> connect(std::shared_ptr<State> self,
                                                 Clock::time_point deadline);
    void give_back(std::unique_ptr<PgConnection> conn);
    // A connection is gone: its slot goes to the first waiter, if any.
    void free_slot();
    void forget(const Waiter* waiter);
    void close();

    net::any_io_executor ex;
    PgPoolConfig config;
    std::vector<std::unique_ptr<PgConnection>> idle;  // the most recently used last
    std::size_t open = 0;
    std::deque<std::shared_ptr<Waiter>> waiters;
    bool closed = false;
};

net::awaitable<Result<PgPool::Lease>> PgPool::State::acquire(std::shared_ptr<State> self,
                                                             Clock::time_point deadline) {
    if (self->closed) co_return Error::store_unavailable;
    while (!self->idle.empty()) {
        auto conn = std::move(self->idle.back());
        self->idle.pop_back();
        if (conn->check_idle()) co_return Lease(self, std::move(conn));
        --self->open;  // closed by the server while idle; no one waits for the slot
    }
    if (self->open < self->config.size) {
        ++self->open;
        co_return co_await connect(self, deadline);
    }

    auto waiter = std::make_shared<Waiter>(self->ex);
    self->waiters.push_back(waiter);
    // However this wait ends (deadline, hand-over, or the coroutine destroyed
    // mid-wait), the waiter leaves the queue and nothing handed to it is lost.
    struct Waiting {
        State* pool;
        Waiter* waiter;
        ~Waiting() {
            pool->forget(waiter);
            if (waiter->conn) pool->give_back(std::move(waiter->conn));
            if (waiter->slot) {
                waiter->slot = false;
                pool->free_slot();
            }
        }
    } waiting{self.get(), waiter.get()};
    waiter->timer.expires_at(deadline);
    co_await waiter->timer.async_wait(net::as_tuple(net::use_awaitable));
    if (waiter->conn) co_return Lease(self, std::move(waiter->conn));
    if (waiter->slot) {
        waiter->slot = false;
        co_return co_await connect(self, deadline);
    }
    co_return Error::store_unavailable;  // the deadline passed, or the pool closed
}

net::awaitable<Result<PgPool::Lease>> PgPool::State::connect(std::shared_ptr<State> self,
                                                             Clock::time_point deadline) {
    // The slot is freed unless a lease takes it, even if this coroutine is
    // destroyed mid-connect.
    struct Slot {
        State* pool;
        bool taken = false;
        ~Slot() {
            if (!taken) pool->free_slot();
        }
    } slot{self.get()};
    auto until = std::min(deadline, Clock::now() + self->config.connect_timeout);
    auto conn = co_await PgConnection::connect(self->ex, self->config.conninfo, until,
                                                self->config.idle_in_transaction);
    if (!conn) co_return conn.error();
    if (self->closed) co_return Error::store_unavailable;
    slot.taken = true;
    co_return Lease(self, std::move(*conn));
}

void PgPool::State::give_back(std::unique_ptr<PgConnection> conn) {
    // Broken, or inside a transaction its borrower left open: of no use to
    // the next borrower.
    if (closed || conn->broken() || conn->in_transaction()) {
        conn.reset();
        free_slot();
        return;
    }
    if (!waiters.empty()) {
        auto waiter = std::move(waiters.front());
        waiters.pop_front();
        waiter->conn = std::move(conn);
        waiter->timer.cancel();
        return;
    }
    idle.push_back(std::move(conn));
}

void PgPool::State::free_slot() {
    --open;
    if (closed || waiters.empty()) return;
    auto waiter = std::move(waiters.front());
    waiters.pop_front();
    ++open;
    waiter->slot = true;
    waiter->timer.cancel();
}

void PgPool::State::forget(const Waiter* waiter) {
    auto it = std::find_if(waiters.begin(), waiters.end(),
                           [waiter](const auto& w) { return w.get() == waiter; });
    if (it != waiters.end()) waiters.erase(it);
}

void PgPool::State::close() {
    closed = true;
    open -= idle.size();
    idle.clear();
    auto woken = std::move(waiters);
    waiters.clear();
    for (auto& waiter : woken) waiter->timer.cancel();
}

PgPool::Lease::Lease(std::weak_ptr<State> pool, std::unique_ptr<PgConnection> conn)
    : pool_(std::move(pool)), conn_(std::move(conn)) {}

PgPool::Lease& PgPool::Lease::operator=(Lease&& other) noexcept {
    if (this != &other) {
        give_back();
        pool_ = std::move(other.pool_);
        conn_ = std::move(other.conn_);
    }
    return *this;
}

PgPool::Lease::~Lease() {
    give_back();
}

void PgPool::Lease::give_back() {
    if (!conn_) return;
    if (auto pool = pool_.lock()) pool->give_back(std::move(conn_));
    conn_.reset();  // the pool is gone: close it
}

PgPool::PgPool(net::any_io_executor ex, PgPoolConfig config)
    : state_(std::make_shared<State>(std::move(ex), std::move(config))) {}

PgPool::~PgPool() {
    state_->close();
}

net::awaitable<Result<PgPool::Lease>> PgPool::acquire(Clock::time_point deadline) {
    // Not a coroutine itself: the state, not the pool, lives in the frame,
    // so the pool may go while an acquire() waits.
    return State::acquire(state_, deadline);
}

PgPoolStats PgPool::stats() const {
    return {.open = state_->open, .idle = state_->idle.size(), .waiting = state_->waiters.size()};
}

}  // namespace chatd::store::postgres
