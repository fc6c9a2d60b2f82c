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
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

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
    tcp::socket server(acceptor.accept());

    auto session = test::run(io, store.create_session(kUser, store::NewSession{.title = "t"}));
    auto outcome =
        test::run(io, store.begin_turn(kUser, session->id, store::NewTurn{.content = "q"}));
    auto g = engine.start(kUser, *outcome->turn, *engine.reserve(kUser));

    StreamConfig config{
        .sse = {.write_timeout = std::chrono::milliseconds(200), .send_buffer_bytes = 4096}};
    engine::Feeds feeds(io.get_executor(), engine, store);
    EventStream events(server, feeds, store, kUser, config);
    auto delivered = test::run(io, [](EventStream& e, MessageId id) -> net::awaitable<bool> {
        if (!co_await e.open()) co_return false;
        engine::Cursor from{std::move(id)};  // named: GCC 12 and co_await
        co_return co_await e.follow(from);
    }(events, g->id()));
    EXPECT_FALSE(delivered) << "the stalled client was not cut off";

    test::run(io, test::wait_until([&] { return g->ended(); }, std::chrono::seconds(60)));
    auto stored = test::run(io, store.get_message(kUser, g->id()));
    EXPECT_EQ(stored->status, store::MessageStatus::completed);
    EXPECT_GT(stored->content.size(), 100000u);
    EXPECT_EQ(stored->content, g->committed());
}

