#pragma once
// Server-sent events: pure framing (unit-tested) and SseWriter, which owns the
// I/O of one event stream on one connection. A write goes straight to the
// socket; what the kernel cannot take at once waits within a deadline: a
// client that stops reading fills its send buffer, the write times out, and it
// is cut off (it may resume with Last-Event-ID).
//
// It writes to the bare socket, not Beast's tcp_stream: a stream lives for
// hours and writes mostly what fits the send buffer, so it arms a timer only
// for a write that waits, and a parked session stream holds no timers at all
// (a tcp_stream keeps three, about 400 bytes, for as long as it lives).
#include "http/types.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace chatd::http {

// `event: …\nid: …\ndata: …\n\n`; multi-line data becomes several data lines.
// Empty event or id are left out.
std::string format_sse_event(std::string_view event, std::string_view id, std::string_view data);
std::string format_sse_comment(std::string_view text);
std::string format_sse_retry(std::chrono::milliseconds retry);

struct SseConfig {
    std::chrono::milliseconds write_timeout{10000};
    int send_buffer_bytes = 256 * 1024;  // kernel send buffer per SSE connection
};

class SseWriter {
public:
    SseWriter(net::ip::tcp::socket& socket, SseConfig config) : socket_(socket), config_(config) {}

    // Writes the response head (200, text/event-stream, no-cache, no proxy
    // buffering, plus `extra_headers`: `Name: value\r\n` lines) and the
    // `retry:` line. `chunked`: the body goes in chunks and is complete only
    // after finish(), so a client can tell a stream that was cut off (write
    // deadline, shutdown) from one that ended, and the connection may carry
    // the next request after it; otherwise it ends at the close (and says
    // `Connection: close`).
    net::awaitable<bool> open(std::chrono::milliseconds retry, std::string_view extra_headers = {},
                              bool chunked = false);
    // False when the client is gone or too slow; the stream must end then.
    // What write_now() left goes first.
    net::awaitable<bool> write(std::string_view bytes);
    // Writes `bytes` without waiting, as far as the send buffer takes them:
    // all, part (the rest is kept, and must go out with flush() before
    // anything else is written), or none (a full buffer or a failed
    // connection: write() then waits for the one or tells the other).
    enum class Now { written, partly, not_written };
    Now write_now(std::string_view bytes);
    bool has_rest() const { return !rest_.empty(); }
    // Writes what write_now() left, within the write deadline.
    net::awaitable<bool> flush();
    // The body is complete (the last chunk, when chunked).
    net::awaitable<bool> finish();
    // Body bytes written (events, not framing).
    std::uint64_t bytes_written() const { return bytes_; }

private:
    // Writes `a`, `b` and `c` (one write) within the write deadline.
    net::awaitable<bool> send(net::const_buffer a, net::const_buffer b = {},
                              net::const_buffer c = {});

    // A chunk's size line for `bytes` (empty when not chunked), in `buffer`.
    std::string_view size_line(std::string_view bytes, char (&buffer)[32]) const;

    net::ip::tcp::socket& socket_;
    SseConfig config_;
    std::string rest_;  // of a write_now() that the send buffer took in part
    bool chunked_ = false;
    std::uint64_t bytes_ = 0;
};

}  // namespace chatd::http
