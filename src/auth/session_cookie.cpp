#include "auth/session_cookie.hpp"
#include "core/text.hpp"

#include "auth/base64url.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <stdexcept>

namespace chatd::auth {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxCookieBytes = 1024;

}  // namespace

SessionCookies::SessionCookies(std::string key) : key_(std::move(key)) {
    if (key_.size() < 32) throw std::runtime_error("the session key needs at least 32 bytes");
}

std::string SessionCookies::mac(std::string_view input) const {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
}

std::string SessionCookies::issue(const SessionClaims& c) const {
    auto claims = encode_base64url(
        json::serialize(json::object{{"u", c.user.value}, {"e", c.expires_at}, {"b", c.binding}}));
    return claims + "." + encode_base64url(mac(claims));
}

std::optional<SessionClaims> SessionCookies::verify(std::string_view value,
                                                    std::int64_t now) const {
    if (value.size() > kMaxCookieBytes) return std::nullopt;
    auto dot = value.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    auto claims_part = value.substr(0, dot);
    auto signature = decode_base64url(value.substr(dot + 1));
    auto expected = mac(claims_part);
    if (!signature || signature->size() != expected.size() ||
        CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0)
        return std::nullopt;
    auto bytes = decode_base64url(claims_part);
    if (!bytes) return std::nullopt;
    boost::system::error_code ec;
    auto doc = json::parse(*bytes, ec);
    if (ec || !doc.is_object()) return std::nullopt;
    const auto& o = doc.as_object();
    const auto* u = o.if_contains("u");
    const auto* e = o.if_contains("e");
    const auto* b = o.if_contains("b");
    if (!u || !u->is_string() || !is_valid_user_id(u->as_string()) || !e || !e->is_int64() || !b ||
        !b->is_string())
        return std::nullopt;
    if (now >= e->as_int64()) return std::nullopt;
    return SessionClaims{UserId{std::string(u->as_string())}, e->as_int64(),
                         std::string(b->as_string())};
}

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
    std::optional<std::string_view> found;
    while (!header.empty()) {
        auto semi = header.find(';');
        auto pair = trim(header.substr(0, semi), " ");
        header.remove_prefix(semi == std::string_view::npos ? header.size() : semi + 1);
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
        if (found) return std::nullopt;  // twice: which one is meant is unknown
        found = pair.substr(eq + 1);
    }
    return found;
}

}  // namespace chatd::auth
