#pragma once
// Browser sessions: EventSource cannot send an Authorization header, and a
// token kept in page storage is one XSS away from theft. So a browser trades
// its token once (POST /api/v1/auth/session) for an HttpOnly, SameSite=Strict
// cookie that chatd signs itself: `<base64url claims>.<base64url HMAC-SHA256>`,
// claims `{"u": user, "e": expiry (unix s), "b": binding}`. `b` ties the
// session to the credential it came from (an API key's hash) so revoking the
// key ends its sessions. Stateless: any node with the same key verifies it.
#include "auth/identity.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatd::auth {

inline constexpr std::string_view kSessionCookie = "chatd_session";

struct SessionClaims {
    UserId user;
    std::int64_t expires_at = 0;  // unix seconds
    std::string binding;
};

class SessionCookies {
public:
    // `key`: at least 32 bytes, the same on every node.
    explicit SessionCookies(std::string key);

    std::string issue(const SessionClaims& claims) const;
    // The claims of a cookie this key signed that has not expired at `now`.
    std::optional<SessionClaims> verify(std::string_view value, std::int64_t now) const;

private:
    std::string mac(std::string_view input) const;

    std::string key_;
};

// The value of cookie `name` in a Cookie header (`a=1; b=2`), if present once.
std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name);

}  // namespace chatd::auth
