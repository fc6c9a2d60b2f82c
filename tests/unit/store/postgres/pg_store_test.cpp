// What only PostgreSQL can show of the store contract: concurrent start-ups,
// transactions committing out of order, and a connection lost during COMMIT.
// The rest of the contract is chat_store_contract_test.cpp, on both stores.
#include "store/postgres/pg_migrations.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/postgres/pg_notices.hpp"

#include "support/pg.hpp"
#include "support/run.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace chatd::store::postgres {
namespace {

namespace net = boost::asio;
using net::ip::tcp;

const UserId kAlice{"usr_alice"};

std::unique_ptr<PgStore> open_store(net::io_context& io, const std::string& conninfo) {
    return test::run(io, PgStore::open(io.get_executor(), PgStoreConfig{.conninfo = conninfo}));
}

// A blocking connection of the test's own, beside the store.
class RawConnection {
public:
    explicit RawConnection(const std::string& conninfo)
        : conn_(PQconnectdb(conninfo.c_str()), &PQfinish) {
        if (PQstatus(conn_.get()) != CONNECTION_OK)
            throw std::runtime_error(PQerrorMessage(conn_.get()));
    }
    std::string exec(const std::string& sql) {
        std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn_.get(), sql.c_str()), &PQclear);
        auto status = PQresultStatus(r.get());
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
            throw std::runtime_error(sql + ": " + PQresultErrorMessage(r.get()));
        return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
    }

private:
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

TEST(PgStoreTest, StoresOpeningANewDatabaseTogetherMigrateItOnce) {
    auto conninfo = test::fresh_pg_database();
    net::io_context io;
    std::vector<std::future<std::unique_ptr<PgStore>>> opening;
    for (int i = 0; i < 4; ++i)
        opening.push_back(net::co_spawn(
            io, PgStore::open(io.get_executor(), PgStoreConfig{.conninfo = conninfo}),
            net::use_future));
    io.run();
    for (auto& f : opening) EXPECT_TRUE(f.get());
    auto all = std::to_string(pg_migrations().size());
    EXPECT_EQ(test::pg_exec(conninfo, "SELECT COUNT(*) FROM schema_migrations"), all);
    EXPECT_EQ(test::pg_exec(conninfo, "SELECT MAX(version) FROM schema_migrations"), all);
}

// A transaction that took its id before a later one commits after it: a
// poll that saw the later change must not skip the earlier one next time.
TEST(PgStoreTest, PollSeesAChangeThatCommitsAfterALaterOne) {
    auto conninfo = test::fresh_pg_database();
    net::io_context io;
    auto store = open_store(io, conninfo);
    auto session = test::run(io, store->create_session(kAlice, NewSession{.title = "t"}));
    auto first = test::run(io, store->begin_turn(kAlice, session->id, NewTurn{.content = "q"}));
    auto ended = first->turn->assistant_message.id;
    Batch end_it{.writes = {MessageWrite{.id = ended,
                                         .text = "done",
                                         .terminal = Terminal{},
                                         .full_content = "done"}}};
    ASSERT_TRUE(test::run(io, store->commit(end_it)));
    auto second = test::run(io, store->begin_turn(kAlice, session->id, NewTurn{.content = "q2"}));
    auto live = second->turn->assistant_message.id;
    auto start = test::run(io, store->changed_since(kAlice, session->id, Since{}));

    // The slow writer takes its transaction id now...
    RawConnection slow(conninfo);
    slow.exec("BEGIN");
    auto slow_xid = std::stoll(slow.exec("SELECT pg_current_xact_id()::text"));
    // ...a later transaction commits a change and a poll sees it...
    ASSERT_TRUE(test::run(io, store->commit(Batch{.writes = {MessageWrite{.id = live, .text = "x"}}})));
    auto seen = test::run(io, store->changed_since(kAlice, session->id, Since{.seq = start->next_seq}));
    ASSERT_TRUE(seen);
    // (Other tests' transactions in the cluster may hold the horizon back:
    // then earlier changes come again too.)
    auto later = std::find_if(seen->messages.begin(), seen->messages.end(),
                              [&](const Message& m) { return m.id == live; });
    ASSERT_NE(later, seen->messages.end());
    EXPECT_GT(later->change_seq, slow_xid);  // committed out of order
    // ...then the slow one commits its change to the ended message.
    slow.exec("UPDATE ai_chat_messages SET version = version + 1, change_seq = "
              "pg_current_xact_id()::text::bigint WHERE id = '" + ended.value + "'");
    slow.exec("COMMIT");
    auto next = test::run(io, store->changed_since(kAlice, session->id, Since{.seq = seen->next_seq}));
    ASSERT_TRUE(next);
    auto it = std::find_if(next->messages.begin(), next->messages.end(),
                           [&](const Message& m) { return m.id == ended; });
    ASSERT_NE(it, next->messages.end()) << "the change that committed last was missed";
    EXPECT_EQ(it->change_seq, slow_xid);
}