// A client resuming far behind gets the catch-up in bounded pieces, each with
// its own write deadline: a reader that keeps reading, slower than the whole
// rest could be written within one deadline, gets every byte.
TEST(SlowClient, ASteadyReaderFarBehindGetsTheWholeAnswerInPieces) {
    test::TempDir dir;
    net::io_context io;
    store::sqlite::SqliteStore store({.path = dir.path() / "db.sqlite3"});
    llm::simulated::SimulatedProvider provider({});
    engine::Engine engine(io.get_executor(), store, provider, {});

    auto session = test::run(io, store.create_session(kUser, store::NewSession{.title = "t"}));
    auto turn = test::run(io, store.begin_turn(kUser, session->id, store::NewTurn{.content = "q"}));
    auto id = turn->turn->assistant_message.id;
    std::string answer;
    for (int i = 0; answer.size() < 4 * 1024 * 1024; ++i)
        answer += "word" + std::to_string(i) + " ";
    store::Batch batch{
        .writes = {store::MessageWrite{.id = id,
                                       .offset = 0,
                                       .text = answer,
                                       .terminal = store::Terminal{.finish_reason = "stop"},
                                       .full_content = answer}},
        .at = now_millis()};
    ASSERT_TRUE(test::run(io, store.commit(std::move(batch))));

    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    tcp::socket client(io);
    client.open(tcp::v4());
    client.set_option(net::socket_base::receive_buffer_size(16 * 1024));
    client.connect(acceptor.local_endpoint());
    tcp::socket server(acceptor.accept());

    // 4 MiB at 16 KiB per 5 ms takes over a second: far beyond one write
    // deadline, far within one per 64 KiB piece.
    StreamConfig config{
        .sse = {.write_timeout = std::chrono::milliseconds(1000), .send_buffer_bytes = 16 * 1024}};
    engine::Feeds feeds(io.get_executor(), engine, store);
    EventStream events(server, feeds, store, kUser, config);
    std::string received;
    bool delivered = false;
    net::co_spawn(
        io,
        [](EventStream& e, MessageId id, bool& ok, tcp::socket& s) -> net::awaitable<void> {
            engine::Cursor from{std::move(id)};  // named: GCC 12 and co_await
            ok = co_await e.open() && co_await e.follow(from);
            s.close();
        }(events, id, delivered, server),
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    test::run(io, [](tcp::socket& c, std::string& out) -> net::awaitable<void> {
        std::array<char, 16 * 1024> buf;
        net::steady_timer pace(co_await net::this_coro::executor);
        for (;;) {
            auto [ec, n] =
                co_await c.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
            if (ec) co_return;
            out.append(buf.data(), n);
            pace.expires_after(std::chrono::milliseconds(5));
            co_await pace.async_wait(net::as_tuple(net::use_awaitable));
        }
    }(client, received));
    EXPECT_TRUE(delivered) << "cut off after " << received.size() << " bytes";
    // Every byte of the answer arrived, and the terminal status after it.
    std::string text;
    for (std::size_t at = 0; (at = received.find("\"text\":\"", at)) != std::string::npos;) {
        at += 8;
        text += received.substr(at, received.find('"', at) - at);
    }
    EXPECT_EQ(text, answer);
    EXPECT_NE(received.find("\"status\":\"completed\""), std::string::npos);
}

// A stream caught up with a live answer writes each commit's text from the
// commit's notify, as far as the send buffer takes it; what it cannot take
// goes out first when the stream's coroutine wakes. A reader slower than the
// generation, with small buffers on both sides, still gets every byte in
// order, then the end.
TEST(SlowClient, AReaderOfALiveAnswerGetsEveryTokenInOrderThroughFullBuffers) {
    test::TempDir dir;
    net::io_context io;
    store::sqlite::SqliteStore store({.path = dir.path() / "db.sqlite3"});
    llm::simulated::SimulatedProvider provider(
        {.tokens_per_second = 0, .min_tokens = 40000, .max_tokens = 40000});
    engine::Engine engine(io.get_executor(), store, provider, {});
    net::co_spawn(io, engine.run(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });

    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    tcp::socket client(io);
    client.open(tcp::v4());
    client.set_option(net::socket_base::receive_buffer_size(2048));
    client.connect(acceptor.local_endpoint());
    tcp::socket server(acceptor.accept());

    auto session = test::run(io, store.create_session(kUser, store::NewSession{.title = "t"}));
    auto outcome =
        test::run(io, store.begin_turn(kUser, session->id, store::NewTurn{.content = "q"}));
    auto g = engine.start(kUser, *outcome->turn, *engine.reserve(kUser));

    StreamConfig config{
        .sse = {.write_timeout = std::chrono::seconds(30), .send_buffer_bytes = 2048}};
    engine::Feeds feeds(io.get_executor(), engine, store);
    EventStream events(server, feeds, store, kUser, config);
    bool delivered = false;
    net::co_spawn(
        io,
        [](EventStream& e, MessageId id, bool& ok, tcp::socket& s) -> net::awaitable<void> {
            engine::Cursor from{std::move(id)};  // named: GCC 12 and co_await
            ok = co_await e.open() && co_await e.follow(from);
            s.close();
        }(events, g->id(), delivered, server),
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    std::string received;
    test::run(io, [](tcp::socket& c, std::string& out) -> net::awaitable<void> {
        std::array<char, 1024> buf;
        net::steady_timer pace(co_await net::this_coro::executor);
        for (;;) {
            auto [ec, n] =
                co_await c.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
            if (ec) co_return;
            out.append(buf.data(), n);
            pace.expires_after(std::chrono::milliseconds(1));
            co_await pace.async_wait(net::as_tuple(net::use_awaitable));
        }
    }(client, received));
    EXPECT_TRUE(delivered) << "cut off after " << received.size() << " bytes";
    ASSERT_TRUE(g->ended());
    // The deltas' text, unescaped (the simulated text's only escapes are
    // its paragraphs' newlines).
    std::string text;
    for (std::size_t at = 0; (at = received.find("\"text\":\"", at)) != std::string::npos;) {
        at += 8;
        auto end = received.find('"', at);
        for (auto piece = received.substr(at, end - at); !piece.empty();) {
            auto escape = piece.find("\\n");
            text += piece.substr(0, escape);
            if (escape == std::string::npos) break;
            text += '\n';
            piece.erase(0, escape + 2);
        }
    }
    EXPECT_TRUE(text == g->committed())
        << "received " << text.size() << " bytes of text, committed " << g->committed().size();
    EXPECT_NE(received.find("\"status\":\"completed\""), std::string::npos);
}

}  // namespace
}  // namespace chatd::api
