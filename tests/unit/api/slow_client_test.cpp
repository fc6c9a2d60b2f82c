// A client that stops reading its SSE stream is cut off once its send buffer
// is full and the write deadline passes; the generation goes on (I3, I7).
#include "api/event_stream.hpp"

#include "llm/simulated/simulated_provider.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace chatd::api {
namespace {

using tcp = net::ip::tcp;
const UserId kUser{"usr_test"};

TEST(SlowClient, IsCutOffWhileItsGenerationCompletes) {
    test::TempDir dir;
    net::io_context io;
    store::sqlite::SqliteStore store({.path = dir.path() / "db.sqlite3"});
    // Enough text to fill both sockets' buffers many times over.
    llm::simulated::SimulatedProvider provider(
        {.tokens_per_second = 0, .min_tokens = 40000, .max_tokens = 40000});
    engine::Engine engine(io.get_executor(), store, provider, {});
    net::co_spawn(io, engine.run(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });

    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    tcp::socket client(io);
    client.open(tcp::v4());
    client.set_option(net::socket_base::receive_buffer_size(4096));
    client.connect(acceptor.local_endpoint());
    http::beast::tcp_stream server(acceptor.accept());

    auto session = test::run(io, store.create_session(kUser, store::NewSession{.title = "t"}));
    auto outcome =
        test::run(io, store.begin_turn(kUser, session->id, store::NewTurn{.content = "q"}));
    auto g = engine.start(kUser, *outcome->turn);

    StreamConfig config{
        .sse = {.write_timeout = std::chrono::milliseconds(200), .send_buffer_bytes = 4096}};
    EventStream events(server, engine, store, kUser, config);
    auto delivered = test::run(io, [](EventStream& e, MessageId id) -> net::awaitable<bool> {
        if (!co_await e.open()) co_return false;
        co_return co_await e.follow(std::move(id), 0);
    }(events, g->id()));
    EXPECT_FALSE(delivered) << "the stalled client was not cut off";

    test::run(io, test::wait_until([&] { return g->ended(); }, std::chrono::seconds(60)));
    auto stored = test::run(io, store.get_message(kUser, g->id()));
    EXPECT_EQ(stored->status, store::MessageStatus::completed);
    EXPECT_GT(stored->content.size(), 100000u);
    EXPECT_EQ(stored->content, g->committed());
}

}  // namespace
}  // namespace chatd::api
