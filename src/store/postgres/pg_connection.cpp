#include "store/postgres/pg_connection.hpp"

#include "core/log.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <charconv>
#include <stdexcept>

namespace chatd::store::postgres {
namespace {

constexpr std::size_t kMaxParams = 65535;  // the protocol's limit

// libpq's messages end in a newline and may span lines: one log line each.
std::string one_line(std::string_view message) {
    std::string out(message);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    for (auto& c : out)
        if (c == '\n' || c == '\t') c = ' ';
    return out;
}

// Notices (NOTICE, WARNING from the server) go to the log, never to stderr.
void log_notice(void*, const char* message) {
    log::debug("postgres: {}", one_line(message));
}

std::vector<std::string> split_commas(const std::string& list) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        auto comma = list.find(',', start);
        out.push_back(list.substr(start, comma - start));
        if (comma == std::string::npos) return out;
        start = comma + 1;
    }
}

// A host entry libpq connects to without a name lookup: a socket directory,
// an abstract socket, an address, or empty (the default socket).
bool needs_lookup(const std::string& host) {
    if (host.empty() || host.front() == '/' || host.front() == '@') return false;
    boost::system::error_code ec;
    net::ip::make_address(host, ec);
    return ec.failed();
}

// The connection options with every host name resolved, on the event loop:
// libpq would resolve them with a blocking getaddrinfo inside
// PQconnectStart. A name with several addresses becomes as many host entries,
// each with its address in `hostaddr` (libpq tries them in order, connects to
// the address, and keeps `host` for TLS and the password file).
net::awaitable<Result<std::vector<std::pair<std::string, std::string>>>> resolve_hosts(
    net::any_io_executor ex, PQconninfoOption* options, PgConnection::Clock::time_point deadline) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string host, hostaddr, port;
    for (auto* o = options; o->keyword; ++o) {
        if (!o->val) continue;
        std::string_view keyword = o->keyword;
        if (keyword == "host")
            host = o->val;
        else if (keyword == "hostaddr")
            hostaddr = o->val;
        else if (keyword == "port")
            port = o->val;
        else
            out.emplace_back(keyword, o->val);
    }
    // Not in the string: libpq's environment defaults, as it would use them.
    if (host.empty())
        if (const char* env = std::getenv("PGHOST")) host = env;
    if (hostaddr.empty())
        if (const char* env = std::getenv("PGHOSTADDR")) hostaddr = env;
    if (port.empty())
        if (const char* env = std::getenv("PGPORT")) port = env;
    auto hosts = split_commas(host);
    auto ports = split_commas(port);
    const bool port_each = ports.size() > 1 && ports.size() == hosts.size();
    if (!hostaddr.empty() || std::none_of(hosts.begin(), hosts.end(), needs_lookup)) {
        if (!host.empty()) out.emplace_back("host", host);
        if (!hostaddr.empty()) out.emplace_back("hostaddr", hostaddr);
        if (!port.empty()) out.emplace_back("port", port);
        co_return out;
    }
    net::ip::tcp::resolver resolver(ex);
    net::steady_timer timer(ex, deadline);
    std::string host_list, address_list, port_list;
    auto add = [&](const std::string& h, const std::string& address, std::size_t i) {
        if (!host_list.empty() || !address_list.empty() || !port_list.empty()) {
            host_list += ',';
            address_list += ',';
            port_list += ',';
        }
        host_list += h;
        address_list += address;
        if (port_each) port_list += ports[i];
    };
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        if (!needs_lookup(hosts[i])) {
            add(hosts[i], "", i);  // an empty hostaddr entry: libpq uses the host itself
            continue;
        }
        using net::experimental::make_parallel_group;
        using net::experimental::wait_for_one;
        auto [order, ec, found, timer_ec] =
            co_await make_parallel_group(resolver.async_resolve(hosts[i], "", net::deferred),
                                         timer.async_wait(net::deferred))
                .async_wait(wait_for_one(), net::use_awaitable);
        if (order[0] != 0 || ec || found.empty()) {
            log::warn("postgres: connect failed: cannot resolve host {}: {}", hosts[i],
                      order[0] != 0 ? "no answer before the deadline" : ec.message());
            co_return Error::store_unavailable;
        }
        for (const auto& entry : found) add(hosts[i], entry.endpoint().address().to_string(), i);
    }
    out.emplace_back("host", host_list);
    out.emplace_back("hostaddr", address_list);
    if (!port.empty()) out.emplace_back("port", port_each ? port_list : port);
    co_return out;
}

