#include "auth/jwt_verifier.hpp"

#include "auth/base64url.hpp"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <boost/json/parse.hpp>

#include <cmath>

namespace chatd::auth {
namespace {

namespace json = boost::json;

// The JSON object a base64url segment encodes, or nothing.
std::optional<json::object> decode_object(std::string_view segment) {
    auto bytes = decode_base64url(segment);
    if (!bytes) return std::nullopt;
    boost::system::error_code ec;
    auto v = json::parse(*bytes, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.as_object());
}

// A NumericDate claim: absent (nullopt with ok), or a number (seconds).
struct NumericDate {
    bool ok = true;
    std::optional<double> value;
};
NumericDate numeric_date(const json::object& claims, std::string_view name) {
    const auto* v = claims.if_contains(name);
    if (!v) return {};
    if (v->is_int64()) return {true, static_cast<double>(v->as_int64())};
    if (v->is_uint64()) return {true, static_cast<double>(v->as_uint64())};
    if (v->is_double() && std::isfinite(v->as_double())) return {true, v->as_double()};
    return {false, std::nullopt};
}

bool audience_matches(const json::value* aud, std::string_view expected) {
    if (!aud) return false;
    if (aud->is_string()) return aud->as_string() == expected;
    if (!aud->is_array()) return false;
    for (const auto& a : aud->as_array())
        if (a.is_string() && a.as_string() == expected) return true;
    return false;
}

bool digest_verify(const EVP_PKEY* key, std::string_view input, const unsigned char* sig,
                   std::size_t sig_len) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok =
        ctx &&
        EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, const_cast<EVP_PKEY*>(key)) ==
            1 &&
        EVP_DigestVerify(ctx, sig, sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                         input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

// JOSE ES256 signatures are r||s (32 bytes each); OpenSSL verifies DER.
std::optional<std::string> es256_to_der(std::string_view raw) {
    if (raw.size() != 64) return std::nullopt;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    if (!sig) return std::nullopt;
    auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
    BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
    BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
    if (!r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return std::nullopt;
    }
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (len <= 0) return std::nullopt;
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    return out;
}

}  // namespace

bool JwtVerifier::signature_valid(std::string_view input, std::string_view signature,
                                  const std::optional<std::string>& kid) const {
    switch (config_.alg) {
        case JwtAlg::hs256: {
            unsigned char mac[EVP_MAX_MD_SIZE];
            unsigned int mac_len = 0;
            if (!HMAC(EVP_sha256(), config_.secret.data(), static_cast<int>(config_.secret.size()),
                      reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                      &mac_len))
                return false;
            return signature.size() == mac_len &&
                   CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
        }
        case JwtAlg::rs256: {
            const auto* key = config_.keys.find(kid);
            return key && digest_verify(key, input,
                                        reinterpret_cast<const unsigned char*>(signature.data()),
                                        signature.size());
        }
        case JwtAlg::es256: {
            const auto* key = config_.keys.find(kid);
            auto der = es256_to_der(signature);
            return key && der &&
                   digest_verify(key, input, reinterpret_cast<const unsigned char*>(der->data()),
                                 der->size());
        }
    }
    return false;
}

Verdict JwtVerifier::verify(std::string_view token, std::int64_t now) const {
    if (token.empty() || token.size() > config_.max_token_bytes)
        return Verdict::refuse("token empty or too long");
    auto dot1 = token.find('.');
    auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
        return Verdict::refuse("not a JWS compact serialisation");
    auto header = decode_object(token.substr(0, dot1));
    if (!header) return Verdict::refuse("header is not a base64url JSON object");
    const auto* alg = header->if_contains("alg");
    if (!alg || !alg->is_string() || alg->as_string() != to_string(config_.alg))
        return Verdict::refuse("alg is not the configured algorithm");
    // Extensions marked critical must be understood; chatd understands none.
    if (header->contains("crit")) return Verdict::refuse("crit header present");
    std::optional<std::string> kid;
    if (const auto* k = header->if_contains("kid")) {
        if (!k->is_string()) return Verdict::refuse("kid is not a string");
        kid = std::string(k->as_string());
    }
    auto signature = decode_base64url(token.substr(dot2 + 1));
    if (!signature) return Verdict::refuse("signature is not base64url");
    if (!signature_valid(token.substr(0, dot2), *signature, kid))
        return Verdict::refuse("bad signature or unknown key");

    // Only now, with the signature verified, are the claims worth reading.
    auto claims = decode_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
    if (!claims) return Verdict::refuse("payload is not a base64url JSON object");
    const double leeway = static_cast<double>(config_.leeway.count());
    auto exp = numeric_date(*claims, "exp");
    auto nbf = numeric_date(*claims, "nbf");
    if (!exp.ok || !nbf.ok) return Verdict::refuse("exp or nbf is not a number");
    if (exp.value && static_cast<double>(now) >= *exp.value + leeway)
        return Verdict::refuse("expired");
    if (nbf.value && static_cast<double>(now) + leeway < *nbf.value)
        return Verdict::refuse("not yet valid");
    if (!config_.issuer.empty()) {
        const auto* iss = claims->if_contains("iss");
        if (!iss || !iss->is_string() || iss->as_string() != config_.issuer)
            return Verdict::refuse("wrong issuer");
    }
    if (!config_.audience.empty() &&
        !audience_matches(claims->if_contains("aud"), config_.audience))
        return Verdict::refuse("wrong audience");
    const auto* sub = claims->if_contains("sub");
    if (!sub || !sub->is_string() || !is_valid_user_id(sub->as_string()))
        return Verdict::refuse("sub missing or not a valid user id");
    auto verdict = Verdict::accept(UserId{std::string(sub->as_string())});
    if (exp.value) verdict.expires_at = static_cast<std::int64_t>(*exp.value);
    return verdict;
}

}  // namespace chatd::auth
