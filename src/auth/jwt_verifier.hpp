#pragma once
// Verifies a JWT (RFC 7519) as RFC 8725 asks: the algorithm is fixed by
// configuration and the token's `alg` must name exactly it (so `none`, and
// HS256 signed with an RSA public key, are refused); the signature is checked
// with OpenSSL's EVP before any claim is trusted; `exp` and `nbf` hold with a
// small leeway; `iss` and `aud` are checked when configured; `sub` is the user
// id. Pure and thread-safe once built; `now` is passed in so tests set time.
#include "auth/identity.hpp"
#include "auth/public_keys.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace chatd::auth {

struct JwtConfig {
    JwtAlg alg = JwtAlg::hs256;
    std::string secret;  // HS256
    KeySet keys;         // RS256, ES256
    std::string issuer;  // empty: not checked
    std::string audience;
    std::chrono::seconds leeway{30};
    std::size_t max_token_bytes = 8192;
};

// HS256 secrets shorter than this are refused at start-up (RFC 7518 §3.2:
// a key at least as long as the hash output).
constexpr std::size_t kMinHs256SecretBytes = 32;

class JwtVerifier {
public:
    explicit JwtVerifier(JwtConfig config) : config_(std::move(config)) {}

    Verdict verify(std::string_view token, std::int64_t now_unix_seconds) const;

private:
    bool signature_valid(std::string_view signing_input, std::string_view signature,
                         const std::optional<std::string>& kid) const;

    JwtConfig config_;
};

}  // namespace chatd::auth
