#include "api/chat_api.hpp"
#include "core/text.hpp"

#include "api/http_error.hpp"
#include "api/json_codec.hpp"
#include "core/hash.hpp"
#include "core/log.hpp"

#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <charconv>

namespace chatd::api {
namespace {

using http::Status;
using V = http::bhttp::verb;
namespace field = http::bhttp;

std::optional<std::string> query_value(const boost::urls::params_view& q, std::string_view key) {
    auto it = q.find(key);
    if (it == q.end() || !(*it).has_value) return std::nullopt;
    return std::string((*it).value);
}

std::optional<std::string> header(const http::Request& r, http::bhttp::field f) {
    auto it = r.find(f);
    if (it == r.end()) return std::nullopt;
    return std::string(it->value());
}

// Idempotency: a send is "the same" when it targets the same session with the
// same content.
std::string fingerprint(const SessionId& session, std::string_view content) {
    return session.value + ":" + std::to_string(content.size()) + ":" +
           std::to_string(fnv1a(content));
}

// `limit` (absent: `fallback`; 1..max) and `before` (an id with `prefix`) of
// a paginated list; nullopt when either is malformed.
template <class Id>
struct PageQuery {
    std::size_t limit = 0;
    std::optional<Id> before;
};
template <class Id>
std::optional<PageQuery<Id>> page_query(const boost::urls::params_view& q, std::size_t fallback,
                                        std::size_t max, std::string_view prefix) {
    PageQuery<Id> page{.limit = fallback};
    if (auto text = query_value(q, "limit")) {
        auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), page.limit);
        if (ec != std::errc{} || ptr != text->data() + text->size() || page.limit < 1 ||
            page.limit > max)
            return std::nullopt;
    }
    if (auto text = query_value(q, "before")) {
        if (!is_well_formed_id(*text, prefix)) return std::nullopt;
        page.before = Id{*text};
    }
    return page;
}

bool wants_event_stream(const http::Request& r) {
    auto accept = header(r, field::field::accept);
    return accept && accept->find("text/event-stream") != std::string::npos;
}

}  // namespace

ChatApi::ChatApi(engine::Engine& engine, store::ChatStore& store, const auth::Authenticator& auth,
                 const auth::SessionCookies* sessions, ApiConfig config,
                 const http::StaticFiles& web)
    : engine_(engine),
      store_(store),
      auth_(auth),
      sessions_(auth.issues_sessions() ? sessions : nullptr),
      config_(std::move(config)),
      guard_(config_.guard),
      cors_(config_.cors_origins),
      limiter_(config_.rate),
      stream_slots_(config_.max_streams_per_user),
      web_(web) {
    const std::string p = "/api/v1/chat";
    router_.add(V::get, "/healthz", {&ChatApi::healthz, Access::open});
    router_.add(V::get, "/readyz", {&ChatApi::readyz, Access::open});
    router_.add(V::post, p + "/sessions", {&ChatApi::create_session});
    router_.add(V::get, p + "/sessions", {&ChatApi::list_sessions});
    router_.add(V::get, p + "/sessions/{}", {&ChatApi::get_session});
    router_.add(V::delete_, p + "/sessions/{}", {&ChatApi::delete_session});
    router_.add(V::get, p + "/sessions/{}/messages", {&ChatApi::list_messages});
    router_.add(V::post, p + "/sessions/{}/messages", {&ChatApi::send_message});
    router_.add(V::get, p + "/messages/stream",
                {&ChatApi::stream_session, Access::user, Body::stream});
    router_.add(V::get, p + "/messages/{}/status", {&ChatApi::session_status});
    router_.add(V::get, p + "/messages/{}/content", {&ChatApi::message_content});
    router_.add(V::post, p + "/messages/{}/cancel", {&ChatApi::cancel_message});
    router_.add(V::get, p + "/messages/{}/stream",
                {&ChatApi::stream_message, Access::user, Body::stream});
    router_.add(V::get, p + "/messages/{}/poll", {&ChatApi::poll});
    const std::string a = "/api/v1/auth/session";
    router_.add(V::post, a, {&ChatApi::create_auth_session, Access::credential});
    router_.add(V::get, a, {&ChatApi::get_auth_session});
    router_.add(V::delete_, a, {&ChatApi::delete_auth_session, Access::open});
}

