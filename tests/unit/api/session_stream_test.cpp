// A parked session stream (api/session_stream.hpp) against a real SQLite
// store, engine and feeds, on a loopback socket.
#include "api/session_stream.hpp"

#include "llm/simulated/simulated_provider.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/faulty_store.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
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

// An idle session stream pings at every heartbeat and reads nothing from the
// store then: only a notice of a message starting in its session sends it
// looking, and then it follows that message to its end.
TEST(SessionStream, AHeartbeatReadsNothingAndANoticeFollowsTheNewMessage) {
    test::TempDir dir;
    net::io_context io;
    store::sqlite::SqliteStore sqlite({.path = dir.path() / "db.sqlite3"});
    test::FaultyStore store(sqlite);
    llm::simulated::SimulatedProvider provider({.tokens_per_second = 0});
    engine::Engine engine(io.get_executor(), store, provider, {});
    engine::Feeds feeds(io.get_executor(), engine, store);
    auto rethrow = [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    };
    net::co_spawn(io, engine.run(), rethrow);
    net::co_spawn(io, feeds.run(), rethrow);

    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    tcp::socket client(io);
    client.connect(acceptor.local_endpoint());
    auto session = test::run(io, store.create_session(kUser, store::NewSession{.title = "t"}));

    StreamConfig config{.heartbeat = 20ms};
    StreamSlots slots(4);
    SessionStreams open;
    auto connections = std::make_shared<std::size_t>(0);
    auto stream = std::make_shared<SessionStream>(
        SessionStream::Parts{.socket = acceptor.accept(),
                             .place = http::ConnectionPlace(connections),
                             .slot = *slots.open(kUser),
                             .user = kUser,
                             .session = session->id,
                             .answer_log = {}},
        feeds, store, config, open);
    stream->start({}, std::nullopt);
    stream.reset();  // `open` holds it

    std::string received;
    auto read_until = [&](std::function<bool()> done) {
        test::run(io,
                  [](tcp::socket& c, std::string& out,
                     std::function<bool()> done) -> net::awaitable<void> {
                      std::array<char, 4096> buf;
                      while (!done()) {
                          auto [ec, n] = co_await c.async_read_some(
                              net::buffer(buf), net::as_tuple(net::use_awaitable));
                          if (ec) throw std::runtime_error("the stream ended: " + ec.message());
                          out.append(buf.data(), n);
                      }
                  }(client, received, std::move(done)));
    };
    read_until([&] { return count(received, ": ping\n\n") >= 1; });
    const int reads_at_open = store.next_assistant_reads;
    EXPECT_GE(reads_at_open, 1);
    read_until([&] { return count(received, ": ping\n\n") >= 6; });
    EXPECT_EQ(store.next_assistant_reads, reads_at_open) << "a heartbeat read the store";

    auto turn = test::run(io, store.begin_turn(kUser, session->id, store::NewTurn{.content = "q"}));
    auto g = engine.start(kUser, *turn->turn, *engine.reserve(kUser));
    const auto id = g->id().value;
    read_until([&] {
        return received.find("\"message_id\":\"" + id) != std::string::npos &&
               received.find("\"status\":\"completed\"") != std::string::npos;
    });
    EXPECT_GT(store.next_assistant_reads, reads_at_open);
    EXPECT_EQ(*connections, 1u);

    client.close();
    test::run(io, test::wait_until([&] { return open.empty(); }));
    EXPECT_EQ(*connections, 0u);
    EXPECT_EQ(slots.open_count(kUser), 0u);
}

}  // namespace
}  // namespace chatd::api
