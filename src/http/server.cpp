#include "http/server.hpp"

#include "core/log.hpp"
#include "http/framing.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <filesystem>

namespace chatd::http {

net::awaitable<bool> write_response(beast::tcp_stream& stream, Response response,
                                    std::chrono::milliseconds timeout) {
    stream.expires_after(timeout);
    auto [ec, n] = co_await bhttp::async_write(stream, response, net::as_tuple(net::use_awaitable));
    stream.expires_never();
    co_return !ec;
}

Server::Server(net::any_io_executor ex, ServerConfig config, Handler& handler)
    : ex_(ex), config_(std::move(config)), handler_(handler), acceptor_(ex) {}

net::ip::address resolve_listen_address(const std::string& host) {
    boost::system::error_code ec;
    auto literal = net::ip::make_address(host, ec);
    if (!ec) return literal;
    net::io_context io;
    net::ip::tcp::resolver resolver(io);
    auto results = resolver.resolve(host, "", ec);
    if (ec || results.empty())
        throw std::runtime_error("--host " + host + " does not resolve: " + ec.message());
    // Prefer IPv4, which every client of a name such as localhost tries.
    for (const auto& r : results)
        if (r.endpoint().address().is_v4()) return r.endpoint().address();
    return results.begin()->endpoint().address();
}

void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);  // on failure the soft limit stays; listen() fits it
}

namespace {

std::size_t open_descriptors() {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    return n;
}

bool out_of_descriptors(const boost::system::error_code& ec) {
    return ec == net::error::no_descriptors ||
           ec == boost::system::errc::too_many_files_open_in_system ||
           ec == net::error::no_buffer_space || ec == net::error::no_memory;
}

}  // namespace

std::uint16_t Server::listen() {
    // Every connection takes a descriptor; keep some for the store, upstream
    // requests and files, so a flood of clients cannot starve generations.
    bool automatic = config_.max_connections == 0;
    if (automatic) config_.max_connections = kDefaultMaxConnections;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        auto soft = static_cast<std::size_t>(limit.rlim_cur);
        auto in_use = open_descriptors() + 1;  // + the listening socket
        auto reserve = std::clamp<std::size_t>(soft / 16, 16, 1024);
        auto budget = soft > in_use + reserve ? soft - in_use - reserve : 1;
        if (config_.max_connections > budget) {
            auto level = automatic ? spdlog::level::info : spdlog::level::warn;
            log::log(level,
                     "--max-connections {} (not {}): the descriptor limit is {} (ulimit -n), {} "
                     "are in use and {} are kept for the store and upstreams",
                     budget, config_.max_connections, soft, in_use, reserve);
            config_.max_connections = budget;
        }
    }
    net::ip::tcp::endpoint endpoint(
        config_.address ? *config_.address : resolve_listen_address(config_.host), config_.port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
    return acceptor_.local_endpoint().port();
}

void Server::stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
}

net::awaitable<void> Server::run() {
    net::steady_timer pause(ex_);
    std::size_t refused = 0;  // accepts failed in this out-of-descriptors episode
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec && out_of_descriptors(ec)) {
            // The pending connection stays queued and the next accept would
            // fail at once: pause (10 ms doubling to 1 s) instead of spinning,
            // and say so once per episode.
            if (refused++ == 0)
                log::warn("accept: {}; pausing accepts until descriptors are freed", ec.message());
            pause.expires_after(std::chrono::milliseconds(10) *
                                (1 << std::min<std::size_t>(refused - 1, 7)));
            co_await pause.async_wait(net::as_tuple(net::use_awaitable));
            continue;
        }
        if (ec) {
            log::debug("accept: {}", ec.message());  // the client gave up; others go on
            continue;
        }
        if (refused > 0) {
            log::info("accepting again after {} refused accepts", refused);
            refused = 0;
        }
        socket.set_option(net::ip::tcp::no_delay(true), ec);
        if (*connections_ >= config_.max_connections) {
            // A clean cut-off: answering would let one slow client stall the
            // accept loop exactly when it is busiest.
            socket.close(ec);
            continue;
        }
        Connection connection{beast::tcp_stream(std::move(socket)), ConnectionPlace(connections_)};
        net::co_spawn(ex_, serve(std::move(connection)), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log::error("connection crashed: {}", ex.what());
            }
        });
    }
}

