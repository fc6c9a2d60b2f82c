#include "api/chat_api.hpp"

#include "api/openapi_document.hpp"
#include "core/log.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>

namespace chatd::api {
namespace {

using http::Status;
using V = http::bhttp::verb;
using F = http::bhttp::field;

}  // namespace

ChatApi::ChatApi(engine::Engine& engine, engine::Feeds& feeds, store::ChatStore& store,
                 engine::Conversations& conversations, const auth::Authenticator& auth,
                 const auth::SessionCookies* sessions, ApiConfig config,
                 const http::StaticFiles& web)
    : engine_(engine),
      store_(store),
      config_(std::move(config)),
      guard_(config_.guard),
      cors_(config_.cors_origins),
      limiter_(config_.rate),
      identity_(auth, sessions, config_.session),
      streams_(conversations, feeds, store, config_.stream, config_.max_streams_per_user),
      sessions_api_(conversations, store,
                    {.requests = config_.requests,
                     .max_history_page = config_.max_history_page,
                     .max_poll_messages = config_.max_poll_messages}),
      messages_api_(conversations, streams_, config_.requests),
      ui_chat_api_(conversations, streams_, store,
                   {.requests = config_.requests, .max_history_page = config_.max_history_page}),
      web_(web) {
    routes_.add(V::get, "/healthz", {[this](Call& c) { return healthz(c); }, Access::open});
    routes_.add(V::get, "/readyz", {[this](Call& c) { return readyz(c); }, Access::open});
    // The API's description is public: tools read it before they have keys.
    routes_.add(V::get, "/api/v1/openapi.json",
                {[](Call& c) { return c.reply(Status::ok, std::string(openapi_document())); },
                 Access::open});
    if (config_.metrics)
        routes_.add(V::get, "/metrics", {[this](Call& c) { return metrics(c); }, Access::open});
    sessions_api_.add_routes(routes_);
    messages_api_.add_routes(routes_);
    streams_.add_routes(routes_);
    ui_chat_api_.add_routes(routes_);
    identity_.add_routes(routes_);
}

http::Response ChatApi::reject(Status status, std::string_view code, std::string_view message) {
    // Refused before it was a request (framing, limits): an id of its own.
    auto res = error_response(status, code, message, Framing{});
    auto id = make_id("req_");
    res.set("X-Request-Id", id);
    log::access({.request_id = id,
                 .method = "-",
                 .route = "-",
                 .status = static_cast<unsigned>(status),
                 .bytes = res.body().size()});
    return res;
}

namespace {

// X-Request-Id: the client's when it is one, else a new one.
std::string request_id_of(const http::Request& request) {
    constexpr std::size_t kMaxChars = 128;
    if (auto it = request.find("X-Request-Id"); it != request.end()) {
        std::string_view id = it->value();
        // Kept only when it cannot garble a log line or a header.
        bool ok = !id.empty() && id.size() <= kMaxChars &&
                  std::all_of(id.begin(), id.end(), [](char ch) {
                      return std::isalnum(static_cast<unsigned char>(ch)) ||
                             std::string_view("-_.:+/=").find(ch) != std::string_view::npos;
                  });
        if (ok) return std::string(id);
    }
    return make_id("req_");
}

}  // namespace

net::awaitable<http::After> ChatApi::handle(http::Request request, http::Connection& connection) {
    Call c{.request = std::move(request),
           .connection = connection,
           .stream = connection.stream,
           .cors = cors_,
           .write_timeout = config_.write_timeout,
           .started = std::chrono::steady_clock::now(),
           .metrics = config_.metrics};
    c.request_id = request_id_of(c.request);
    const Route* handler = nullptr;
    auto after = co_await dispatch(c, handler);
    if (handler) after = co_await handler->handler(c);
    // A handler that took the connection logs its answer when it ends.
    if (after != http::After::taken) c.answer_log().write(c.status, c.bytes, c.error_code);
    co_return after;
}

net::awaitable<http::After> ChatApi::dispatch(Call& c, const Route*& handler) {
    if (auto allowed = guard_.check(c.request); !allowed) co_return co_await c.fail(allowed.error());
    if (c.request.method() == V::options && c.request.target() == "*")
        co_return co_await options(c, "*");
    // The parsed target views the request's own storage, so parse it in place.
    auto target = boost::urls::parse_origin_form(c.request.target());
    if (!target)
        co_return co_await c.fail({Error::invalid_request, "malformed request target"});
    c.query = target->params();
    // Preflights carry no credentials; OPTIONS reveals only what a 405 would.
    if (c.request.method() == V::options) co_return co_await options(c, target->path());
    c.head = c.request.method() == V::head;
    auto match = routes_.match(c.head ? V::get : c.request.method(), target->path());
    bool head_on_stream = c.head && match.target && match.target->body == Body::stream;
    if (head_on_stream) match = {};
    if (match.target) c.route = match.pattern;
    // Everything under /api/ but the health checks needs credentials, even a
    // path that does not exist: which ones do is no business of strangers.
    bool open = match.target && match.target->access == Access::open;
    if (!open && target->path().starts_with("/api/")) {
        auto access = match.target ? match.target->access : Access::user;
        boost::system::error_code ec;
        auto peer = c.stream.socket().remote_endpoint(ec).address();
        c.identity = identity_.identify(c.request, peer, access);
        if (!c.identity.user) {
            log::debug(c.log_context(), "unauthenticated request from {}: {}", peer.to_string(),
                       c.identity.reason);
            co_return co_await c.fail(Error::unauthorized);
        }
        c.user = *c.identity.user;
        if (auto wait = limiter_.acquire(c.user, std::chrono::steady_clock::now()))
            co_return co_await c.fail(Error::rate_limited,
                                      std::chrono::ceil<std::chrono::seconds>(*wait));
    }
    if (!match.target) {
        if (c.request.method() == V::get || c.head) {
            if (const auto* file = web_.find(target->path())) {
                c.route = "(static)";
                co_return co_await serve_static(c, *file);
            }
        }
        auto allow = allowed_methods(target->path());
        if (allow.empty()) co_return co_await c.fail({Error::not_found, "no such endpoint"});
        auto res = error_response(Error::method_not_allowed, c.framing());
        res.set(F::allow, head_on_stream ? "GET, OPTIONS" : allow);
        co_return co_await c.reply(std::move(res));
    }
    if (c.request.method() == V::post || c.request.method() == V::patch) {
        if (auto typed = check_content_type(c.request); !typed)
            co_return co_await c.fail(typed.error());
    }
    c.params = std::move(match.params);
    handler = match.target;
    co_return http::After::keep_alive;  // the handler's answer decides
}

net::awaitable<http::After> ChatApi::serve_static(Call& c, const http::StaticFile& file) {
    auto res = c.empty(Status::ok);
    if (auto tag = c.request.find(F::if_none_match);
        tag != c.request.end() && tag->value() == file.etag) {
        res.result(Status::not_modified);
    } else {
        res.set(F::content_type, file.content_type);
        res.body() = file.body;
    }
    res.set(F::etag, file.etag);
    res.set(F::cache_control, "no-cache");  // revalidate: the ETag makes that cheap
    // The UI never needs inline script, inline style or another origin, so a
    // message that slipped past the renderer still could not run (defence in
    // depth against XSS).
    res.set("Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    co_return co_await c.reply(std::move(res));
}

std::string ChatApi::allowed_methods(std::string_view path) const {
    auto allow = routes_.match(V::options, path).allow;  // no route takes OPTIONS
    if (allow.empty()) return web_.find(path) ? "GET, HEAD, OPTIONS" : "";
    // HEAD beside GET, but not on streams, which have no length to announce.
    auto get = routes_.match(V::get, path);
    if (get.target && get.target->body == Body::sized) allow += ", HEAD";
    return allow + ", OPTIONS";
}

net::awaitable<http::After> ChatApi::options(Call& c, std::string_view path) {
    auto allow =
        path == "*" ? std::string("GET, HEAD, POST, PATCH, DELETE, OPTIONS") : allowed_methods(path);
    if (allow.empty()) co_return co_await c.fail({Error::not_found, "no such endpoint"});
    auto res = c.empty(Status::no_content);
    res.set(F::allow, allow);
    if (cors_.preflight(res, c.request, allow)) co_return co_await c.send(std::move(res));
    co_return co_await c.reply(std::move(res));
}

net::awaitable<http::After> ChatApi::healthz(Call& c) {
    co_return co_await c.reply(Status::ok, R"({"status":"ok"})");
}

net::awaitable<http::After> ChatApi::metrics(Call& c) {
    auto res = c.empty(Status::ok);
    res.set(F::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = config_.metrics->scrape(static_cast<double>(engine_.live_count()),
                                         static_cast<double>(streams_.open_streams()));
    co_return co_await c.reply(std::move(res));
}

net::awaitable<http::After> ChatApi::readyz(Call& c) {
    if (!engine_.accepting()) co_return co_await c.fail({Error::not_ready, "shutting down"});
    // A store that answers queries may still refuse writes (locked, full,
    // read-only): the last commit's outcome counts as much as a ping.
    if (!engine_.commits_succeed())
        co_return co_await c.fail({Error::not_ready, "commits to the store are failing"});
    auto ok = co_await store_.ping();
    if (!ok) co_return co_await c.fail({Error::not_ready, "store unreachable"});
    co_return co_await c.reply(Status::ok, R"({"status":"ready"})");
}

}  // namespace chatd::api
