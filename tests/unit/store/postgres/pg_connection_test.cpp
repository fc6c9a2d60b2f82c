#include "store/postgres/pg_connection.hpp"

#include "support/pg.hpp"
#include "support/run.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace chatd::store::postgres {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using tcp = net::ip::tcp;

Clock::time_point soon() {
    return Clock::now() + 10s;
}

boost::system::error_code unavailable() {
    return make_error_code(Error::store_unavailable);
}

std::unique_ptr<PgConnection> connect(net::io_context& io, const std::string& conninfo) {
    auto c = test::run(io, PgConnection::connect(io.get_executor(), conninfo, soon()));
    if (!c) throw std::runtime_error("connect failed: " + c.error().message());
    return std::move(*c);
}

// Holds the connection in the coroutine's frame while a query runs for a while.
net::awaitable<void> sleep_holding(std::unique_ptr<PgConnection> c, bool* started) {
    *started = true;
    auto r = co_await c->query("SELECT pg_sleep(5)", Clock::now() + 60s);
    ADD_FAILURE() << "the query was expected to be abandoned";
}

class PgConnectionTest : public ::testing::Test {
protected:
    std::unique_ptr<PgConnection> connect() { return postgres::connect(io_, conninfo_); }

    // A query whose connection must not fail; its statement may.
    PgResult query(PgConnection& c, std::string_view sql, std::vector<PgParam> params = {}) {
        auto r = test::run(io_, c.query(sql, std::move(params), soon()));
        if (!r) throw std::runtime_error("query failed: " + r.error().message());
        return std::move(*r);
    }

    std::vector<PgResult> run(PgConnection& c, const std::vector<PgQuery>& queries) {
        auto r = test::run(io_, c.run(queries, soon()));
        if (!r) throw std::runtime_error("run failed: " + r.error().message());
        return std::move(*r);
    }

    net::io_context io_;
    std::string conninfo_ = test::fresh_pg_database();
};

TEST_F(PgConnectionTest, ConnectsAndRunsASimpleQuery) {
    auto c = connect();
    auto r = query(*c, "SELECT 1 + 1, 'two'");
    ASSERT_TRUE(r.ok()) << r.error_message();
    EXPECT_EQ(r.rows(), 1);
    EXPECT_EQ(r.columns(), 2);
    EXPECT_EQ(r.integer(0, 0), 2);
    EXPECT_EQ(r.text(0, 1), "two");
    EXPECT_EQ(r.sqlstate(), "");
    EXPECT_FALSE(c->broken());
    EXPECT_FALSE(c->in_transaction());
}

TEST_F(PgConnectionTest, ParametersRoundTripIncludingNullAndInt64) {
    auto c = connect();
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
    std::string text = "h\xC3\xA9llo 'single' \"double\" \\ $1";
    auto r = query(*c, "SELECT $1::bigint, $2::bigint, $3::text, $4::text, $5::bigint IS NULL",
                   {kMax, kMin, text, std::nullopt, std::optional<std::int64_t>()});
    ASSERT_TRUE(r.ok()) << r.error_message();
    EXPECT_EQ(r.integer(0, 0), kMax);
    EXPECT_EQ(r.integer(0, 1), kMin);
    EXPECT_EQ(r.text(0, 2), text);
    EXPECT_FALSE(r.is_null(0, 2));
    EXPECT_TRUE(r.is_null(0, 3));
    EXPECT_EQ(r.text(0, 4), "t");
}

TEST_F(PgConnectionTest, APipelineReturnsOneResultPerQueryInOneRun) {
    auto c = connect();
    ASSERT_TRUE(query(*c, "CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL)").ok());
    auto results = run(*c, {{"BEGIN"},
                            {"INSERT INTO notes VALUES ($1, $2)", {1, "a"}},
                            {"INSERT INTO notes VALUES ($1, $2)", {2, "b"}},
                            {"SELECT count(*) FROM notes"},
                            {"COMMIT"}});
    ASSERT_EQ(results.size(), 5u);
    for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.error_message();
    EXPECT_EQ(results[1].affected(), 1);
    EXPECT_EQ(results[2].affected(), 1);
    EXPECT_EQ(results[3].integer(0, 0), 2);
    EXPECT_FALSE(c->in_transaction());
    EXPECT_EQ(query(*c, "SELECT string_agg(body, ',' ORDER BY id) FROM notes").text(0, 0), "a,b");
}

