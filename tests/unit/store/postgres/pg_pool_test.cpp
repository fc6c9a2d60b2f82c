#include "store/postgres/pg_pool.hpp"

#include "support/pg.hpp"
#include "support/run.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <functional>
#include <future>
#include <optional>
#include <stdexcept>

namespace chatd::store::postgres {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using Lease = PgPool::Lease;

Clock::time_point soon() {
    return Clock::now() + 10s;
}

boost::system::error_code unavailable() {
    return make_error_code(Error::store_unavailable);
}

template <class T>
bool is_ready(const std::future<T>& f) {
    return f.wait_for(0s) == std::future_status::ready;
}

class PgPoolTest : public ::testing::Test {
protected:
    PgPoolConfig config(std::size_t size) { return {.conninfo = conninfo_, .size = size}; }

    Lease acquire(PgPool& pool) {
        auto r = test::run(io_, pool.acquire(soon()));
        if (!r) throw std::runtime_error("acquire failed: " + r.error().message());
        return std::move(*r);
    }

    std::future<Result<Lease>> spawn_acquire(PgPool& pool) {
        return net::co_spawn(io_, pool.acquire(soon()), net::use_future);
    }

    PgResult query(PgConnection& c, std::string_view sql, std::vector<PgParam> params = {}) {
        auto r = test::run(io_, c.query(sql, std::move(params), soon()));
        if (!r) throw std::runtime_error("query failed: " + r.error().message());
        return std::move(*r);
    }

    // Runs the io_context until `done` holds; fails the test after 20 s.
    void run_until(const std::function<bool()>& done) {
        auto until = Clock::now() + 20s;
        io_.restart();
        while (!done()) {
            if (Clock::now() > until) throw std::runtime_error("condition not reached in 20 s");
            io_.run_one_for(100ms);
            if (io_.stopped()) io_.restart();
        }
    }

    // Breaks a connection: a deadline passes while the server sleeps.
    void break_connection(PgConnection& c) {
        auto r = test::run(io_, c.query("SELECT pg_sleep(5)", Clock::now() + 50ms));
        ASSERT_FALSE(r);
        ASSERT_TRUE(c.broken());
    }

    net::io_context io_;
    std::string conninfo_ = test::fresh_pg_database();
};

TEST_F(PgPoolTest, ReusesAnIdleConnection) {
    PgPool pool(io_.get_executor(), config(2));
    int pid = 0;
    {
        auto a = acquire(pool);
        pid = a->backend_pid();
        EXPECT_EQ(pool.stats().open, 1u);
        EXPECT_EQ(pool.stats().idle, 0u);
    }
    EXPECT_EQ(pool.stats().idle, 1u);
    auto b = acquire(pool);
    EXPECT_EQ(b->backend_pid(), pid);
    EXPECT_EQ(pool.stats().open, 1u);
    EXPECT_EQ(pool.stats().idle, 0u);
}

TEST_F(PgPoolTest, IsBoundedAndServesWaitersInOrder) {
    PgPool pool(io_.get_executor(), config(2));
    std::optional<Lease> a = acquire(pool);
    std::optional<Lease> b = acquire(pool);
    int a_pid = (*a)->backend_pid();
    int b_pid = (*b)->backend_pid();

    auto first = spawn_acquire(pool);
    run_until([&] { return pool.stats().waiting == 1; });
    auto second = spawn_acquire(pool);
    run_until([&] { return pool.stats().waiting == 2; });
    EXPECT_EQ(pool.stats().open, 2u);

    a.reset();
    run_until([&] { return is_ready(first); });
    EXPECT_FALSE(is_ready(second));
    EXPECT_EQ(pool.stats().waiting, 1u);
    auto first_lease = first.get();
    ASSERT_TRUE(first_lease);
    EXPECT_EQ((*first_lease)->backend_pid(), a_pid);

    b.reset();
    run_until([&] { return is_ready(second); });
    auto second_lease = second.get();
    ASSERT_TRUE(second_lease);
    EXPECT_EQ((*second_lease)->backend_pid(), b_pid);
    EXPECT_EQ(pool.stats().open, 2u);
    EXPECT_EQ(pool.stats().waiting, 0u);
}

TEST_F(PgPoolTest, AcquireGivesUpAtItsDeadline) {
    PgPool pool(io_.get_executor(), config(1));
    auto a = acquire(pool);
    auto r = test::run(io_, pool.acquire(Clock::now() + 100ms));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), unavailable());
    EXPECT_EQ(pool.stats().waiting, 0u);
    EXPECT_EQ(pool.stats().open, 1u);
}

