// A parked session stream (api/session_stream.hpp) against a real SQLite
// store, engine and feeds, on a loopback socket.
#include "api/session_stream.hpp"

#include "engine/conversations.hpp"
#include "llm/simulated/simulated_provider.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/faulty_store.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace chatd::api {
namespace {

using tcp = net::ip::tcp;
using namespace std::chrono_literals;
const UserId kUser{"usr_test"};

std::size_t count(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// A session stream of a new session, against a real SQLite store (through
// FaultyStore, which counts reads), engine and feeds; the test reads what it
// writes from the client's end of a loopback connection.
class SessionStreamTest : public ::testing::Test {
protected:
    SessionStreamTest() {
        auto rethrow = [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        };
        net::co_spawn(io, engine.run(), rethrow);
        net::co_spawn(io, feeds.run(), rethrow);
        client.connect(acceptor.local_endpoint());
        session = test::run(io, store.create_session(kUser, store::NewSession{.title = "t"}))->id;
    }

    // Opens the stream where Conversations says it starts, and reads what
    // it writes into `received` from then on.
    void open(StreamConfig config) {
        config_ = config;
        auto from = test::run(io, conversations.session_stream_start(kUser, session, std::nullopt));
        ASSERT_TRUE(from);
        auto stream = std::make_shared<SessionStream>(
            SessionStream::Parts{.socket = acceptor.accept(),
                                 .place = http::ConnectionPlace(connections),
                                 .slot = *slots.open(kUser),
                                 .user = kUser,
                                 .session = session,
                                 .answer_log = {}},
            feeds, store, config_, streams);
        stream->start({}, std::move(*from));
        net::co_spawn(io, read(), net::detached);
    }

    // Waits (within a deadline) until what was received satisfies `done`.
    void read_until(std::function<bool()> done) {
        test::run(io, test::wait_until(std::move(done)));
    }
    bool carried_to_its_end(const std::string& id) const {
        return received.find("\"message_id\":\"" + id) != std::string::npos &&
               received.find("\"status\":\"completed\"") != std::string::npos;
    }

    // The client leaves: the stream ends and gives back what it held.
    void leave() {
        client.close();
        test::run(io, test::wait_until([&] { return streams.empty(); }));
        EXPECT_EQ(*connections, 0u);
        EXPECT_EQ(slots.open_count(kUser), 0u);
    }

    test::TempDir dir;
    net::io_context io;
    store::sqlite::SqliteStore sqlite{{.path = dir.path() / "db.sqlite3"}};
    test::FaultyStore store{sqlite};
    llm::simulated::SimulatedProvider provider{{.tokens_per_second = 0}};
    engine::Engine engine{io.get_executor(), store, provider, {}};
    engine::Feeds feeds{io.get_executor(), engine, store};
    engine::Conversations conversations{engine, store, {}};
    tcp::acceptor acceptor{io, {net::ip::make_address("127.0.0.1"), 0}};
    tcp::socket client{io};
    SessionId session;
    StreamConfig config_;
    StreamSlots slots{4};
    SessionStreams streams;
    std::shared_ptr<std::size_t> connections = std::make_shared<std::size_t>(0);
    std::string received;

private:
    net::awaitable<void> read() {
        std::array<char, 4096> buf;
        for (;;) {
            auto [ec, n] = co_await client.async_read_some(net::buffer(buf),
                                                           net::as_tuple(net::use_awaitable));
            if (ec) co_return;
            received.append(buf.data(), n);
        }
    }
};

// An idle session stream pings at every heartbeat and reads nothing from the
// store then: only a notice of a message starting in its session sends it
// looking, and then it follows that message to its end.
TEST_F(SessionStreamTest, AHeartbeatReadsNothingAndANoticeFollowsTheNewMessage) {
    open({.heartbeat = 20ms});
    read_until([&] { return count(received, ": ping\n\n") >= 1; });
    const int reads_at_open = store.next_assistant_reads;
    EXPECT_GE(reads_at_open, 1);
    read_until([&] { return count(received, ": ping\n\n") >= 6; });
    EXPECT_EQ(store.next_assistant_reads, reads_at_open) << "a heartbeat read the store";

    auto turn = test::run(io, store.begin_turn(kUser, session, store::NewTurn{.content = "q"}));
    auto g = engine.start(kUser, *turn->turn, *engine.reserve(kUser));
    read_until([&] { return carried_to_its_end(g->id().value); });
    EXPECT_GT(store.next_assistant_reads, reads_at_open);
    EXPECT_EQ(*connections, 1u);
    leave();
}

// A message stored before the stream opens and run here only after it has
// opened: a send whose turn was stored while the stream opened, or another
// node's answer. Its notice came before the stream watched the session, and
// the engine did not run it yet when the stream looked: the stream finds it
// in the store and follows it from its start to its end.
TEST_F(SessionStreamTest, AMessageStoredBeforeItOpensAndStartedAfterIsCarried) {
    auto turn = test::run(io, store.begin_turn(kUser, session, store::NewTurn{.content = "q"}));
    ASSERT_TRUE(turn && turn->turn);
    open({.heartbeat = 60s});
    const auto& id = turn->turn->assistant_message.id.value;
    read_until([&] { return received.find(id) != std::string::npos; });  // its "started" status
    auto g = engine.start(kUser, *turn->turn, *engine.reserve(kUser));
    read_until([&] { return carried_to_its_end(g->id().value); });
    leave();
}

}  // namespace
}  // namespace chatd::api