TEST_F(PgConnectionTest, AFailingStatementAbortsTheRestOfItsPipeline) {
    auto c = connect();
    ASSERT_TRUE(query(*c, "CREATE TABLE notes (id bigint PRIMARY KEY)").ok());
    auto results = run(*c, {{"BEGIN"},
                            {"INSERT INTO notes VALUES ($1)", {1}},
                            {"INSERT INTO notes VALUES ($1)", {1}},
                            {"INSERT INTO notes VALUES ($1)", {2}},
                            {"COMMIT"}});
    ASSERT_EQ(results.size(), 5u);
    EXPECT_TRUE(results[0].ok());
    EXPECT_TRUE(results[1].ok());
    EXPECT_FALSE(results[2].ok());
    EXPECT_FALSE(results[2].aborted());
    EXPECT_EQ(results[2].sqlstate(), "23505");
    EXPECT_NE(results[2].error_message().find("duplicate key"), std::string_view::npos);
    EXPECT_TRUE(results[3].aborted());
    EXPECT_TRUE(results[4].aborted());
    // The transaction was rolled back and the connection is idle and usable.
    EXPECT_FALSE(c->broken());
    EXPECT_FALSE(c->in_transaction());
    EXPECT_EQ(query(*c, "SELECT count(*) FROM notes").integer(0, 0), 0);
}

TEST_F(PgConnectionTest, PreparedStatementsAreReusedAcrossRuns) {
    auto c = connect();
    EXPECT_EQ(query(*c, "SELECT $1::int + 1", {1}).integer(0, 0), 2);
    EXPECT_EQ(query(*c, "SELECT $1::int + 1", {41}).integer(0, 0), 42);
    auto prepared = query(*c, "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                          {"SELECT $1::int + 1"});
    EXPECT_EQ(prepared.integer(0, 0), 1);
}

TEST_F(PgConnectionTest, AFailedPrepareIsForgottenAndFailsAgainCleanly) {
    auto c = connect();
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto r = query(*c, "SELEC 1");
        EXPECT_FALSE(r.ok());
        EXPECT_FALSE(r.aborted());
        EXPECT_EQ(r.sqlstate(), "42601") << r.error_message();  // a syntax error, not 26000
    }
    EXPECT_EQ(query(*c, "SELECT 7").integer(0, 0), 7);
    EXPECT_FALSE(c->broken());
}

TEST_F(PgConnectionTest, AFailedPrepareMidPipelineAbortsTheRest) {
    auto c = connect();
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto results = run(*c, {{"SELECT 1"}, {"SELEC 2"}, {"SELECT 3"}});
        ASSERT_EQ(results.size(), 3u);
        EXPECT_EQ(results[0].integer(0, 0), 1);
        EXPECT_EQ(results[1].sqlstate(), "42601");
        EXPECT_TRUE(results[2].aborted());
    }
    EXPECT_EQ(query(*c, "SELECT 3").integer(0, 0), 3);
}

TEST_F(PgConnectionTest, APassedDeadlineBreaksTheConnection) {
    auto c = connect();
    auto start = Clock::now();
    auto r = test::run(io_, c->query("SELECT pg_sleep(5)", Clock::now() + 200ms));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), unavailable());
    EXPECT_LT(Clock::now() - start, 4s);  // it did not wait for the sleep
    EXPECT_TRUE(c->broken());
    auto again = test::run(io_, c->query("SELECT 1", soon()));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), unavailable());
}

TEST_F(PgConnectionTest, AConnectionTheServerTerminatesIsBroken) {
    auto victim = connect();
    auto killer = connect();
    auto killed = query(*killer, "SELECT pg_terminate_backend($1, 10000)", {victim->backend_pid()});
    ASSERT_EQ(killed.text(0, 0), "t") << killed.error_message();
    auto r = test::run(io_, victim->query("SELECT 1", soon()));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), unavailable());
    EXPECT_TRUE(victim->broken());
    EXPECT_FALSE(killer->broken());
}

