#pragma once
// Authentication at the edge (DESIGN §4, "Identity"): establishes once, per
// request, the user it acts for, by the mode chosen at start-up:
//   none            one local user (only on loopback: see config)
//   jwt             `Authorization: Bearer <JWT>` (jwt_verifier.hpp)
//   api-keys        `Authorization: Bearer <key>`, keys hashed in a file
//   trusted-header  a gateway that authenticated the user names it in a
//                   header; believed only from listed proxy addresses and/or
//                   with a shared secret header
// authenticate() is called on the I/O thread and never blocks. reload()
// (SIGHUP) reads key files, so it runs on another thread: it builds the new
// keys aside and swaps them in atomically, concurrently with authenticate().
#include "auth/address_range.hpp"
#include "auth/api_key_table.hpp"
#include "auth/identity.hpp"
#include "auth/jwt_verifier.hpp"
#include "http/types.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::auth {

enum class AuthMode { none, jwt, api_keys, trusted_header };
std::string_view to_string(AuthMode mode);

// The user of `none` mode. Sessions made without authentication belong to it.
inline const UserId kLocalUser{"usr_local"};

struct AuthConfig {
    AuthMode mode = AuthMode::none;
    // jwt: `jwt.keys` is filled from one of the files (RS256, ES256).
    JwtConfig jwt;
    std::filesystem::path jwt_public_key_file;
    std::filesystem::path jwt_jwks_file;
    // api-keys
    std::filesystem::path api_keys_file;
    // trusted-header: every configured check must hold.
    std::string trusted_user_header = "X-Chatd-User";
    std::vector<AddressRange> trusted_proxies;  // empty: any peer
    std::string trusted_secret;                 // empty: no secret header
    std::string trusted_secret_header = "X-Chatd-Proxy-Secret";
};

class Authenticator {
public:
    virtual ~Authenticator() = default;
    virtual AuthMode mode() const = 0;
    virtual Verdict authenticate(const http::Request& request, const http::net::ip::address& peer,
                                 std::int64_t now_unix_seconds) const = 0;
    // Re-reads key files (api-keys, JWT keys). Throws std::runtime_error and
    // keeps the keys it had when the new ones do not load.
    virtual void reload() {}
    // Whether a browser may trade this mode's credentials for a session
    // cookie (session_cookie.hpp): jwt and api-keys. `none` needs none, and
    // behind a trusted gateway the gateway owns the browser's session.
    virtual bool issues_sessions() const { return false; }
    // Whether the credential a session was made from still holds for `user`
    // (api-keys: the key is still listed for them after a reload).
    virtual bool session_valid(const UserId&, std::string_view /*binding*/) const { return true; }
};

// Builds the configured mode, loading its keys; throws std::runtime_error with
// a clear message when the configuration cannot work (start-up).
std::unique_ptr<Authenticator> make_authenticator(AuthConfig config);

// The token of an `Authorization: Bearer <token>` header (scheme matched
// without regard to case), or nullopt.
std::optional<std::string_view> bearer_token(const http::Request& request);

}  // namespace chatd::auth
