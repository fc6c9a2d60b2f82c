#pragma once
// One PostgreSQL connection driven by libpq's non-blocking API on an Asio
// executor: no libpq call made here blocks the thread. The socket is watched
// with a posix::stream_descriptor that never closes it (libpq owns the fd).
//
// After connect() the connection is in pipeline mode for good: run() sends a
// list of queries in one round trip (each as a prepared statement, prepared
// once per connection and SQL text) and returns one PgResult per query.
//
// Errors come in two kinds:
//   - A query's own failure (bad SQL, a constraint) is a PgResult with !ok()
//     and its sqlstate(); the queries after it in the same run() are
//     aborted(). The connection stays usable.
//   - The connection's failure (lost, or a deadline passed while waiting for
//     the server) is Error::store_unavailable from run() itself. The protocol
//     state is then unknown: the connection is broken() for good, and is to be
//     dropped.
//
// Transactions are the caller's: send "BEGIN", the statements and "COMMIT" as
// the queries of one run(), one round trip. Without BEGIN the queries of one
// run() still form one implicit transaction (an error rolls all of it back).
// When a query fails inside BEGIN, the rest (COMMIT included) are aborted and
// run() rolls the transaction back before it returns, so the connection is
// idle again. If the connection is lost during a run() that carries a COMMIT,
// the outcome is unknown: the transaction may or may not have committed. Make
// such writes idempotent, so that retrying them is safe.
//
// Not thread-safe: one PgConnection is used from one executor (the I/O thread),
// by one run() at a time. The io_context must outlive the connection.
#include "core/error.hpp"
#include "core/net.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <libpq-fe.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace chatd::store::postgres {

// Integers a PgParam takes; not bool or char, whose text would surprise.
template <class T>
concept PgInteger = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char>;

// A query parameter, sent as text: a string, an integer, or SQL NULL
// (std::nullopt, or an empty optional). The server infers its type from the
// statement; add a cast ($1::bigint) where it cannot.
class PgParam {
public:
    // Implicit on purpose: call sites read `{"title", 42, std::nullopt}`.
    PgParam(std::nullopt_t) {}
    PgParam(std::string_view text) : value_(std::string(text)) {}
    PgParam(const char* text) : value_(std::string(text)) {}
    PgParam(std::string text) : value_(std::move(text)) {}
    template <PgInteger T>
    PgParam(T value) : value_(std::to_string(value)) {}
    PgParam(std::optional<std::string> text) : value_(std::move(text)) {}
    PgParam(const std::optional<std::string_view>& text) {
        if (text) value_.emplace(*text);
    }
    PgParam(const std::optional<std::int64_t>& value) {
        if (value) value_.emplace(std::to_string(*value));
    }

    bool is_null() const { return !value_.has_value(); }
    // The NUL-terminated text libpq sends, or nullptr for NULL.
    const char* c_str() const { return value_ ? value_->c_str() : nullptr; }

private:
    std::optional<std::string> value_;
};

// One statement and its parameters ($1, $2, ...). `sql` is one statement,
// with no values spliced in: its text keys the prepared-statement cache.
struct PgQuery {
    std::string_view sql;
    std::vector<PgParam> params = {};
};

// The result of one query: owns its PGresult. Rows and columns count from 0.
class PgResult {
public:
    // Empty: not ok(), no rows. (Asio's co_spawn wants results it can
    // default-construct.)
    PgResult() = default;
    explicit PgResult(PGresult* owned) : result_(owned) {}

    // The statement ran: PGRES_COMMAND_OK or PGRES_TUPLES_OK.
    bool ok() const;
    // Not run, because an earlier query of the same run() failed.
    bool aborted() const;
    ExecStatusType status() const;

    int rows() const;
    int columns() const;
    // The text of a value; empty for NULL. Valid while this PgResult lives.
    std::string_view text(int row, int column) const;
    bool is_null(int row, int column) const;
    // A value that is a decimal integer. Precondition: it is one (not NULL,
    // not text); anything else is a bug and throws std::logic_error.
    std::int64_t integer(int row, int column) const;

    // The SQLSTATE of a failed statement ("23505"); empty when ok().
    std::string_view sqlstate() const;
    // The server's message for a failed statement; empty when ok().
    std::string_view error_message() const;
    // Rows an INSERT, UPDATE, DELETE (...) touched; 0 for other statements.
    std::int64_t affected() const;

private:
    struct Clear {
        void operator()(PGresult* r) const { PQclear(r); }
    };
    std::unique_ptr<PGresult, Clear> result_;
};

