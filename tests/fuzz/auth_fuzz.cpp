// Fuzzes what chatd parses of credentials, all of it untrusted: JWTs
// (JwtVerifier with HS256, and ES256 against a key made at start), base64url,
// session cookies and the Cookie header, and, as an operator's files can be
// wrong too, the api-keys file and JWKS documents; plus Host values and
// address ranges.
//
// Properties: base64url decoding is canonical (what decodes re-encodes to the
// same text); a forged token never verifies (the fuzzer cannot produce a
// valid signature, so an accepted token means the signature check was
// skipped); a cookie never verifies unless it is one chatd issued.
#include "api/request_guard.hpp"
#include "auth/address_range.hpp"
#include "auth/api_key_table.hpp"
#include "auth/base64url.hpp"
#include "auth/jwt_verifier.hpp"
#include "auth/public_keys.hpp"
#include "auth/session_cookie.hpp"
#include "fuzz_support.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace {

using namespace chatd::auth;

constexpr std::int64_t kNow = 1'800'000'000;

const JwtVerifier& hs256() {
    static const JwtVerifier v(JwtConfig{.alg = JwtAlg::hs256,
                                         .secret = "fuzzing-secret-of-at-least-32-bytes!!",
                                         .issuer = "https://issuer.example",
                                         .audience = "chatd"});
    return v;
}

const JwtVerifier& es256() {
    static const JwtVerifier v = [] {
        KeySet keys;
        keys.keys.push_back(
            {"k1", PublicKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free)});
        return JwtVerifier(JwtConfig{.alg = JwtAlg::es256, .keys = std::move(keys)});
    }();
    return v;
}

const SessionCookies& cookies() {
    static const SessionCookies c(std::string(32, 'c'));
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto input = chatd::fuzz::as_text(data, size);

    // Tokens: nothing the fuzzer writes carries a valid signature.
    CHATD_FUZZ_CHECK(!hs256().verify(input, kNow).user);
    CHATD_FUZZ_CHECK(!es256().verify(input, kNow).user);

    if (auto decoded = decode_base64url(input))
        CHATD_FUZZ_CHECK(encode_base64url(*decoded) == input);

    if (auto value = cookie_value(input, kSessionCookie)) CHATD_FUZZ_CHECK(value->size() <= size);
    CHATD_FUZZ_CHECK(!cookies().verify(input, kNow));

    try {
        auto table = ApiKeyTable::parse(input);
        (void)table.find(input);
    } catch (const std::runtime_error&) {
    }
    for (auto alg : {JwtAlg::rs256, JwtAlg::es256}) {
        try {
            (void)parse_jwks(input, alg);
        } catch (const std::runtime_error&) {
        }
    }
    try {
        (void)parse_address_ranges(input);
    } catch (const std::runtime_error&) {
    }
    if (auto host = chatd::api::host_name(input)) {
        CHATD_FUZZ_CHECK(host->size() <= input.size());
        (void)chatd::api::is_loopback_host(*host);
    }
    return 0;
}
