#include "api/identity.hpp"

#include "api/request_guard.hpp"
#include "core/time.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace chatd::api {
namespace {

namespace json = boost::json;
using http::Status;
using V = http::bhttp::verb;
using F = http::bhttp::field;

std::string identity_json(const UserId& user, std::int64_t expires_at) {
    json::object body{{"user_id", user.value}, {"expires_at", nullptr}};
    if (expires_at > 0) body["expires_at"] = format_iso8601(expires_at * 1000);
    return json::serialize(body);
}

}  // namespace

Identity::Identity(const auth::Authenticator& auth, const auth::SessionCookies* sessions,
                   SessionConfig config)
    : auth_(auth), sessions_(auth.issues_sessions() ? sessions : nullptr), config_(config) {}

void Identity::add_routes(Routes& routes) {
    const std::string path = "/api/v1/auth/session";
    routes.add(V::post, path,
               {[this](Call& c) { return create_session(c); }, Access::credential});
    routes.add(V::get, path, {[this](Call& c) { return get_session(c); }});
    routes.add(V::delete_, path, {[this](Call& c) { return delete_session(c); }, Access::open});
}

auth::Verdict Identity::identify(const http::Request& request, const net::ip::address& peer,
                                 Access access) const {
    auto now = now_millis() / 1000;
    if (sessions_ && request.find(F::authorization) == request.end()) {
        std::string cookies;
        for (auto [it, last] = request.equal_range(F::cookie); it != last; ++it)
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

std::string Identity::session_cookie(const http::Request& request, std::string_view value,
                                     std::chrono::seconds max_age) const {
    bool secure = config_.secure == CookieSecure::always;
    if (config_.secure == CookieSecure::automatic) {
        // Browsers keep Secure cookies only from https (and localhost): in
        // front of anything but loopback sits a TLS-terminating proxy.
        auto host = request.find(F::host);
        auto name = host == request.end() ? std::nullopt : host_name(host->value());
        secure = !name || !is_loopback_host(*name);
    }
    return std::string(auth::kSessionCookie) + "=" + std::string(value) +
           "; Path=/api/; Max-Age=" + std::to_string(max_age.count()) +
           "; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "");
}

net::awaitable<http::After> Identity::create_session(Call& c) {
    if (!sessions_)  // none, trusted-header: every request carries its identity already
        co_return co_await c.reply(Status::ok, identity_json(c.user, c.identity.expires_at));
    auto now = now_millis() / 1000;
    auto expires = now + config_.max_age.count();
    if (c.identity.expires_at > 0) expires = std::min(expires, c.identity.expires_at);
    auto value =
        sessions_->issue({.user = c.user, .expires_at = expires, .binding = c.identity.binding});
    auto res = json_response(Status::ok, identity_json(c.user, expires), c.framing());
    res.set(F::set_cookie, session_cookie(c.request, value, std::chrono::seconds(expires - now)));
    co_return co_await c.reply(std::move(res));
}

net::awaitable<http::After> Identity::get_session(Call& c) {
    co_return co_await c.reply(Status::ok, identity_json(c.user, c.identity.expires_at));
}

net::awaitable<http::After> Identity::delete_session(Call& c) {
    auto res = c.empty(Status::no_content);
    res.set(F::set_cookie, session_cookie(c.request, "", std::chrono::seconds(0)));
    co_return co_await c.reply(std::move(res));
}

}  // namespace chatd::api
