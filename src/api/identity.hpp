#pragma once
// Who a request acts for: the credential it carries (the authenticator's
// mode), or the browser session cookie made from one, and the endpoints that
// make, show and end such sessions (/api/v1/auth/session). EventSource cannot
// send headers, so a browser trades its credential once for an HttpOnly,
// SameSite=Strict cookie; the token stays out of URLs and logs.
#include "api/call.hpp"
#include "auth/authenticator.hpp"
#include "auth/session_cookie.hpp"

#include <chrono>

namespace chatd::api {

enum class CookieSecure { automatic, always, never };  // automatic: unless Host is loopback
struct SessionConfig {
    std::chrono::seconds max_age{12 * 3600};
    CookieSecure secure = CookieSecure::automatic;
};

class Identity {
public:
    // `sessions`: signs session cookies when the mode issues them
    // (auth.issues_sessions()); else may be null.
    Identity(const auth::Authenticator& auth, const auth::SessionCookies* sessions,
             SessionConfig config);

    // The user `request` acts for: by its session cookie when it has one and
    // no Authorization header (and `access` takes cookies), else by the mode.
    auth::Verdict identify(const http::Request& request, const net::ip::address& peer,
                           Access access) const;

    void add_routes(Routes& routes);

private:
    net::awaitable<http::After> create_session(Call& c);
    net::awaitable<http::After> get_session(Call& c);
    net::awaitable<http::After> delete_session(Call& c);

    std::string session_cookie(const http::Request& request, std::string_view value,
                               std::chrono::seconds max_age) const;

    const auth::Authenticator& auth_;
    const auth::SessionCookies* sessions_;
    SessionConfig config_;
};

}  // namespace chatd::api
