#pragma once
// The HTTP/1.1 server: an accept loop and one coroutine per connection, on the
// I/O executor. It knows nothing about chat: it reads a request within its
// limits and deadlines and hands it to the Handler, which writes the response
// (or takes the connection over for a stream).
#include "http/types.hpp"

#include <boost/beast/core/flat_buffer.hpp>

#include <boost/asio/ip/address.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace chatd::http {

constexpr std::size_t kDefaultMaxConnections = 20000;

struct ServerConfig {
    std::string host = "127.0.0.1";
    // `host` resolved (start-up does it once); unset: listen() resolves it.
    std::optional<net::ip::address> address;
    std::uint16_t port = 8080;
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_body_bytes = 1024 * 1024;
    // 0: kDefaultMaxConnections, or fewer to fit the descriptor limit.
    std::size_t max_connections = 0;
    std::chrono::milliseconds idle_timeout{60000};     // between requests
    std::chrono::milliseconds request_timeout{30000};  // reading one request
    // After a rejection, how long and how much of the rest of a request is
    // read and dropped so the answer is not destroyed by a reset.
    std::chrono::milliseconds linger_timeout{2000};
    std::size_t linger_bytes = 8 * 1024 * 1024;
};

// A connection's place among the server's open connections
// (--max-connections): held while this lives. Movable, so that what answers
// on a connection holds it for as long as the answer lasts.
class ConnectionPlace {
public:
    explicit ConnectionPlace(std::shared_ptr<std::size_t> count) : count_(std::move(count)) {
        ++*count_;
    }
    ConnectionPlace(ConnectionPlace&&) = default;
    ConnectionPlace& operator=(ConnectionPlace&&) = delete;
    ~ConnectionPlace() {
        if (count_) --*count_;
    }

private:
    std::shared_ptr<std::size_t> count_;  // moved-from: empty
};

// An accepted connection: its stream, and its place. A handler may take it
// (After::taken), whole or as its bare socket (stream.release_socket()) and
// place, and answer on it alone, still counted.
struct Connection {
    beast::tcp_stream stream;
    ConnectionPlace place;
};

class Handler {
public:
    virtual ~Handler() = default;
    // Answers `request` on `connection`; may take the connection (see After).
    virtual net::awaitable<After> handle(Request request, Connection& connection) = 0;
    // A response for a request the server rejected before any handler ran.
    virtual Response reject(Status status, std::string_view code, std::string_view message) = 0;
};

// The address `host` (a literal or a name such as localhost) resolves to:
// blocking, for start-up only. Throws std::runtime_error when it resolves to
// nothing.
net::ip::address resolve_listen_address(const std::string& host);

// Raises the soft RLIMIT_NOFILE to the hard limit (start-up).
void raise_descriptor_limit();

// Writes `response` (its payload prepared: Content-Length set) with a
// deadline; false when the client is gone.
net::awaitable<bool> write_response(beast::tcp_stream& stream, Response response,
                                    std::chrono::milliseconds timeout);

class Server {
public:
    Server(net::any_io_executor ex, ServerConfig config, Handler& handler);

    // Binds and listens (throws on failure: start-up). Returns the bound port.
    // Lowers max_connections to fit the descriptor limit, saying so.
    std::uint16_t listen();
    // Accepts until stop().
    net::awaitable<void> run();
    void stop();

private:
    net::awaitable<void> serve(Connection connection);
    // The next request on `stream`, or nothing when the connection ends
    // (closed, idle, or a rejection answered). Its own coroutine, so that the
    // parser's frame is gone while a handler (a stream, for hours) runs.
    net::awaitable<std::optional<Request>> read_request(beast::tcp_stream& stream,
                                                        beast::flat_buffer& buffer);
    // A rejection for a head whose framing or expectation chatd refuses.
    std::optional<Response> check_head(const bhttp::request_header<>& head);
    // A rejection for a read error, or nothing when the connection just ended.
    std::optional<Response> rejection_for(boost::system::error_code ec, bool got_some);
    net::awaitable<void> close_gracefully(beast::tcp_stream& stream);

    net::any_io_executor ex_;
    ServerConfig config_;
    Handler& handler_;
    net::ip::tcp::acceptor acceptor_;
    // Open connections. Shared with each connection's coroutine: one still
    // suspended when the io_context goes (after a stop) outlives this object.
    std::shared_ptr<std::size_t> connections_ = std::make_shared<std::size_t>(0);
};

}  // namespace chatd::http
