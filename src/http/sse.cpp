#include "http/sse.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

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
                                     std::string_view extra_headers) {
    boost::system::error_code ignored;
    stream_.socket().set_option(net::socket_base::send_buffer_size(config_.send_buffer_bytes),
                                ignored);
    std::string head =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\n"
        "Connection: close\r\n";
    head.append(extra_headers).append("\r\n");
    head += format_sse_retry(retry);
    co_return co_await write(head);
}

net::awaitable<bool> SseWriter::write(std::string_view bytes) {
    stream_.expires_after(config_.write_timeout);
    auto [ec, n] = co_await net::async_write(stream_, net::buffer(bytes.data(), bytes.size()),
                                             net::as_tuple(net::use_awaitable));
    stream_.expires_never();
    co_return !ec;
}

}  // namespace chatd::http