http::Response ChatApi::reject(Status status, std::string_view code, std::string_view message) {
    return error_response(status, code, message, Framing{});
}

net::awaitable<http::After> ChatApi::handle(http::Request request,
                                            http::beast::tcp_stream& stream) {
    Call c{std::move(request), stream, {}, {}, {}};
    if (auto allowed = guard_.check(c.request); !allowed)
        co_return co_await fail(c, allowed.error());
    if (c.request.method() == V::options && c.request.target() == "*")
        co_return co_await options(c, "*");
    // The parsed target views the request's own storage, so parse it in place.
    auto target = boost::urls::parse_origin_form(c.request.target());
    if (!target)
        co_return co_await fail(c, Status::bad_request, "invalid_request",
                                "malformed request target");
    c.query = target->params();
    // Preflights carry no credentials; OPTIONS reveals only what a 405 would.
    if (c.request.method() == V::options) co_return co_await options(c, target->path());
    c.head = c.request.method() == V::head;
    auto match = router_.match(c.head ? V::get : c.request.method(), target->path());
    bool head_on_stream = c.head && match.target && match.target->body == Body::stream;
    if (head_on_stream) match = {};
    // Everything under /api/ but the health checks needs credentials, even a
    // path that does not exist: which ones do is no business of strangers.
    bool open = match.target && match.target->access == Access::open;
    if (!open && target->path().starts_with("/api/")) {
        auto access = match.target ? match.target->access : Access::user;
        boost::system::error_code ec;
        auto peer = c.stream.socket().remote_endpoint(ec).address();
        c.identity = identify(c.request, peer, access);
        if (!c.identity.user) {
            log::debug("unauthenticated request from {}: {}", peer.to_string(), c.identity.reason);
            co_return co_await fail(c, Error::unauthorized);
        }
        c.user = *c.identity.user;
        if (auto wait = limiter_.acquire(c.user, std::chrono::steady_clock::now())) {
            auto seconds = std::chrono::ceil<std::chrono::seconds>(*wait);
            co_return co_await reply(
                c, error_response(Error::rate_limited, framing_of(c.request), seconds));
        }
    }
    if (!match.target) {
        if (c.request.method() == V::get || c.head) {
            if (const auto* file = web_.find(target->path()))
                co_return co_await serve_static(c, *file);
        }
        auto allow = allowed_methods(target->path());
        if (allow.empty())
            co_return co_await fail(c, Status::not_found, "not_found", "no such endpoint");
        auto res = error_response(Status::method_not_allowed, "method_not_allowed",
                                  "method not allowed here", framing_of(c.request));
        res.set(field::field::allow, head_on_stream ? "GET, OPTIONS" : allow);
        co_return co_await reply(c, std::move(res));
    }
    if (c.request.method() == V::post && !c.request.body().empty()) {
        auto type = header(c.request, field::field::content_type);
        if (!type ||
            !iequals(type->substr(0, std::min(type->size(), std::size_t{16})), "application/json"))
            co_return co_await fail(c, Status::unsupported_media_type, "unsupported_media_type",
                                    "request body must be application/json");
    }
    c.params = std::move(match.params);
    co_return co_await (this->*(match.target->handler))(c);
}