// A send collides with the session's answer, and that answer ends (another
// node's commit) before the send reads its id: the send is made again and
// starts the next turn, instead of failing. The window is held open by a
// trigger on the statement between the two, which waits for an advisory lock
// the test holds.
TEST(PgStoreTest, ASendCollidingWithAnAnswerThatEndsMeanwhileStartsTheNextTurn) {
    auto conninfo = test::fresh_pg_database();
    net::io_context io;
    auto store = open_store(io, conninfo);
    auto session = test::run(io, store->create_session(kAlice, NewSession{.title = "t"}));
    auto first = test::run(io, store->begin_turn(kAlice, session->id, NewTurn{.content = "q1"}));
    const auto answer = first->turn->assistant_message.id;

    RawConnection lock(conninfo), other(conninfo);
    other.exec(
        "CREATE FUNCTION chatd_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM pg_advisory_xact_lock_shared(7); RETURN NULL; END $$");
    other.exec("CREATE TRIGGER chatd_test_gate AFTER UPDATE ON ai_chat_sessions "
               "FOR EACH STATEMENT EXECUTE FUNCTION chatd_test_gate()");
    lock.exec("SELECT pg_advisory_lock(7)");

    auto sent = net::co_spawn(io, store->begin_turn(kAlice, session->id, NewTurn{.content = "q2"}),
                              net::use_future);
    auto work = net::make_work_guard(io);
    std::thread runner([&] { io.restart(); io.run(); });
    // The send collided, and waits at the gate.
    for (int i = 0; other.exec("SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event = "
                               "'advisory' AND datname = current_database()") != "1"; ++i) {
        ASSERT_LT(i, 2000) << "the send never reached the gate";
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    other.exec("UPDATE ai_chat_messages SET status = 'completed', is_streaming = false WHERE id = '" +
               answer.value + "'");
    lock.exec("SELECT pg_advisory_unlock(7)");
    auto outcome = sent.get();
    work.reset();
    runner.join();

    ASSERT_TRUE(outcome) << outcome.error().message();
    ASSERT_TRUE(outcome->turn) << "answered with active message "
                               << (outcome->active_message ? outcome->active_message->value : "");
    EXPECT_EQ(outcome->turn->user_message.content, "q2");
    auto history = test::run(io, store->list_messages(kAlice, session->id));
    ASSERT_TRUE(history);
    ASSERT_EQ(history->size(), 4u);  // q1, its answer, q2, its answer: nothing twice
    EXPECT_EQ((*history)[3].id, outcome->turn->assistant_message.id);
}

// Forwards one client to PostgreSQL; once armed, it cuts the client off as
// soon as the server reports a transaction ended (ReadyForQuery, idle): the
// COMMIT happened, and the client never hears it.
class CuttingProxy {
public:
    CuttingProxy(net::io_context& io, const std::string& host, std::uint16_t port)
        : io_(io), acceptor_(io, {net::ip::make_address("127.0.0.1"), 0}), server_(host, port) {
        net::co_spawn(io, accept(), net::detached);
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    bool armed = false;
    int cuts = 0;

private:
    net::awaitable<void> accept() {
        for (;;) {
            auto [ec, client] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
            if (ec) co_return;
            auto client_ptr = std::make_shared<tcp::socket>(std::move(client));
            auto server = std::make_shared<tcp::socket>(io_);
            co_await server->async_connect(
                {net::ip::make_address(server_.first), server_.second},
                net::as_tuple(net::use_awaitable));
            net::co_spawn(io_, pump(client_ptr, server, false), net::detached);
            net::co_spawn(io_, pump(server, client_ptr, true), net::detached);
        }
    }

    net::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to,
                              bool from_server) {
        static constexpr char kIdle[] = {'Z', 0, 0, 0, 5, 'I'};
        std::array<char, 65536> buffer;
        for (;;) {
            auto [ec, n] = co_await from->async_read_some(net::buffer(buffer),
                                                          net::as_tuple(net::use_awaitable));
            if (ec) break;
            std::string_view data(buffer.data(), n);
            if (from_server && armed &&
                data.find(std::string_view(kIdle, sizeof kIdle)) != std::string_view::npos) {
                armed = false;
                ++cuts;
                break;  // the client hears nothing of it
            }
            auto [wec, written] = co_await net::async_write(*to, net::buffer(data),
                                                            net::as_tuple(net::use_awaitable));
            if (wec) break;
        }
        boost::system::error_code ignored;
        from->close(ignored);
        to->close(ignored);
    }

    net::io_context& io_;
    tcp::acceptor acceptor_;
    std::pair<std::string, std::uint16_t> server_;
};

// The connection drops after the server committed and before the client
// heard it: the commit fails, is retried as the persister retries it (grown
// by later text), and every byte is stored once (I2).
TEST(PgStoreTest, ACommitRetriedAfterItsConnectionDroppedDuringCommitStoresEachByteOnce) {
    auto conninfo = test::fresh_pg_database();
    net::io_context io;
    CuttingProxy proxy(io, test::pg_conninfo_value(conninfo, "host"),
                       static_cast<std::uint16_t>(std::stoi(test::pg_conninfo_value(conninfo, "port"))));
    auto via_proxy = "host=127.0.0.1 port=" + std::to_string(proxy.port()) +
                     " user=" + test::pg_conninfo_value(conninfo, "user") +
                     " dbname=" + test::pg_conninfo_value(conninfo, "dbname");
    auto store = open_store(io, via_proxy);
    auto session = test::run(io, store->create_session(kAlice, NewSession{.title = "t"}));
    auto turn = test::run(io, store->begin_turn(kAlice, session->id, NewTurn{.content = "q"}));
    auto id = turn->turn->assistant_message.id;
    ASSERT_TRUE(test::run(io, store->commit(Batch{.writes = {MessageWrite{.id = id, .text = "Hello"}}})));

    proxy.armed = true;
    auto lost = test::run(io, store->commit(
                                  Batch{.writes = {MessageWrite{.id = id, .offset = 5, .text = ", wörld"}}}));
    EXPECT_EQ(proxy.cuts, 1);
    ASSERT_FALSE(lost) << "the client heard the commit";
    // It did commit.
    EXPECT_EQ(test::pg_exec(conninfo, "SELECT string_agg(text, '' ORDER BY byte_offset) FROM "
                                      "ai_chat_message_chunks WHERE message_id = '" + id.value + "'"),
              "Hello, wörld");
    // The retry carries the same text and more.
    auto retried = test::run(io, store->commit(Batch{
                                     .writes = {MessageWrite{.id = id, .offset = 5, .text = ", wörld!"}}}));
    ASSERT_TRUE(retried);
    EXPECT_FALSE(retried->writes[0].error);
    auto m = test::run(io, store->get_message(kAlice, id));
    EXPECT_EQ(m->content, "Hello, wörld!");
    EXPECT_EQ(m->version, 4);  // three stored changes, not four
}

}  // namespace
}  // namespace chatd::store::postgres

