#include "http/sse.hpp"

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string>

namespace chatd::http {
namespace {

TEST(SseFormat, WritesEventIdAndData) {
    EXPECT_EQ(format_sse_event("delta", "msg_x.3", R"({"text":"abc"})"),
              "event: delta\nid: msg_x.3\ndata: {\"text\":\"abc\"}\n\n");
}

TEST(SseFormat, SplitsMultiLineDataIntoDataLines) {
    EXPECT_EQ(format_sse_event("", "", "a\nb\r\nc"), "data: a\ndata: b\ndata: c\n\n");
}

TEST(SseFormat, LeavesOutEmptyEventAndId) {
    EXPECT_EQ(format_sse_event("", "", "x"), "data: x\n\n");
}

TEST(SseFormat, WritesCommentsAndRetry) {
    EXPECT_EQ(format_sse_comment("ping"), ": ping\n\n");
    EXPECT_EQ(format_sse_retry(std::chrono::milliseconds(1000)), "retry: 1000\n\n");
}

// write_now() writes what the send buffer takes without waiting and keeps
// the rest, which goes out before anything written after it: a stream that
// writes tokens from a commit's notify loses and reorders nothing when its
// client reads slowly.
TEST(SseWriter, WriteNowKeepsWhatTheBufferCannotTakeAndItGoesFirst) {
    using tcp = net::ip::tcp;
    net::io_context io;
    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    tcp::socket client(io);
    client.open(tcp::v4());
    client.set_option(net::socket_base::receive_buffer_size(4096));
    client.connect(acceptor.local_endpoint());
    tcp::socket server(acceptor.accept());
    server.set_option(net::socket_base::send_buffer_size(4096));
    SseWriter writer(server, {.write_timeout = std::chrono::seconds(30)});

    // Far more than both sockets' buffers hold.
    std::string expected = "data: " + std::string(1024 * 1024, 'x') + "\n\n";
    ASSERT_EQ(writer.write_now(expected), SseWriter::Now::partly);
    EXPECT_TRUE(writer.has_rest());
    EXPECT_EQ(writer.write_now("data: later\n\n"), SseWriter::Now::not_written)
        << "written before the rest of the one before";

    bool wrote = false;
    net::co_spawn(
        io,
        [](SseWriter& w, tcp::socket& s, bool& ok) -> net::awaitable<void> {
            ok = co_await w.write("data: tail\n\n");  // the rest first
            s.shutdown(tcp::socket::shutdown_send);
        }(writer, server, wrote),
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    std::string received;
    net::co_spawn(
        io,
        [](tcp::socket& c, std::string& out) -> net::awaitable<void> {
            co_await net::async_read(c, net::dynamic_buffer(out),
                                     net::as_tuple(net::use_awaitable));  // to the end
        }(client, received),
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    EXPECT_TRUE(wrote);
    EXPECT_FALSE(writer.has_rest());
    EXPECT_EQ(received, expected + "data: tail\n\n");
}

}  // namespace
}  // namespace chatd::http
