#pragma once
// The chat API's front door (DESIGN §4): every request passes the
// RequestGuard (Host, Origin); every API request is authenticated once, here
// (Identity), and rate-limited per user; then the route's handler runs, acting
// for that user alone: the calls it makes are all scoped by the user (I6).
// Handlers live by role in sessions_api, messages_api, streams_api,
// ui_chat_api (the AI SDK's endpoints) and identity; this file routes, and serves the static UI and health checks.
// One instance serves every connection on the I/O thread.
#include "api/call.hpp"
#include "api/cors.hpp"
#include "api/event_stream.hpp"
#include "api/identity.hpp"
#include "api/messages_api.hpp"
#include "api/rate_limiter.hpp"
#include "api/request_guard.hpp"
#include "api/requests.hpp"
#include "api/sessions_api.hpp"
#include "api/streams_api.hpp"
#include "api/ui_chat_api.hpp"
#include "auth/authenticator.hpp"
#include "auth/session_cookie.hpp"
#include "core/metrics.hpp"
#include "engine/conversations.hpp"
#include "engine/engine.hpp"
#include "engine/feeds.hpp"
#include "http/server.hpp"
#include "http/static_files.hpp"
#include "store/chat_store.hpp"

namespace chatd::api {

struct ApiConfig {
    RequestLimits requests;
    std::chrono::milliseconds write_timeout{10000};
    StreamConfig stream;
    GuardConfig guard;
    SessionConfig session;
    // Limits per user (429 with Retry-After).
    RateLimit rate;
    std::size_t max_streams_per_user = 32;
    // What one answer may hold: a history page, a poll.
    std::size_t max_history_page = 1000;
    std::size_t max_poll_messages = 500;
    // Origins of browser apps allowed to call the API (CORS); also the
    // origins whose state-changing requests the guard lets through.
    std::vector<std::string> cors_origins;
    // Where requests and errors are counted, and what GET /metrics shows
    // (null: /metrics is not served).
    Metrics* metrics = nullptr;
};

class ChatApi final : public http::Handler {
public:
    // `web`: the static files served outside the API (the reference UI); may
    // be empty. `sessions`: signs browser session cookies when the mode
    // issues them (auth.issues_sessions()), else may be null.
    ChatApi(engine::Engine& engine, engine::Feeds& feeds, store::ChatStore& store,
            engine::Conversations& conversations, const auth::Authenticator& auth,
            const auth::SessionCookies* sessions, ApiConfig config, const http::StaticFiles& web);

    net::awaitable<http::After> handle(http::Request request,
                                       http::Connection& connection) override;
    http::Response reject(http::Status status, std::string_view code,
                          std::string_view message) override;

private:
    // Routes `c` and answers it, unless it goes to a route's handler: then
    // `handler` is set and the caller runs it, after this frame is gone (a
    // stream's handler runs as long as the stream, and each frame of the
    // chain is held that long). Sets `c.route` to the matched pattern.
    net::awaitable<http::After> dispatch(Call& c, const Route*& handler);
    net::awaitable<http::After> healthz(Call& c);
    net::awaitable<http::After> readyz(Call& c);
    net::awaitable<http::After> metrics(Call& c);
    net::awaitable<http::After> serve_static(Call& c, const http::StaticFile& file);
    // OPTIONS: the methods a path takes (`*`: the server's).
    net::awaitable<http::After> options(Call& c, std::string_view path);
    // `Allow` for a path: its routes' methods, HEAD beside GET, and OPTIONS;
    // empty when nothing is there.
    std::string allowed_methods(std::string_view path) const;

    engine::Engine& engine_;
    store::ChatStore& store_;
    ApiConfig config_;
    RequestGuard guard_;
    CorsPolicy cors_;
    RateLimiter limiter_;
    Identity identity_;
    StreamsApi streams_;
    SessionsApi sessions_api_;
    MessagesApi messages_api_;
    UiChatApi ui_chat_api_;
    const http::StaticFiles& web_;
    Routes routes_;
};

}  // namespace chatd::api