TEST_F(PgPoolTest, ABrokenConnectionIsDroppedAndReplaced) {
    PgPool pool(io_.get_executor(), config(1));
    int old_pid = 0;
    {
        auto a = acquire(pool);
        old_pid = a->backend_pid();
        break_connection(*a);
    }
    EXPECT_EQ(pool.stats().open, 0u);
    EXPECT_EQ(pool.stats().idle, 0u);
    auto b = acquire(pool);
    EXPECT_NE(b->backend_pid(), old_pid);
    EXPECT_EQ(query(*b, "SELECT 1").integer(0, 0), 1);
}

TEST_F(PgPoolTest, ABrokenLeaseFreesItsSlotForAWaiter) {
    PgPool pool(io_.get_executor(), config(1));
    std::optional<Lease> a = acquire(pool);
    auto waiting = spawn_acquire(pool);
    run_until([&] { return pool.stats().waiting == 1; });
    break_connection(**a);
    a.reset();
    run_until([&] { return is_ready(waiting); });
    auto lease = waiting.get();
    ASSERT_TRUE(lease) << lease.error().message();
    EXPECT_EQ(query(**lease, "SELECT 1").integer(0, 0), 1);
    EXPECT_EQ(pool.stats().open, 1u);
}

TEST_F(PgPoolTest, ALeaseReturnedInsideATransactionIsDropped) {
    PgPool pool(io_.get_executor(), config(1));
    {
        auto a = acquire(pool);
        ASSERT_TRUE(query(*a, "BEGIN").ok());
        EXPECT_TRUE(a->in_transaction());
    }
    EXPECT_EQ(pool.stats().open, 0u);
    auto b = acquire(pool);
    EXPECT_FALSE(b->in_transaction());
}

TEST_F(PgPoolTest, AnIdleConnectionTheServerClosedIsReplaced) {
    PgPool pool(io_.get_executor(), config(1));
    int old_pid = 0;
    {
        auto a = acquire(pool);
        old_pid = a->backend_pid();
    }
    test::pg_admin("SELECT pg_terminate_backend(" + std::to_string(old_pid) + ", 10000)");
    auto b = acquire(pool);
    EXPECT_NE(b->backend_pid(), old_pid);
    EXPECT_EQ(query(*b, "SELECT 1").integer(0, 0), 1);
    EXPECT_EQ(pool.stats().open, 1u);
}

TEST_F(PgPoolTest, RecoversAfterAConnectFailure) {
    // The database does not exist yet: connecting fails until it does.
    auto name = test::unique_pg_database_name();
    PgPool pool(io_.get_executor(),
                {.conninfo = test::pg_cluster_conninfo() + " dbname=" + name, .size = 1});
    auto r = test::run(io_, pool.acquire(soon()));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), unavailable());
    EXPECT_EQ(pool.stats().open, 0u);

    test::create_pg_database(name);
    auto lease = test::run(io_, pool.acquire(soon()));
    ASSERT_TRUE(lease) << lease.error().message();
    EXPECT_EQ(query(**lease, "SELECT current_database()").text(0, 0), name);
}

TEST_F(PgPoolTest, LeasesRunQueriesConcurrently) {
    // A waits on the server for a lock B holds; B, on the same thread, sees
    // A waiting and releases the lock. With one blocked connection blocking
    // the thread, B could never run.
    PgPool pool(io_.get_executor(), config(2));
    auto a = acquire(pool);
    auto b = acquire(pool);
    ASSERT_TRUE(query(*b, "SELECT pg_advisory_lock(42)").ok());
    auto blocked =
        net::co_spawn(io_, a->query("SELECT pg_advisory_lock(42)", soon()), net::use_future);

    constexpr std::string_view kWaiting =
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    auto until = Clock::now() + 20s;
    while (query(*b, kWaiting).integer(0, 0) == 0) ASSERT_LT(Clock::now(), until);
    EXPECT_FALSE(is_ready(blocked));

    ASSERT_TRUE(query(*b, "SELECT pg_advisory_unlock(42)").ok());
    run_until([&] { return is_ready(blocked); });
    auto r = blocked.get();
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->ok()) << r->error_message();
}

TEST_F(PgPoolTest, LeasesOutliveThePool) {
    auto pool = std::make_unique<PgPool>(io_.get_executor(), config(2));
    auto a = acquire(*pool);
    { auto idle = acquire(*pool); }
    pool.reset();
    EXPECT_EQ(query(*a, "SELECT 1").integer(0, 0), 1);
}

TEST_F(PgPoolTest, DestroyingThePoolFailsItsWaiters) {
    auto pool = std::make_unique<PgPool>(io_.get_executor(), config(1));
    auto a = acquire(*pool);
    auto waiting = spawn_acquire(*pool);
    run_until([&] { return pool->stats().waiting == 1; });
    pool.reset();
    run_until([&] { return is_ready(waiting); });
    auto r = waiting.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), unavailable());
}

}  // namespace
}  // namespace chatd::store::postgres
