#pragma once
// The chat API (DESIGN §4): routes, request validation, and the mapping of
// engine and store results to responses. One instance serves every connection
// on the I/O thread. Every request passes the RequestGuard (Host, Origin);
// every API request is authenticated once, here, and acts for that user
// alone: the engine and store calls it makes are all scoped by it (I6).
#include "api/cors.hpp"
#include "api/event_stream.hpp"
#include "api/rate_limiter.hpp"
#include "api/request_guard.hpp"
#include "api/stream_slots.hpp"
#include "auth/authenticator.hpp"
#include "auth/session_cookie.hpp"
#include "engine/engine.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "http/static_files.hpp"
#include "store/chat_store.hpp"

#include <boost/url/params_view.hpp>

namespace chatd::api {

// Browser sessions (auth/session_cookie.hpp).
enum class CookieSecure { automatic, always, never };  // automatic: unless Host is loopback
struct SessionConfig {
    std::chrono::seconds max_age{12 * 3600};
    CookieSecure secure = CookieSecure::automatic;
};

struct ApiConfig {
    std::size_t max_message_bytes = 256 * 1024;
    std::size_t max_title_chars = 200;
    std::size_t max_system_prompt_bytes = 256 * 1024;
    std::size_t max_idempotency_key_chars = 255;
    std::string default_model = "simulated";
    std::chrono::milliseconds write_timeout{10000};
    StreamConfig stream;
    GuardConfig guard;
    SessionConfig session;
    // Limits per user (429 with Retry-After).
    RateLimit rate;
    std::size_t max_streams_per_user = 32;
    std::size_t max_sessions_per_user = 10000;
    // What one answer may hold: a history page, a poll.
    std::size_t max_history_page = 1000;
    std::size_t max_poll_messages = 500;
    // Models a session may name; empty: only default_model.
    std::vector<std::string> allowed_models;
    // Origins of browser apps allowed to call the API (CORS); also the
    // origins whose state-changing requests the guard lets through.
    std::vector<std::string> cors_origins;
};

class ChatApi final : public http::Handler {
public:
    // `web`: the static files served outside the API (the reference UI); may
    // be empty. `sessions`: signs browser session cookies when the mode
    // issues them (auth.issues_sessions()), else may be null.
    ChatApi(engine::Engine& engine, store::ChatStore& store, const auth::Authenticator& auth,
            const auth::SessionCookies* sessions, ApiConfig config, const http::StaticFiles& web);

    net::awaitable<http::After> handle(http::Request request,
                                       http::beast::tcp_stream& stream) override;
    http::Response reject(http::Status status, std::string_view code,
                          std::string_view message) override;

    struct Call {
        http::Request request;
        http::beast::tcp_stream& stream;
        std::vector<std::string> params;
        boost::urls::params_view query;
        UserId user;
        auth::Verdict identity;  // how `user` was established
        bool head = false;       // a HEAD request run as GET: its answer goes without body
    };
    using Handler = net::awaitable<http::After> (ChatApi::*)(Call&);
    // Who may call a route: anyone (health checks), an authenticated user, or
    // one who shows the credential itself, not a session cookie made from it.
    enum class Access { open, user, credential };
    // Streams have no length to announce: HEAD on them is 405.
    enum class Body { sized, stream };
    struct Route {
        Handler handler;
        Access access = Access::user;
        Body body = Body::sized;
    };

private:
    net::awaitable<http::After> healthz(Call& c);
    net::awaitable<http::After> readyz(Call& c);
    net::awaitable<http::After> create_session(Call& c);
    net::awaitable<http::After> list_sessions(Call& c);
    net::awaitable<http::After> get_session(Call& c);
    net::awaitable<http::After> delete_session(Call& c);
    net::awaitable<http::After> list_messages(Call& c);
    net::awaitable<http::After> send_message(Call& c);
    net::awaitable<http::After> session_status(Call& c);
    net::awaitable<http::After> message_content(Call& c);
    net::awaitable<http::After> cancel_message(Call& c);
    net::awaitable<http::After> poll(Call& c);
    net::awaitable<http::After> stream_session(Call& c);
    net::awaitable<http::After> stream_message(Call& c);
    net::awaitable<http::After> create_auth_session(Call& c);
    net::awaitable<http::After> get_auth_session(Call& c);
    net::awaitable<http::After> delete_auth_session(Call& c);

    // The user a request acts for: by its session cookie when it has one and
    // no Authorization header (and `access` allows cookies), else by the mode.
    auth::Verdict identify(const http::Request& request, const net::ip::address& peer,
                           Access access) const;
    std::string session_cookie(const http::Request& request, std::string_view value,
                               std::chrono::seconds max_age) const;

    net::awaitable<http::After> serve_static(Call& c, const http::StaticFile& file);
    // OPTIONS: the methods a path takes (`*`: the server's).
    net::awaitable<http::After> options(Call& c, std::string_view path);
    // `Allow` for a path: its routes' methods, HEAD beside GET, and OPTIONS;
    // empty when nothing is there.
    std::string allowed_methods(std::string_view path) const;

    net::awaitable<http::After> reply(Call& c, http::Status status, std::string body);
    // Adds CORS headers, then send()s.
    net::awaitable<http::After> reply(Call& c, http::Response response);
    // Writes the response as it is (HEAD: without its body).
    net::awaitable<http::After> send(Call& c, http::Response response);
    net::awaitable<http::After> fail(Call& c, http::Status status, std::string_view code,
                                     std::string_view message);
    net::awaitable<http::After> fail(Call& c, boost::system::error_code ec);
    // Streams one message from `offset` over SSE, then closes; `slot` is the
    // user's open-stream slot it holds meanwhile.
    net::awaitable<http::After> stream_one(Call& c, StreamSlots::Slot slot, MessageId id,
                                           std::int64_t offset);
    bool model_allowed(std::string_view model) const;
    // The live or stored message, or not_found.
    net::awaitable<Result<store::Message>> find_message(const UserId& user, const MessageId& id);

    engine::Engine& engine_;
    store::ChatStore& store_;
    const auth::Authenticator& auth_;
    const auth::SessionCookies* sessions_;
    ApiConfig config_;
    RequestGuard guard_;
    CorsPolicy cors_;
    RateLimiter limiter_;
    StreamSlots stream_slots_;
    const http::StaticFiles& web_;
    http::Router<Route> router_;
};

}  // namespace chatd::api