TEST_F(PgConnectionTest, ConnectingToAClosedPortFails) {
    tcp::acceptor probe(io_, {net::ip::make_address("127.0.0.1"), 0});
    auto port = probe.local_endpoint().port();
    probe.close();
    auto start = Clock::now();
    auto c = test::run(
        io_, PgConnection::connect(io_.get_executor(),
                                   "host=127.0.0.1 user=postgres port=" + std::to_string(port),
                                   Clock::now() + 5s));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), unavailable());
    EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(PgConnectionTest, ConnectingToAServerThatNeverAnswersEndsAtTheDeadline) {
    // The kernel accepts the TCP connection; nobody ever answers on it.
    tcp::acceptor silent(io_, {net::ip::make_address("127.0.0.1"), 0});
    auto port = silent.local_endpoint().port();
    auto start = Clock::now();
    auto c = test::run(
        io_, PgConnection::connect(io_.get_executor(),
                                   "host=127.0.0.1 user=postgres port=" + std::to_string(port),
                                   Clock::now() + 200ms));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), unavailable());
    EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(PgConnectionTest, AcceptsKeyValueConninfo) {
    auto c = postgres::connect(io_, conninfo_);
    EXPECT_EQ(query(*c, "SELECT current_database()").text(0, 0),
              test::pg_conninfo_value(conninfo_, "dbname"));
}

// A host name is looked up on the event loop (libpq's own lookup blocks), and
// every address it has is tried: "localhost" may be ::1 first, where the test
// server does not listen.
TEST_F(PgConnectionTest, AHostNameIsResolvedAndEachOfItsAddressesTried) {
    auto by_name = "host=localhost port=" + test::pg_conninfo_value(conninfo_, "port") +
                   " user=postgres dbname=" + test::pg_conninfo_value(conninfo_, "dbname");
    auto c = postgres::connect(io_, by_name);
    EXPECT_EQ(query(*c, "SELECT inet_server_addr()::text").text(0, 0), "127.0.0.1/32");
}

TEST_F(PgConnectionTest, AHostNameThatDoesNotResolveFails) {
    auto c = test::run(io_, PgConnection::connect(io_.get_executor(),
                                                  "host=no-such-host.invalid user=postgres",
                                                  Clock::now() + 5s));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), unavailable());
}

TEST_F(PgConnectionTest, AcceptsAUri) {
    auto uri = test::pg_uri(conninfo_);
    ASSERT_EQ(uri.rfind("postgres://", 0), 0u);
    auto c = postgres::connect(io_, uri);
    EXPECT_EQ(query(*c, "SELECT current_database()").text(0, 0),
              test::pg_conninfo_value(conninfo_, "dbname"));
}

TEST_F(PgConnectionTest, AnEmptyConninfoTakesTheEnvironment) {
    struct Variable {
        const char* name;
        const char* keyword;
    };
    const Variable kVariables[] = {
        {"PGHOST", "host"}, {"PGPORT", "port"}, {"PGUSER", "user"}, {"PGDATABASE", "dbname"}};
    for (const auto& v : kVariables)
        ::setenv(v.name, test::pg_conninfo_value(conninfo_, v.keyword).c_str(), 1);
    auto c = postgres::connect(io_, "");
    for (const auto& v : kVariables) ::unsetenv(v.name);
    EXPECT_EQ(query(*c, "SELECT current_database()").text(0, 0),
              test::pg_conninfo_value(conninfo_, "dbname"));
}

TEST_F(PgConnectionTest, AConninfoThatDoesNotParseFails) {
    auto c = test::run(io_, PgConnection::connect(io_.get_executor(), "password secret", soon()));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), unavailable());
}

TEST_F(PgConnectionTest, NoticesStayOffStderr) {
    auto c = connect();
    ::testing::internal::CaptureStderr();
    auto r = query(*c, "DO $$ BEGIN RAISE NOTICE 'chatd-notice-marker'; END $$");
    auto err = ::testing::internal::GetCapturedStderr();
    EXPECT_TRUE(r.ok()) << r.error_message();
    EXPECT_EQ(err.find("chatd-notice-marker"), std::string::npos) << err;
}

TEST_F(PgConnectionTest, AnAbandonedQueryLeaksNothing) {
    // The io_context goes away while the query waits for its answer: the
    // coroutine frame, and the connection in it, are destroyed mid-wait.
    // (ASan checks that nothing leaks or is used after it is freed.)
    auto io = std::make_unique<net::io_context>();
    auto c = postgres::connect(*io, conninfo_);
    bool started = false;
    auto done = net::co_spawn(*io, sleep_holding(std::move(c), &started), net::use_future);
    io->restart();
    while (!started) io->run_one();
    io->poll();  // sends the query and waits for the answer
    EXPECT_NE(done.wait_for(0s), std::future_status::ready);
    io.reset();
}

}  // namespace
}  // namespace chatd::store::postgres