namespace chatd::store::postgres {
namespace {

// Drains `listener` until its notices named every one of `ids`, or 10 s.
bool hears(net::io_context& io, ChangeListener& listener, std::vector<MessageId> ids) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!ids.empty() && std::chrono::steady_clock::now() < until) {
        auto n = test::run(io, listener.next(std::chrono::steady_clock::now() +
                                             std::chrono::milliseconds(200)));
        if (!n) continue;
        std::erase_if(ids, [&](const MessageId& id) {
            return std::find(n->messages.begin(), n->messages.end(), id) != n->messages.end() ||
                   std::any_of(n->chunks.begin(), n->chunks.end(),
                               [&](const ChunkNotice& c) { return c.id == id; });
        });
    }
    return ids.empty();
}

// Nodes hear each other's commits: one notification per commit, naming
// every message it wrote.
TEST(PgStoreTest, ACommitIsAnnouncedOnceToEveryStoreOnTheDatabase) {
    auto conninfo = test::fresh_pg_database();
    net::io_context io;
    auto writer = open_store(io, conninfo);
    auto reader = open_store(io, conninfo);
    auto listener = reader->listen(io.get_executor());
    auto first = test::run(io, listener->next(std::chrono::steady_clock::now() +
                                              std::chrono::seconds(5)));
    ASSERT_TRUE(first);
    EXPECT_TRUE(first->everything);

    std::vector<MessageId> ids;
    for (int i = 0; i < 3; ++i) {
        auto s = test::run(io, writer->create_session(kAlice, NewSession{.title = "t"}));
        auto t = test::run(io, writer->begin_turn(kAlice, s->id, NewTurn{.content = "q"}));
        ids.push_back(t->turn->assistant_message.id);
    }
    // Counted on a connection of the test's own: every notification up to
    // a sentinel commit's.
    auto raw = test::run(io, PgConnection::connect(io.get_executor(), conninfo,
                                                   std::chrono::steady_clock::now() +
                                                       std::chrono::seconds(5)));
    ASSERT_TRUE(raw);
    auto& conn = **raw;
    ASSERT_TRUE(test::run(io, conn.query("LISTEN chatd_changes", std::chrono::steady_clock::now() +
                                                                   std::chrono::seconds(5))));
    Batch batch{.at = now_millis()};
    for (const auto& id : ids) batch.writes.push_back({.id = id, .offset = 0, .text = "hi"});
    ASSERT_TRUE(test::run(io, writer->commit(std::move(batch))));
    Batch sentinel{.writes = {{.id = ids[0], .offset = 2, .text = "!"}}, .at = now_millis()};
    ASSERT_TRUE(test::run(io, writer->commit(std::move(sentinel))));
    std::vector<PgNotification> received;
    while (received.size() < 2) {
        auto more = test::run(io, conn.notifications(std::chrono::steady_clock::now() +
                                                     std::chrono::seconds(5)));
        ASSERT_TRUE(more);
        ASSERT_FALSE(more->empty()) << "a notification did not come";
        received.insert(received.end(), more->begin(), more->end());
    }
    ASSERT_EQ(received.size(), 2u) << "one notification per commit";
    ChangeNotice commit;
    decode_notice(received[0].payload, commit);
    ASSERT_EQ(commit.chunks.size(), ids.size()) << "the text goes along";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(commit.chunks[i].id, ids[i]);
        EXPECT_EQ(commit.chunks[i].text, "hi");
        EXPECT_EQ(commit.chunks[i].offset, 0);
        EXPECT_EQ(commit.chunks[i].version, 2);
    }
    // And the other store's listener hears it.
    EXPECT_TRUE(hears(io, *listener, ids));
}