net::awaitable<void> Server::serve(Connection connection) {
    auto& stream = connection.stream;
    beast::flat_buffer buffer(config_.max_header_bytes);
    for (;;) {
        auto request = co_await read_request(stream, buffer);
        if (!request) break;
        bool keep_alive = request->keep_alive();
        // An answer may last for hours (an event stream): the read buffer
        // is not held through it unless a pipelined request waits in it.
        if (buffer.size() == 0) buffer.shrink_to_fit();
        auto after = co_await handler_.handle(std::move(*request), connection);
        if (after == After::taken) co_return;  // `connection` is moved-from
        if (after == After::close || !keep_alive) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    stream.close();
}

net::awaitable<std::optional<Request>> Server::read_request(beast::tcp_stream& stream,
                                                            beast::flat_buffer& buffer) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config_.max_header_bytes));
    parser.body_limit(config_.max_body_bytes);
    stream.expires_after(config_.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser,
                                                     net::as_tuple(net::use_awaitable));
    std::optional<Response> rejection;
    if (!ec) rejection = check_head(parser.get());
    if (!ec && !rejection && !parser.is_done()) {
        if (expectation_of(parser.get()) == Expectation::continue_100) {
            // The client waits for this before it sends the body.
            stream.expires_after(config_.request_timeout);
            static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            std::tie(ec, n) = co_await net::async_write(stream, net::buffer(kContinue),
                                                        net::as_tuple(net::use_awaitable));
        }
        if (!ec) {
            stream.expires_after(config_.request_timeout);
            std::tie(ec, n) = co_await bhttp::async_read(stream, buffer, parser,
                                                         net::as_tuple(net::use_awaitable));
        }
    }
    stream.expires_never();
    if (ec) {
        rejection = rejection_for(ec, parser.got_some());
        if (!rejection) co_return std::nullopt;  // EOF, idle timeout, reset: normal ends
    }
    if (rejection) {
        rejection->keep_alive(false);
        if (co_await write_response(stream, std::move(*rejection), config_.request_timeout))
            co_await close_gracefully(stream);
        co_return std::nullopt;
    }
    co_return parser.release();
}

std::optional<Response> Server::check_head(const bhttp::request_header<>& head) {
    switch (check_framing(head, head.version())) {
        case Framing::bad:
            return handler_.reject(Status::bad_request, "bad_request",
                                   "ambiguous message framing (Transfer-Encoding, Content-Length)");
        case Framing::not_implemented:
            return handler_.reject(Status::not_implemented, "not_implemented",
                                   "only the chunked transfer coding is supported");
        case Framing::ok:
            break;
    }
    if (expectation_of(head) == Expectation::unsupported)
        return handler_.reject(Status::expectation_failed, "expectation_failed",
                               "only `Expect: 100-continue` is supported");
    return std::nullopt;
}

std::optional<Response> Server::rejection_for(boost::system::error_code ec, bool got_some) {
    if (ec == bhttp::error::body_limit)
        return handler_.reject(
            Status::payload_too_large, "payload_too_large",
            "request body exceeds " + std::to_string(config_.max_body_bytes) + " bytes");
    if (ec == bhttp::error::header_limit)
        return handler_.reject(Status::request_header_fields_too_large, "headers_too_large",
                               "request headers too large");
    if (ec == beast::error::timeout && got_some)
        return handler_.reject(Status::request_timeout, "request_timeout",
                               "request not received in time");
    if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout && ec != net::error::eof &&
        ec != net::error::connection_reset && ec != net::error::operation_aborted && got_some)
        return handler_.reject(Status::bad_request, "bad_request", "malformed HTTP request");
    return std::nullopt;
}

net::awaitable<void> Server::close_gracefully(beast::tcp_stream& stream) {
    // Closing with unread bytes in the receive buffer makes the kernel send a
    // reset, which can destroy the answer before the client reads it. So:
    // FIN first, then read and drop what the client still sends, bounded in
    // time and bytes.
    boost::system::error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    stream.expires_after(config_.linger_timeout);
    std::array<char, 16 * 1024> scratch;
    std::size_t drained = 0;
    while (drained < config_.linger_bytes) {
        auto [ec, n] = co_await stream.async_read_some(net::buffer(scratch),
                                                       net::as_tuple(net::use_awaitable));
        if (ec) break;
        drained += n;
    }
    stream.close();
}

}  // namespace chatd::http
