#pragma once
// One API request being answered: what a handler reads (the request, its path
// parameters and query, the user it acts for) and how it answers (JSON, an
// error through the one error map, CORS on every answer, HEAD without body).
// Handlers by role (sessions_api, messages_api, streams_api, identity) take a
// Call and register their Routes with ChatApi.
#include "api/cors.hpp"
#include "api/http_error.hpp"
#include "auth/identity.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/net.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

#include <boost/url/params_view.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace chatd {
class Metrics;
}

namespace chatd::api {

// What the access log and the request metrics record of one request. Written
// when its answer ends: when the handler returns, or, for a connection the
// handler took (a session stream), when that stream ends.
struct AnswerLog {
    std::string request_id;
    std::string method;
    std::string_view route;  // a route's pattern: routes last as long as the API
    std::chrono::steady_clock::time_point started;
    Metrics* metrics = nullptr;

    void write(unsigned status, std::uint64_t bytes, std::string_view error_code = {}) const;
};

struct Call {
    http::Request request;
    http::Connection& connection;  // a handler may take it (http::After::taken)
    http::beast::tcp_stream& stream;
    const CorsPolicy& cors;
    std::chrono::milliseconds write_timeout;
    std::vector<std::string> params;  // the path's `{}` segments
    boost::urls::params_view query;
    UserId user;
    auth::Verdict identity;  // how `user` was established
    bool head = false;       // a HEAD request run as GET: its answer goes without body
    // X-Request-Id: the client's, or one made for it; on the response and
    // on every log line the request causes.
    std::string request_id;
    // What was answered, for the access log: status, and body bytes (of
    // an event stream: what it wrote).
    unsigned status = 0;
    std::uint64_t bytes = 0;
    std::string error_code;        // the API error answered, if one was
    std::string_view route = "-";  // the route's pattern, once matched
    std::chrono::steady_clock::time_point started;
    Metrics* metrics = nullptr;

    // What the log will say of this request, for an answer that outlives
    // the call (its status and bytes come when it ends).
    AnswerLog answer_log() const;

    log::Context log_context() const { return {request_id}; }
    // The head lines an event stream adds to its own: CORS and X-Request-Id.
    std::string head_lines() const;

    Framing framing() const { return framing_of(request); }
    // A JSON answer.
    net::awaitable<http::After> reply(http::Status status, std::string body);
    // Adds CORS headers, then send()s.
    net::awaitable<http::After> reply(http::Response response);
    // Answers with the problem's status and JSON error.
    net::awaitable<http::After> fail(const Problem& problem,
                                     std::optional<std::chrono::seconds> retry_after = {});
    // Writes the response as it is (HEAD: without its body).
    net::awaitable<http::After> send(http::Response response);
    // An answer without body (204) in the request's framing.
    http::Response empty(http::Status status) const;
};

// Who may call a route: anyone (health checks), an authenticated user, or one
// who shows the credential itself, not a session cookie made from it.
enum class Access { open, user, credential };
// Streams have no length to announce: HEAD on them is 405.
enum class Body { sized, stream };

struct Route {
    std::function<net::awaitable<http::After>(Call&)> handler;
    Access access = Access::user;
    Body body = Body::sized;
};
using Routes = http::Router<Route>;

}  // namespace chatd::api