// A notification (NOTIFY) received on a connection that LISTENs.
struct PgNotification {
    std::string channel;
    std::string payload;
};

class PgConnection {
public:
    using Clock = std::chrono::steady_clock;

    // Connects within `deadline`. `conninfo` is anything libpq accepts: a URI
    // (postgres://user@host:port/db), "key=value ..." pairs, or "" (then
    // libpq's PG* environment variables apply). Host names are resolved
    // here, on the event loop (libpq's own lookup would block), and the
    // first address of each is what libpq connects to. Fails with Error::store_unavailable; the
    // reason goes to the log (never the password, never the conninfo).
    // `idle_in_transaction` (when set): the server ends the session if it
    // leaves a transaction open longer, releasing its locks.
    [[nodiscard]] static net::awaitable<Result<std::unique_ptr<PgConnection>>> connect(
        net::any_io_executor ex, std::string conninfo, Clock::time_point deadline,
        std::chrono::milliseconds idle_in_transaction = {});

    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    // Sends `queries` in one pipeline and returns their results, in order,
    // one per query (see the contract at the top). Error::store_unavailable
    // when the connection failed, was broken() already, or `deadline` passed.
    // The queries (their sql text) must stay alive until run() returns.
    // No COPY, no multi-statement strings.
    [[nodiscard]] net::awaitable<Result<std::vector<PgResult>>> run(
        std::span<const PgQuery> queries, Clock::time_point deadline);

    // run() with one query: a failed statement is a PgResult that is not
    // ok(), as in run(). `sql` must stay alive until it returns.
    [[nodiscard]] net::awaitable<Result<PgResult>> query(std::string_view sql,
                                                         std::vector<PgParam> params,
                                                         Clock::time_point deadline);
    [[nodiscard]] net::awaitable<Result<PgResult>> query(std::string_view sql,
                                                         Clock::time_point deadline);

    // For a connection that LISTENs, between run()s: the notifications
    // received, waiting for the first until `deadline` (then none).
    // Error::store_unavailable when the connection is lost (it is broken()
    // from then on).
    [[nodiscard]] net::awaitable<Result<std::vector<PgNotification>>> notifications(
        Clock::time_point deadline);

    // True once the connection failed, lost the server, or gave up at a
    // deadline, or when a run() was abandoned half-way. Never false again.
    bool broken() const;
    // True inside a transaction block (after BEGIN, before COMMIT/ROLLBACK).
    bool in_transaction() const;
    // For an idle connection (no run() in progress): false, and broken() from
    // then on, when the server sent something or hung up meanwhile, as it does
    // when it terminates a backend. One poll(2), no waiting.
    bool check_idle();
    // The server process serving this connection (PQbackendPID).
    int backend_pid() const;

private:
    enum class Want { read, write, read_or_write };
    struct Finish {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    struct Pending;  // one command sent in the pipeline, and its result
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };

    PgConnection(net::any_io_executor ex, PGconn* conn);

    // Points socket_ at libpq's current socket; false if it has none.
    bool watch_socket();
    // Waits until the socket is ready for `want`: no error, or
    // net::error::timed_out at the deadline, or the socket's error.
    net::awaitable<boost::system::error_code> wait(Want want, Clock::time_point deadline);
    // Sends one pipeline and collects its results, without the rollback of a
    // failed transaction that run() adds.
    net::awaitable<Result<std::vector<PgResult>>> exchange(std::span<const PgQuery> queries,
                                                           Clock::time_point deadline);
    // Marks the connection broken and logs why; returns the error to report.
    boost::system::error_code fail(std::string_view why);
    boost::system::error_code fail(const boost::system::error_code& wait_error);

    std::unique_ptr<PGconn, Finish> conn_;
    net::posix::stream_descriptor socket_;
    net::steady_timer timer_;
    // SQL text -> prepared statement name ("s1", "s2", ...).
    std::unordered_map<std::string, std::string, StringHash, std::equal_to<>> statements_;
    std::uint64_t next_statement_ = 1;
    bool broken_ = false;
    bool running_ = false;
};

}  // namespace chatd::store::postgres
