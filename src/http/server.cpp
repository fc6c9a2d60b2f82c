#include "http/server.hpp"

#include "core/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace chatd::http {

net::awaitable<bool> write_response(beast::tcp_stream& stream, Response response,
                                    std::chrono::milliseconds timeout) {
    response.prepare_payload();
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

std::uint16_t Server::listen() {
    net::ip::tcp::endpoint endpoint(resolve_listen_address(config_.host), config_.port);
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
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) {
            // Out of descriptors and the like: the listener stays, the client retries.
            log::warn("accept: {}", ec.message());
            continue;
        }
        socket.set_option(net::ip::tcp::no_delay(true), ec);
        if (connections_ >= config_.max_connections) {
            // A clean cut-off: answering would let one slow client stall the
            // accept loop exactly when it is busiest.
            socket.close(ec);
            continue;
        }
        beast::tcp_stream stream(std::move(socket));
        ++connections_;  // serve() gives it back when the connection ends
        net::co_spawn(ex_, serve(std::move(stream)), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log::error("connection crashed: {}", ex.what());
            }
        });
    }
}

net::awaitable<void> Server::serve(beast::tcp_stream stream) {
    struct Count {
        std::size_t& n;
        ~Count() { --n; }
    } count{connections_};
    beast::flat_buffer buffer(config_.max_header_bytes);
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(config_.max_header_bytes));
        parser.body_limit(config_.max_body_bytes);
        stream.expires_after(config_.idle_timeout);
        auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser,
                                                         net::as_tuple(net::use_awaitable));
        if (!ec && !parser.is_done()) {
            stream.expires_after(config_.request_timeout);
            std::tie(ec, n) = co_await bhttp::async_read(stream, buffer, parser,
                                                         net::as_tuple(net::use_awaitable));
        }
        stream.expires_never();
        if (ec) {
            Response rejection;
            if (ec == bhttp::error::body_limit)
                rejection = handler_.reject(
                    Status::payload_too_large, "payload_too_large",
                    "request body exceeds " + std::to_string(config_.max_body_bytes) + " bytes");
            else if (ec == bhttp::error::header_limit)
                rejection = handler_.reject(Status::request_header_fields_too_large,
                                            "headers_too_large", "request headers too large");
            else if (ec == beast::error::timeout && parser.got_some())
                rejection = handler_.reject(Status::request_timeout, "request_timeout",
                                            "request not received in time");
            else if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
                     ec != net::error::eof && ec != net::error::connection_reset &&
                     ec != net::error::operation_aborted && parser.got_some())
                rejection =
                    handler_.reject(Status::bad_request, "bad_request", "malformed HTTP request");
            else
                break;  // EOF, idle timeout, reset: normal ends
            rejection.keep_alive(false);
            co_await write_response(stream, std::move(rejection), config_.request_timeout);
            break;
        }
        auto request = parser.release();
        bool keep_alive = request.keep_alive();
        if (co_await handler_.handle(std::move(request), stream) == After::close || !keep_alive)
            break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    stream.close();
}

}  // namespace chatd::http