bool parse_int64(std::string_view text, std::int64_t& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

ExecStatusType PgResult::status() const {
    return PQresultStatus(result_.get());
}

bool PgResult::ok() const {
    auto s = status();
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

bool PgResult::aborted() const {
    return status() == PGRES_PIPELINE_ABORTED;
}

int PgResult::rows() const {
    return PQntuples(result_.get());
}

int PgResult::columns() const {
    return PQnfields(result_.get());
}

std::string_view PgResult::text(int row, int column) const {
    const char* value = PQgetvalue(result_.get(), row, column);
    if (!value) return {};
    return {value, static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
}

bool PgResult::is_null(int row, int column) const {
    return PQgetisnull(result_.get(), row, column) == 1;
}

std::int64_t PgResult::integer(int row, int column) const {
    std::int64_t value = 0;
    if (is_null(row, column) || !parse_int64(text(row, column), value))
        throw std::logic_error("PgResult::integer on a value that is not an integer");
    return value;
}

std::string_view PgResult::sqlstate() const {
    const char* state = PQresultErrorField(result_.get(), PG_DIAG_SQLSTATE);
    return state ? std::string_view(state) : std::string_view();
}

std::string_view PgResult::error_message() const {
    return PQresultErrorMessage(result_.get());
}

std::int64_t PgResult::affected() const {
    std::int64_t n = 0;
    return parse_int64(PQcmdTuples(result_.get()), n) ? n : 0;
}

// One command sent in the pipeline: a prepare (Parse) or a query (Bind and
// Execute), and the result the server gave it.
struct PgConnection::Pending {
    bool prepare = false;
    std::string sql;  // a prepare's cache key, forgotten if it fails
    std::optional<PgResult> result = std::nullopt;
};

PgConnection::PgConnection(net::any_io_executor ex, PGconn* conn)
    : conn_(conn), socket_(ex), timer_(std::move(ex)) {}

PgConnection::~PgConnection() {
    // libpq owns the socket and closes it in PQfinish: only unregister it.
    if (socket_.is_open()) socket_.release();
}

net::awaitable<Result<std::unique_ptr<PgConnection>>> PgConnection::connect(
    net::any_io_executor ex, std::string conninfo, Clock::time_point deadline,
    std::chrono::milliseconds idle_in_transaction) {
    // Parse first, and log none of libpq's parse errors: they quote the
    // string, which may hold a password.
    char* parse_error = nullptr;
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
        PQconninfoParse(conninfo.c_str(), &parse_error), &PQconninfoFree);
    PQfreemem(parse_error);
    if (!options) {
        log::warn("postgres: connect failed: the connection string does not parse");
        co_return Error::store_unavailable;
    }
    auto params = co_await resolve_hosts(ex, options.get(), deadline);
    if (!params) co_return params.error();
    if (idle_in_transaction.count() > 0) {
        // The server ends a session that leaves a transaction open this long
        // (a client paused mid-transaction), and with it the row locks it holds.
        auto setting = "-c idle_in_transaction_session_timeout=" +
                       std::to_string(idle_in_transaction.count());
        auto it = std::find_if(params->begin(), params->end(),
                               [](const auto& p) { return p.first == "options"; });
        if (it == params->end())
            params->emplace_back("options", setting);
        else
            it->second += " " + setting;
    }
    std::vector<const char*> keywords, values;
    for (const auto& [k, v] : *params) {
        keywords.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keywords.push_back(nullptr);
    values.push_back(nullptr);

    std::unique_ptr<PgConnection> c(new PgConnection(
        ex, PQconnectStartParams(keywords.data(), values.data(), /*expand_dbname=*/0)));
    PGconn* conn = c->conn_.get();
    if (!conn) {
        log::warn("postgres: connect failed: out of memory");
        co_return Error::store_unavailable;
    }
    PQsetNoticeProcessor(conn, log_notice, nullptr);

    // libpq's connection state machine: wait for what PQconnectPoll asks for,
    // then poll again. Before the first poll, it wants a writable socket.
    auto state = PGRES_POLLING_WRITING;
    while (state != PGRES_POLLING_OK) {
        if (state == PGRES_POLLING_FAILED || PQstatus(conn) == CONNECTION_BAD) {
            log::warn("postgres: connect failed: {}", one_line(PQerrorMessage(conn)));
            co_return Error::store_unavailable;
        }
        // The socket can change between polls (libpq tries the next address,
        // or again without SSL), even to one with the same number.
        if (!c->watch_socket()) {
            log::warn("postgres: connect failed: {}", one_line(PQerrorMessage(conn)));
            co_return Error::store_unavailable;
        }
        auto ec =
            co_await c->wait(state == PGRES_POLLING_READING ? Want::read : Want::write, deadline);
        if (ec) {
            log::warn("postgres: connect failed: {}",
                      ec == net::error::timed_out ? "no answer before the deadline" : ec.message());
            co_return Error::store_unavailable;
        }
        state = PQconnectPoll(conn);
    }
    if (!c->watch_socket() || PQsetnonblocking(conn, 1) != 0 || PQenterPipelineMode(conn) != 1) {
        log::warn("postgres: connect failed: {}", one_line(PQerrorMessage(conn)));
        co_return Error::store_unavailable;
    }
    co_return std::move(c);
}

bool PgConnection::watch_socket() {
    if (socket_.is_open()) socket_.release();
    int fd = PQsocket(conn_.get());
    if (fd < 0) return false;
    boost::system::error_code ec;
    socket_.assign(fd, ec);
    return !ec;
}

net::awaitable<boost::system::error_code> PgConnection::wait(Want want,
                                                             Clock::time_point deadline) {
    using net::experimental::make_parallel_group;
    using net::experimental::wait_for_one;
    using Wait = net::posix::stream_descriptor::wait_type;
    timer_.expires_at(deadline);
    if (want == Want::read_or_write) {
        auto [order, read_ec, write_ec, timer_ec] =
            co_await make_parallel_group(socket_.async_wait(Wait::wait_read, net::deferred),
                                         socket_.async_wait(Wait::wait_write, net::deferred),
                                         timer_.async_wait(net::deferred))
                .async_wait(wait_for_one(), net::use_awaitable);
        if (order[0] == 0) co_return read_ec;
        if (order[0] == 1) co_return write_ec;
        co_return net::error::timed_out;
    }
    auto [order, socket_ec, timer_ec] =
        co_await make_parallel_group(
            socket_.async_wait(want == Want::read ? Wait::wait_read : Wait::wait_write,
                               net::deferred),
            timer_.async_wait(net::deferred))
            .async_wait(wait_for_one(), net::use_awaitable);
    if (order[0] == 0) co_return socket_ec;
    co_return net::error::timed_out;
}

boost::system::error_code PgConnection::fail(std::string_view why) {
    if (!broken_) log::warn("postgres: dropping the connection: {}", one_line(why));
    broken_ = true;
    return Error::store_unavailable;
}

boost::system::error_code PgConnection::fail(const boost::system::error_code& wait_error) {
    return fail(wait_error == net::error::timed_out ? std::string("no answer before the deadline")
                                                    : wait_error.message());
}

net::awaitable<Result<std::vector<PgResult>>> PgConnection::run(std::span<const PgQuery> queries,
                                                                Clock::time_point deadline) {
    if (running_) throw std::logic_error("PgConnection::run while another run is in progress");
    if (broken()) co_return Error::store_unavailable;
    if (queries.empty()) co_return std::vector<PgResult>{};

    // A run abandoned half-way (its coroutine destroyed, say with the
    // io_context) leaves the protocol in an unknown state.
    struct Running {
        PgConnection* c;
        bool done = false;
        ~Running() {
            c->running_ = false;
            if (!done) c->broken_ = true;
        }
    } running{this};
    running_ = true;

    auto results = co_await exchange(queries, deadline);
    // A failed statement inside BEGIN leaves the transaction aborted, and the
    // COMMIT after it was skipped: end it, so the connection is idle again.
    if (results && PQtransactionStatus(conn_.get()) == PQTRANS_INERROR) {
        const PgQuery rollback{"ROLLBACK"};
        auto rolled = co_await exchange(std::span(&rollback, 1), deadline);
        if (!rolled)
            results = rolled.error();
        else if (!rolled->front().ok())
            results = fail(rolled->front().error_message());
    }
    running.done = true;
    co_return results;
}

net::awaitable<Result<std::vector<PgResult>>> PgConnection::exchange(
    std::span<const PgQuery> queries, Clock::time_point deadline) {
    PGconn* conn = conn_.get();

    // Send: each query as Bind+Execute of its prepared statement, preceded by
    // a Parse the first time its SQL text is seen; then one Sync.
    std::vector<Pending> pending;
    pending.reserve(queries.size() + 1);
    for (const auto& q : queries)
        if (q.params.size() > kMaxParams)
            throw std::logic_error(
                "PgConnection::run with more parameters than the protocol allows");
    std::vector<const char*> values;
    for (const auto& q : queries) {
        auto it = statements_.find(q.sql);
        if (it == statements_.end()) {
            it = statements_.emplace(q.sql, "s" + std::to_string(next_statement_++)).first;
            if (PQsendPrepare(conn, it->second.c_str(), it->first.c_str(), 0, nullptr) != 1)
                co_return fail(PQerrorMessage(conn));
            pending.push_back({.prepare = true, .sql = it->first});
        }
        values.clear();
        for (const auto& p : q.params) values.push_back(p.c_str());
        if (PQsendQueryPrepared(conn, it->second.c_str(), static_cast<int>(values.size()),
                                values.data(), nullptr, nullptr, 0) != 1)
            co_return fail(PQerrorMessage(conn));
        pending.push_back({.prepare = false});
    }
    if (PQpipelineSync(conn) != 1) co_return fail(PQerrorMessage(conn));

    // Flush. While the server does not take more, read what it sends: it may
    // be blocked writing results to us (libpq's advice against deadlock).
    for (;;) {
        int flushed = PQflush(conn);
        if (flushed == 0) break;
        if (flushed < 0) co_return fail(PQerrorMessage(conn));
        if (auto ec = co_await wait(Want::read_or_write, deadline)) co_return fail(ec);
        if (PQconsumeInput(conn) != 1) co_return fail(PQerrorMessage(conn));
    }

    // Read: each command's results end with a null; the Sync's result ends
    // the pipeline.
    std::size_t next = 0;  // the command whose results come next
    for (;;) {
        if (PQstatus(conn) == CONNECTION_BAD) co_return fail(PQerrorMessage(conn));
        if (PQisBusy(conn)) {
            if (auto ec = co_await wait(Want::read, deadline)) co_return fail(ec);
            if (PQconsumeInput(conn) != 1) co_return fail(PQerrorMessage(conn));
            continue;
        }
        PGresult* raw = PQgetResult(conn);
        if (!raw) {
            if (next == pending.size()) co_return fail("more results than commands");
            ++next;
            continue;
        }
        PgResult result(raw);
        if (result.status() == PGRES_PIPELINE_SYNC) {
            if (next != pending.size()) co_return fail("the pipeline ended early");
            break;
        }
        if (next == pending.size()) co_return fail("more results than commands");
        // One result per command; anything more (there is none without
        // COPY or single-row mode) is dropped.
        if (!pending[next].result) pending[next].result.emplace(std::move(result));
    }

    std::vector<PgResult> results;
    results.reserve(queries.size());
    std::optional<PgResult> failed_prepare;
    for (auto& p : pending) {
        if (!p.result) co_return fail("a command without a result");
        if (p.prepare) {
            if (!p.result->ok()) {
                // Not prepared on the server: prepare it again next time.
                statements_.erase(p.sql);
                // Its query is only "aborted"; the prepare's error says why.
                if (!p.result->aborted()) failed_prepare.emplace(std::move(*p.result));
            }
            continue;
        }
        if (failed_prepare) {
            results.push_back(std::move(*failed_prepare));
            failed_prepare.reset();
        } else {
            results.push_back(std::move(*p.result));
        }
    }
    co_return results;
}

net::awaitable<Result<PgResult>> PgConnection::query(std::string_view sql,
                                                     std::vector<PgParam> params,
                                                     Clock::time_point deadline) {
    const PgQuery q{sql, std::move(params)};
    auto results = co_await run(std::span(&q, 1), deadline);
    if (!results) co_return results.error();
    co_return std::move(results->front());
}

net::awaitable<Result<PgResult>> PgConnection::query(std::string_view sql,
                                                     Clock::time_point deadline) {
    return query(sql, {}, deadline);
}

net::awaitable<Result<std::vector<PgNotification>>> PgConnection::notifications(
    Clock::time_point deadline) {
    if (running_) throw std::logic_error("PgConnection::notifications during a run");
    if (broken()) co_return Error::store_unavailable;
    auto* conn = conn_.get();
    std::vector<PgNotification> out;
    auto drain = [&] {
        while (PGnotify* n = PQnotifies(conn)) {
            out.push_back({n->relname, n->extra});
            PQfreemem(n);
        }
    };
    drain();  // some may have come in with the last run()'s results
    while (out.empty()) {
        auto ec = co_await wait(Want::read, deadline);
        if (ec == net::error::timed_out) break;
        if (ec) co_return fail(ec);
        if (PQconsumeInput(conn) != 1 || PQstatus(conn) == CONNECTION_BAD)
            co_return fail(PQerrorMessage(conn));
        drain();
    }
    co_return out;
}

bool PgConnection::broken() const {
    return broken_ || PQstatus(conn_.get()) == CONNECTION_BAD;
}

bool PgConnection::in_transaction() const {
    return PQtransactionStatus(conn_.get()) != PQTRANS_IDLE;
}

bool PgConnection::check_idle() {
    if (broken()) return false;
    pollfd p{.fd = PQsocket(conn_.get()), .events = POLLIN, .revents = 0};
    int ready = ::poll(&p, 1, 0);
    if (ready == 0 || (ready < 0 && errno == EINTR)) return true;
    fail("the server spoke or hung up while the connection was idle");
    return false;
}

int PgConnection::backend_pid() const {
    return PQbackendPID(conn_.get());
}

}  // namespace chatd::store::postgres