net::awaitable<http::After> ChatApi::serve_static(Call& c, const http::StaticFile& file) {
    using F = field::field;
    http::Response res{Status::ok, c.request.version()};
    res.keep_alive(c.request.keep_alive());
    if (auto tag = header(c.request, F::if_none_match); tag && *tag == file.etag) {
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
    res.prepare_payload();
    co_return co_await reply(c, std::move(res));
}

net::awaitable<http::After> ChatApi::reply(Call& c, Status status, std::string body) {
    co_return co_await reply(c, json_response(status, std::move(body), framing_of(c.request)));
}

auth::Verdict ChatApi::identify(const http::Request& request, const net::ip::address& peer,
                                Access access) const {
    auto now = now_millis() / 1000;
    if (sessions_ && request.find(field::field::authorization) == request.end()) {
        std::string cookies;
        for (auto [it, last] = request.equal_range(field::field::cookie); it != last; ++it)
            cookies.append(cookies.empty() ? "" : "; ").append(it->value());
        if (auto value = auth::cookie_value(cookies, auth::kSessionCookie)) {
            // A session cannot renew itself: only the credential makes one.
            if (access == Access::credential)
                return auth::Verdict::refuse("session cookie, no credential");
            auto claims = sessions_->verify(*value, now);
            if (!claims || !auth_.session_valid(claims->user, claims->binding))
                return auth::Verdict::refuse("invalid, expired or revoked session cookie");
            auto verdict = auth::Verdict::accept(claims->user);
            verdict.expires_at = claims->expires_at;
            verdict.binding = claims->binding;
            return verdict;
        }
    }
    return auth_.authenticate(request, peer, now);
}

bool ChatApi::model_allowed(std::string_view model) const {
    if (config_.allowed_models.empty()) return model == config_.default_model;
    return std::find(config_.allowed_models.begin(), config_.allowed_models.end(), model) !=
           config_.allowed_models.end();
}

std::string ChatApi::allowed_methods(std::string_view path) const {
    auto allow = router_.match(V::options, path).allow;  // no route takes OPTIONS
    if (allow.empty()) return web_.find(path) ? "GET, HEAD, OPTIONS" : "";
    if (allow.find("GET") != std::string::npos) allow += ", HEAD";
    return allow + ", OPTIONS";
}

net::awaitable<http::After> ChatApi::options(Call& c, std::string_view path) {
    auto allow =
        path == "*" ? std::string("GET, HEAD, POST, DELETE, OPTIONS") : allowed_methods(path);
    if (allow.empty())
        co_return co_await fail(c, Status::not_found, "not_found", "no such endpoint");
    http::Response res{Status::no_content, c.request.version()};
    res.keep_alive(c.request.keep_alive());
    res.set(field::field::allow, allow);
    if (cors_.preflight(res, c.request, allow)) co_return co_await send(c, std::move(res));
    co_return co_await reply(c, std::move(res));
}

net::awaitable<http::After> ChatApi::reply(Call& c, http::Response response) {
    cors_.decorate(response, c.request);
    co_return co_await send(c, std::move(response));
}

net::awaitable<http::After> ChatApi::send(Call& c, http::Response response) {
    response.prepare_payload();
    if (c.head) {
        // The headers GET would have, Content-Length included; no body.
        auto length = response.body().size();
        response.body().clear();
        if (response.result() != Status::no_content && response.result() != Status::not_modified)
            response.content_length(length);
    }
    bool keep = response.keep_alive();
    if (!co_await http::write_response(c.stream, std::move(response), config_.write_timeout))
        co_return http::After::close;
    co_return keep ? http::After::keep_alive : http::After::close;
}

net::awaitable<http::After> ChatApi::fail(Call& c, Status status, std::string_view code,
                                          std::string_view message) {
    co_return co_await reply(c, error_response(status, code, message, framing_of(c.request)));
}

net::awaitable<http::After> ChatApi::fail(Call& c, boost::system::error_code ec) {
    co_return co_await reply(c, error_response(ec, framing_of(c.request)));
}

net::awaitable<http::After> ChatApi::healthz(Call& c) {
    co_return co_await reply(c, Status::ok, R"({"status":"ok"})");
}

net::awaitable<http::After> ChatApi::readyz(Call& c) {
    auto ok = co_await store_.ping();
    if (!ok || !engine_.accepting())
        co_return co_await fail(c, Status::service_unavailable, "not_ready",
                                ok ? "shutting down" : "store unreachable");
    co_return co_await reply(c, Status::ok, R"({"status":"ready"})");
}

net::awaitable<http::After> ChatApi::create_session(Call& c) {
    auto parsed = parse_object(c.request.body());
    if (!parsed.object)
        co_return co_await fail(c, Status::bad_request, "invalid_json", parsed.problem);
    std::string problem;
    auto title = optional_string(*parsed.object, "title", problem);
    auto system_prompt = optional_string(*parsed.object, "system_prompt", problem);
    auto model = optional_string(*parsed.object, "model", problem);
    if (problem.empty() && title && count_code_points(*title) > config_.max_title_chars)
        problem =
            "`title` is longer than " + std::to_string(config_.max_title_chars) + " characters";
    if (problem.empty() && system_prompt && system_prompt->size() > config_.max_system_prompt_bytes)
        problem = "`system_prompt` is too long";
    if (problem.empty() && model && (model->empty() || model->size() > 200))
        problem = "`model` must be a non-empty string of at most 200 bytes";
    if (!problem.empty())
        co_return co_await fail(c, Status::bad_request, "invalid_request", problem);
    if (model && !model_allowed(*model)) co_return co_await fail(c, Error::model_not_allowed);
    // Arguments of co_awaited calls are named objects: GCC 12 destroys braced
    // temporaries inside co_await expressions at the wrong address.
    store::NewSession fields{.title = title.value_or("New chat"),
                             .system_prompt = system_prompt.value_or(""),
                             .model = model.value_or(config_.default_model),
                             .max_per_user = config_.max_sessions_per_user};
    auto session = co_await store_.create_session(c.user, std::move(fields));
    if (!session) co_return co_await fail(c, session.error());
    co_return co_await reply(c, Status::created, json::serialize(to_json(*session)));
}

net::awaitable<http::After> ChatApi::list_sessions(Call& c) {
    auto query = page_query<SessionId>(c.query, 50, 200, "ses_");
    if (!query)
        co_return co_await fail(c, Status::bad_request, "invalid_request",
                                "`limit` must be an integer from 1 to 200, `before` a `next` "
                                "value from an earlier page");
    auto page = co_await store_.list_sessions(c.user, query->limit, query->before);
    if (!page) co_return co_await fail(c, page.error());
    json::array sessions;
    for (const auto& s : page->sessions) sessions.push_back(to_json(s));
    json::object body{{"sessions", std::move(sessions)}};
    if (page->next)
        body["next"] = page->next->value;
    else
        body["next"] = nullptr;
    co_return co_await reply(c, Status::ok, json::serialize(body));
}

net::awaitable<http::After> ChatApi::get_session(Call& c) {
    if (!is_well_formed_id(c.params[0], "ses_")) co_return co_await fail(c, Error::not_found);
    SessionId id{c.params[0]};
    auto session = co_await store_.get_session(c.user, id);
    if (!session) co_return co_await fail(c, session.error());
    co_return co_await reply(c, Status::ok, json::serialize(to_json(*session)));
}

net::awaitable<http::After> ChatApi::delete_session(Call& c) {
    if (!is_well_formed_id(c.params[0], "ses_")) co_return co_await fail(c, Error::not_found);
    SessionId id{c.params[0]};
    auto session = co_await store_.get_session(c.user, id);
    if (!session) co_return co_await fail(c, session.error());
    if (auto active = engine_.active_in(c.user, id))
        (void)co_await engine_.cancel(c.user, active->id());
    auto deleted = co_await store_.delete_session(c.user, id);
    if (!deleted) co_return co_await fail(c, deleted.error());
    http::Response res{Status::no_content, c.request.version()};
    res.keep_alive(c.request.keep_alive());
    co_return co_await reply(c, std::move(res));
}

net::awaitable<http::After> ChatApi::list_messages(Call& c) {
    if (!is_well_formed_id(c.params[0], "ses_")) co_return co_await fail(c, Error::not_found);
    SessionId id{c.params[0]};
    auto max = config_.max_history_page;
    auto query = page_query<MessageId>(c.query, max, max, "msg_");
    if (!query)
        co_return co_await fail(c, Status::bad_request, "invalid_request",
                                "`limit` must be an integer from 1 to " + std::to_string(max) +
                                    ", `before` a `next` value from an earlier page");
    auto page = co_await store_.list_messages_page(c.user, id, query->before, query->limit);
    if (!page) co_return co_await fail(c, page.error());
    json::array out;
    for (const auto& m : page->messages) out.push_back(to_json(m));
    json::object body;
    body["messages"] = std::move(out);
    if (page->next)
        body["next"] = page->next->value;
    else
        body["next"] = nullptr;
    co_return co_await reply(c, Status::ok, json::serialize(body));
}

net::awaitable<http::After> ChatApi::send_message(Call& c) {
    if (!is_well_formed_id(c.params[0], "ses_")) co_return co_await fail(c, Error::not_found);
    SessionId session{c.params[0]};
    auto parsed = parse_object(c.request.body());
    if (!parsed.object)
        co_return co_await fail(c, Status::bad_request, "invalid_json", parsed.problem);
    auto* content = parsed.object->if_contains("content");
    if (!content)
        co_return co_await fail(c, Status::bad_request, "invalid_request", "`content` is required");
    if (!content->is_string())
        co_return co_await fail(c, Status::bad_request, "invalid_request",
                                "`content` must be a string");
    std::string text(content->as_string());
    if (text.empty())
        co_return co_await fail(c, Status::bad_request, "invalid_request",
                                "`content` must not be empty");
    if (text.size() > config_.max_message_bytes)
        co_return co_await fail(
            c, Status::payload_too_large, "message_too_long",
            "`content` is longer than " + std::to_string(config_.max_message_bytes) + " bytes");
    std::optional<std::string> key;
    if (auto it = c.request.find("Idempotency-Key"); it != c.request.end()) {
        key = std::string(it->value());
        if (key->empty() || count_code_points(*key) > config_.max_idempotency_key_chars)
            co_return co_await fail(c, Status::bad_request, "invalid_request",
                                    "`Idempotency-Key` must have 1 to 255 characters");
    }
    if (!engine_.accepting()) co_return co_await fail(c, Error::shutting_down);
    auto session_row = co_await store_.get_session(c.user, session);
    if (!session_row) co_return co_await fail(c, session_row.error());
    // The operator's key pays for it: a model allowed once but not any more is refused.
    if (!model_allowed(session_row->model)) co_return co_await fail(c, Error::model_not_allowed);
    StreamSlots::Slot stream_slot;
    if (wants_event_stream(c.request)) {
        auto opened = stream_slots_.open(c.user);
        if (!opened) co_return co_await fail(c, opened.error());
        stream_slot = std::move(*opened);
    }
    // A place for the generation before its turn is stored: the limits hold
    // however many sends race, and a refused send stores nothing.
    auto slot = engine_.reserve(c.user);
    if (!slot) co_return co_await fail(c, slot.error());
    auto fp = fingerprint(session, text);
    store::NewTurn new_turn{.content = std::move(text),
                            .model = session_row->model,
                            .idempotency_key = key,
                            .request_fingerprint = std::move(fp)};
    auto outcome = co_await store_.begin_turn(c.user, session, std::move(new_turn));
    if (!outcome) co_return co_await fail(c, outcome.error());
    if (outcome->active_message) {
        json::object error;
        error["code"] = "generation_in_progress";
        error["message"] = "a generation is already in progress in this session";
        error["active_message_id"] = outcome->active_message->value;
        json::object body;
        body["error"] = std::move(error);
        co_return co_await reply(c, Status::conflict, json::serialize(body));
    }
    const auto& turn = *outcome->turn;
    if (!turn.replayed) engine_.start(c.user, turn, std::move(*slot));
    if (wants_event_stream(c.request))
        co_return co_await stream_one(c, std::move(stream_slot), turn.assistant_message.id, 0);
    json::object body;
    body["user_message"] = to_json(turn.user_message);
    body["assistant_message"] = to_json(turn.assistant_message);
    co_return co_await reply(c, Status::accepted, json::serialize(body));
}

net::awaitable<Result<store::Message>> ChatApi::find_message(const UserId& user,
                                                             const MessageId& id) {
    if (!is_well_formed_id(id.value, "msg_")) co_return Error::not_found;
    if (auto g = engine_.find(user, id)) co_return g->message();
    co_return co_await store_.get_message(user, id);
}

net::awaitable<http::After> ChatApi::session_status(Call& c) {
    if (!is_well_formed_id(c.params[0], "ses_")) co_return co_await fail(c, Error::not_found);
    SessionId session{c.params[0]};
    auto messages = co_await store_.list_messages(c.user, session);
    if (!messages) co_return co_await fail(c, messages.error());
    json::object body{{"has_active_generation", false},
                      {"generating_message_id", nullptr},
                      {"last_updated", nullptr}};
    if (auto g = engine_.active_in(c.user, session)) {
        body["has_active_generation"] = true;
        body["generating_message_id"] = g->id().value;
        body["last_updated"] = format_iso8601(g->message().last_updated);
    } else {
        UnixMillis latest = -1;
        for (const auto& m : *messages) {
            if (m.status == store::MessageStatus::generating) {
                body["has_active_generation"] = true;
                body["generating_message_id"] = m.id.value;
                latest = m.last_updated;
                break;
            }
            latest = std::max(latest, m.last_updated);
        }
        if (latest >= 0) body["last_updated"] = format_iso8601(latest);
    }
    co_return co_await reply(c, Status::ok, json::serialize(body));
}

net::awaitable<http::After> ChatApi::message_content(Call& c) {
    MessageId id{c.params[0]};
    auto m = co_await find_message(c.user, id);
    if (!m) co_return co_await fail(c, m.error());
    json::object body{
        {"id", m->id.value},
        {"content", m->content},
        {"status", to_string(m->status)},
        {"last_updated", format_iso8601(m->last_updated)},
        {"cursor", engine::encode_cursor({m->id, static_cast<std::int64_t>(m->content.size())})}};
    co_return co_await reply(c, Status::ok, json::serialize(body));
}

net::awaitable<http::After> ChatApi::cancel_message(Call& c) {
    MessageId id{c.params[0]};
    if (!is_well_formed_id(id.value, "msg_")) co_return co_await fail(c, Error::not_found);
    auto m = co_await engine_.cancel(c.user, id);
    if (!m) co_return co_await fail(c, m.error());
    co_return co_await reply(c, Status::ok, json::serialize(to_json(*m)));
}

net::awaitable<http::After> ChatApi::poll(Call& c) {
    if (!is_well_formed_id(c.params[0], "ses_")) co_return co_await fail(c, Error::not_found);
    store::Since since;
    if (auto text = query_value(c.query, "since")) {
        std::int64_t seq = 0;
        if (text->size() > 1 && (*text)[0] == 'c') {
            auto [ptr, ec] = std::from_chars(text->data() + 1, text->data() + text->size(), seq);
            if (ec == std::errc{} && ptr == text->data() + text->size() && seq >= 0)
                since.seq = seq;
        } else {
            since.time = parse_iso8601(*text);
        }
        if (!since.seq && !since.time)
            co_return co_await fail(c, Status::bad_request, "invalid_since",
                                    "`since` must be an ISO-8601 time or a `next_since` value");
    }
    SessionId id{c.params[0]};
    since.limit = config_.max_poll_messages;
    auto changes = co_await store_.changed_since(c.user, id, since);
    if (!changes) co_return co_await fail(c, changes.error());
    json::array messages;
    for (const auto& m : changes->messages) messages.push_back(to_json(m));
    json::object body{{"messages", std::move(messages)},
                      {"has_more_generating", changes->has_more_generating},
                      {"has_more_changes", changes->truncated},
                      {"next_since", "c" + std::to_string(changes->next_seq)}};
    co_return co_await reply(c, Status::ok, json::serialize(body));
}

namespace {

// Last-Event-ID wins over the `last_event_id` query parameter.
std::optional<std::string> cursor_text(const http::Request& r, const boost::urls::params_view& q) {
    if (auto it = r.find("Last-Event-ID"); it != r.end() && !it->value().empty())
        return std::string(it->value());
    return query_value(q, "last_event_id");
}

}  // namespace

net::awaitable<http::After> ChatApi::stream_message(Call& c) {
    MessageId id{c.params[0]};
    std::optional<engine::Cursor> cursor;
    if (auto text = cursor_text(c.request, c.query)) {
        auto decoded = engine::decode_cursor(*text);
        if (!decoded)
            co_return co_await fail(c, Status::bad_request, "invalid_cursor", "malformed cursor");
        cursor = *decoded;
    }
    auto m = co_await find_message(c.user, id);
    if (!m) co_return co_await fail(c, m.error());
    std::int64_t offset = 0;
    if (cursor) {
        if (cursor->message != id) {
            // A cursor of an unknown or foreign message is 404, of another one 400.
            auto other = co_await find_message(c.user, cursor->message);
            if (!other) co_return co_await fail(c, other.error());
            co_return co_await fail(c, Status::bad_request, "invalid_cursor",
                                    "the cursor belongs to another message");
        }
        if (!engine::check_cursor_offset(m->content, cursor->offset))
            co_return co_await fail(c, Status::bad_request, "invalid_cursor",
                                    "the cursor is past the committed content or inside a "
                                    "character");
        offset = cursor->offset;
    }
    auto slot = stream_slots_.open(c.user);
    if (!slot) co_return co_await fail(c, slot.error());
    co_return co_await stream_one(c, std::move(*slot), id, offset);
}

net::awaitable<http::After> ChatApi::stream_one(Call& c, StreamSlots::Slot slot, MessageId id,
                                                std::int64_t offset) {
    (void)slot;  // held until the stream ends
    EventStream events(c.stream, engine_, store_, c.user, config_.stream);
    if (co_await events.open(cors_.head_lines(c.request)))
        co_await events.follow(std::move(id), offset);
    co_return http::After::close;
}

net::awaitable<http::After> ChatApi::stream_session(Call& c) {
    auto session_text = query_value(c.query, "session_id");
    if (!session_text)
        co_return co_await fail(c, Status::bad_request, "invalid_request",
                                "`session_id` is required");
    if (!is_well_formed_id(*session_text, "ses_")) co_return co_await fail(c, Error::not_found);
    SessionId session{*session_text};
    std::optional<engine::Cursor> cursor;
    if (auto text = cursor_text(c.request, c.query)) {
        auto decoded = engine::decode_cursor(*text);
        if (!decoded)
            co_return co_await fail(c, Status::bad_request, "invalid_cursor", "malformed cursor");
        cursor = *decoded;
    }
    auto s = co_await store_.get_session(c.user, session);
    if (!s) co_return co_await fail(c, s.error());
    if (cursor) {
        auto m = co_await find_message(c.user, cursor->message);
        if (!m) co_return co_await fail(c, m.error());
        if (m->session_id != session)
            co_return co_await fail(c, Status::bad_request, "invalid_cursor",
                                    "the cursor belongs to another session");
        if (!engine::check_cursor_offset(m->content, cursor->offset))
            co_return co_await fail(c, Status::bad_request, "invalid_cursor",
                                    "the cursor is past the committed content or inside a "
                                    "character");
    }
    auto slot = stream_slots_.open(c.user);
    if (!slot) co_return co_await fail(c, slot.error());
    EventStream events(c.stream, engine_, store_, c.user, config_.stream);
    if (co_await events.open(cors_.head_lines(c.request)))
        co_await events.follow_session(session, cursor);
    co_return http::After::close;
}

std::string ChatApi::session_cookie(const http::Request& request, std::string_view value,
                                    std::chrono::seconds max_age) const {
    bool secure = config_.session.secure == CookieSecure::always;
    if (config_.session.secure == CookieSecure::automatic) {
        // Browsers keep Secure cookies only from https (and localhost): in
        // front of anything but loopback sits a TLS-terminating proxy.
        auto host = request.find(field::field::host);
        auto name = host == request.end() ? std::nullopt : host_name(host->value());
        secure = !name || !is_loopback_host(*name);
    }
    return std::string(auth::kSessionCookie) + "=" + std::string(value) +
           "; Path=/api/; Max-Age=" + std::to_string(max_age.count()) +
           "; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "");
}

namespace {

json::object identity_json(const UserId& user, std::int64_t expires_at) {
    json::object body{{"user_id", user.value}, {"expires_at", nullptr}};
    if (expires_at > 0) body["expires_at"] = format_iso8601(expires_at * 1000);
    return body;
}

}  // namespace

net::awaitable<http::After> ChatApi::create_auth_session(Call& c) {
    if (!sessions_)  // none, trusted-header: every request carries its identity already
        co_return co_await reply(c, Status::ok,
                                 json::serialize(identity_json(c.user, c.identity.expires_at)));
    auto now = now_millis() / 1000;
    auto expires = now + config_.session.max_age.count();
    if (c.identity.expires_at > 0) expires = std::min(expires, c.identity.expires_at);
    auto value =
        sessions_->issue({.user = c.user, .expires_at = expires, .binding = c.identity.binding});
    auto res = json_response(Status::ok, json::serialize(identity_json(c.user, expires)),
                             framing_of(c.request));
    res.set(field::field::set_cookie,
            session_cookie(c.request, value, std::chrono::seconds(expires - now)));
    co_return co_await reply(c, std::move(res));
}

net::awaitable<http::After> ChatApi::get_auth_session(Call& c) {
    co_return co_await reply(c, Status::ok,
                             json::serialize(identity_json(c.user, c.identity.expires_at)));
}

net::awaitable<http::After> ChatApi::delete_auth_session(Call& c) {
    http::Response res{Status::no_content, c.request.version()};
    res.keep_alive(c.request.keep_alive());
    res.set(field::field::set_cookie, session_cookie(c.request, "", std::chrono::seconds(0)));
    co_return co_await reply(c, std::move(res));
}

}  // namespace chatd::api