// A listener whose connection is lost says so, and listens again on the
// next call, whose notice is "everything" (what it missed is unknown).
TEST(PgStoreTest, AListenerThatLostItsConnectionListensAgain) {
    auto conninfo = test::fresh_pg_database();
    net::io_context io;
    auto store = open_store(io, conninfo);
    auto listener = store->listen(io.get_executor());
    auto deadline = [] { return std::chrono::steady_clock::now() + std::chrono::seconds(5); };
    ASSERT_TRUE(test::run(io, listener->next(deadline())));
    RawConnection admin(conninfo);
    // This test's database only: other tests listen in theirs meanwhile.
    admin.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' "
               "AND datname = current_database() AND pid <> pg_backend_pid()");
    auto lost = test::run(io, listener->next(deadline()));
    EXPECT_FALSE(lost);
    auto again = test::run(io, listener->next(deadline()));
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_TRUE(again->everything);
    auto s = test::run(io, store->create_session(kAlice, NewSession{.title = "t"}));
    auto t = test::run(io, store->begin_turn(kAlice, s->id, NewTurn{.content = "q"}));
    const auto& id = t->turn->assistant_message.id;
    Batch batch{.writes = {{.id = id, .offset = 0, .text = "hi"}}, .at = now_millis()};
    ASSERT_TRUE(test::run(io, store->commit(std::move(batch))));
    EXPECT_TRUE(hears(io, *listener, {id}));
}

}  // namespace
}  // namespace chatd::store::postgres
