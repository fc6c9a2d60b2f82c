#include "http/sse.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

#include <array>
#include <cstdio>
#include <memory>

namespace chatd::http {

std::string format_sse_event(std::string_view event, std::string_view id, std::string_view data) {
    std::string out;
    out.reserve(event.size() + id.size() + data.size() + 32);
    if (!event.empty()) out.append("event: ").append(event).append("\n");
    if (!id.empty()) out.append("id: ").append(id).append("\n");
    std::size_t start = 0;
    for (;;) {
        auto end = data.find('\n', start);
        auto line = data.substr(start, end == std::string_view::npos ? end : end - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        out.append("data: ").append(line).append("\n");
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    out.append("\n");
    return out;
}

std::string format_sse_comment(std::string_view text) {
    return ": " + std::string(text) + "\n\n";
}

std::string format_sse_retry(std::chrono::milliseconds retry) {
    return "retry: " + std::to_string(retry.count()) + "\n\n";
}

net::awaitable<bool> SseWriter::open(std::chrono::milliseconds retry,
                                     std::string_view extra_headers, bool chunked) {
    boost::system::error_code ignored;
    socket_.set_option(net::socket_base::send_buffer_size(config_.send_buffer_bytes), ignored);
    std::string head =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\n";
    // A chunked body says itself where it ends: a browser or Node's fetch
    // reports one cut off before its last chunk as an error, but only when
    // the answer does not say `Connection: close` (Node's fetch then takes
    // the close as the end). Its connection stays open after a complete body;
    // an unchunked one ends with its connection.
    if (chunked)
        head += "Transfer-Encoding: chunked\r\n";
    else
        head += "Connection: close\r\n";
    head.append(extra_headers).append("\r\n");
    if (!co_await send(net::buffer(head))) co_return false;
    chunked_ = chunked;
    co_return co_await write(format_sse_retry(retry));
}

net::awaitable<bool> SseWriter::send(net::const_buffer a, net::const_buffer b,
                                     net::const_buffer c) {
    std::array<net::const_buffer, 3> buffers{a, b, c};
    // An event almost always fits in the socket's send buffer: written now,
    // in one non-blocking writev, with no timer armed and no suspension.
    // Only what the kernel does not take waits for the client, within the
    // write deadline.
    boost::system::error_code ec;
    if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
    const auto n = ec ? 0 : socket_.write_some(buffers, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) ec = {};
    if (ec) co_return false;
    beast::buffers_suffix<std::array<net::const_buffer, 3>> rest(buffers);
    rest.consume(n);
    if (beast::buffer_bytes(rest) == 0) co_return true;
    // The deadline cancels the write; `waiting` tells a deadline that fired
    // as the write completed that the socket is no longer its to touch.
    auto waiting = std::make_shared<bool>(true);
    net::steady_timer deadline(socket_.get_executor(), config_.write_timeout);
    deadline.async_wait([&socket = socket_, waiting](boost::system::error_code ec) {
        if (!ec && *waiting) socket.cancel(ec);
    });
    auto [wec, wn] = co_await net::async_write(socket_, rest, net::as_tuple(net::use_awaitable));
    *waiting = false;
    co_return !wec;
}

std::string_view SseWriter::size_line(std::string_view bytes, char (&buffer)[32]) const {
    if (!chunked_) return {};
    auto n = std::snprintf(buffer, sizeof buffer, "%zx\r\n", bytes.size());
    return {buffer, static_cast<std::size_t>(n)};
}

net::awaitable<bool> SseWriter::write(std::string_view bytes) {
    if (bytes.empty()) co_return true;  // an empty chunk would end the body
    if (!rest_.empty()) {
        // Not `if (!co_await ...)` (GCC 12 misplaces such a frame; see
        // api/event_stream.cpp).
        bool flushed = co_await flush();
        if (!flushed) co_return false;
    }
    char size[32];
    const auto head = size_line(bytes, size);
    bool sent = co_await send(net::buffer(head.data(), head.size()),
                              net::buffer(bytes.data(), bytes.size()),
                              net::buffer("\r\n", chunked_ ? 2u : 0u));
    if (sent) bytes_ += bytes.size();
    co_return sent;
}

SseWriter::Now SseWriter::write_now(std::string_view bytes) {
    if (bytes.empty()) return Now::written;
    if (!rest_.empty()) return Now::not_written;  // the rest goes first
    char size[32];
    const auto head = size_line(bytes, size);
    std::array<net::const_buffer, 3> buffers{net::buffer(head.data(), head.size()),
                                             net::buffer(bytes.data(), bytes.size()),
                                             net::buffer("\r\n", chunked_ ? 2u : 0u)};
    boost::system::error_code ec;
    if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
    const auto n = ec ? 0 : socket_.write_some(buffers, ec);
    if (ec || n == 0) return Now::not_written;
    bytes_ += bytes.size();
    beast::buffers_suffix<std::array<net::const_buffer, 3>> rest(buffers);
    rest.consume(n);
    if (beast::buffer_bytes(rest) == 0) return Now::written;
    rest_.resize(beast::buffer_bytes(rest));
    net::buffer_copy(net::buffer(rest_), rest);
    return Now::partly;
}

net::awaitable<bool> SseWriter::flush() {
    if (rest_.empty()) co_return true;
    const auto rest = std::move(rest_);
    rest_.clear();
    co_return co_await send(net::buffer(rest));
}

net::awaitable<bool> SseWriter::finish() {
    if (!rest_.empty()) {
        bool flushed = co_await flush();
        if (!flushed) co_return false;
    }
    if (!chunked_) co_return true;
    chunked_ = false;
    co_return co_await send(net::buffer(std::string_view("0\r\n\r\n")));  // the last chunk
}

}  // namespace chatd::http
