#include "auth/public_keys.hpp"

#include "auth/base64url.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <boost/json/parse.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace chatd::auth {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxKeyFileBytes = 1 << 20;

PublicKey own(EVP_PKEY* key) {
    return PublicKey(key, EVP_PKEY_free);
}

// Whether `key` is of the kind `alg` verifies with; `why` says what is wrong.
bool fits(const EVP_PKEY* key, JwtAlg alg, std::string& why) {
    switch (alg) {
        case JwtAlg::rs256:
            if (!EVP_PKEY_is_a(key, "RSA")) {
                why = "RS256 needs an RSA key";
                return false;
            }
            if (EVP_PKEY_get_bits(key) < 2048) {
                why = "RSA keys must have at least 2048 bits";
                return false;
            }
            return true;
        case JwtAlg::es256: {
            char group[64] = {};
            std::size_t len = 0;
            if (!EVP_PKEY_is_a(key, "EC") ||
                !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                sizeof group, &len) ||
                std::string_view(group, len) != "prime256v1") {
                why = "ES256 needs an EC P-256 key";
                return false;
            }
            return true;
        }
        case JwtAlg::hs256:
            break;
    }
    why = "HS256 takes a secret, not a public key";
    return false;
}

struct ParamBuild {
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    std::vector<BIGNUM*> numbers;
    ~ParamBuild() {
        for (auto* n : numbers) BN_free(n);
        OSSL_PARAM_BLD_free(bld);
    }
    const BIGNUM* number(std::string_view bytes) {
        numbers.push_back(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                                    static_cast<int>(bytes.size()), nullptr));
        return numbers.back();
    }
};

PublicKey from_params(const char* type, ParamBuild& b) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(b.bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    EVP_PKEY* key = nullptr;
    bool ok = params && ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
              EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) > 0;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (!ok) {
        EVP_PKEY_free(key);
        return nullptr;
    }
    return own(key);
}

std::string b64_member(const json::object& jwk, std::string_view name) {
    const auto* v = jwk.if_contains(name);
    if (!v || !v->is_string())
        throw std::runtime_error("JWK member `" + std::string(name) + "` is missing");
    auto bytes = decode_base64url(v->as_string());
    if (!bytes || bytes->empty())
        throw std::runtime_error("JWK member `" + std::string(name) + "` is not base64url");
    return *bytes;
}

PublicKey rsa_from_jwk(const json::object& jwk) {
    ParamBuild b;
    auto n = b64_member(jwk, "n"), e = b64_member(jwk, "e");
    if (!b.bld || !OSSL_PARAM_BLD_push_BN(b.bld, OSSL_PKEY_PARAM_RSA_N, b.number(n)) ||
        !OSSL_PARAM_BLD_push_BN(b.bld, OSSL_PKEY_PARAM_RSA_E, b.number(e)))
        throw std::runtime_error("out of memory");
    return from_params("RSA", b);
}

PublicKey ec_from_jwk(const json::object& jwk) {
    const auto* crv = jwk.if_contains("crv");
    if (!crv || !crv->is_string() || crv->as_string() != "P-256") return nullptr;
    auto x = b64_member(jwk, "x"), y = b64_member(jwk, "y");
    if (x.size() != 32 || y.size() != 32)
        throw std::runtime_error("P-256 coordinates are 32 bytes");
    std::string point = "\x04" + x + y;  // uncompressed SEC1 point
    ParamBuild b;
    if (!b.bld ||
        !OSSL_PARAM_BLD_push_utf8_string(b.bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(b.bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size()))
        throw std::runtime_error("out of memory");
    return from_params("EC", b);
}

std::string_view string_member(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
}

}  // namespace

std::optional<JwtAlg> jwt_alg_from_string(std::string_view s) {
    if (s == "HS256") return JwtAlg::hs256;
    if (s == "RS256") return JwtAlg::rs256;
    if (s == "ES256") return JwtAlg::es256;
    return std::nullopt;
}

std::string_view to_string(JwtAlg alg) {
    switch (alg) {
        case JwtAlg::hs256:
            return "HS256";
        case JwtAlg::rs256:
            return "RS256";
        case JwtAlg::es256:
            return "ES256";
    }
    return "?";
}

const EVP_PKEY* KeySet::find(const std::optional<std::string>& kid) const {
    if (!kid) return keys.size() == 1 ? keys.front().key.get() : nullptr;
    for (const auto& e : keys)
        if (e.kid == *kid) return e.key.get();
    return nullptr;
}

std::string read_small_file(const std::filesystem::path& file, std::size_t max_bytes) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
        throw std::runtime_error(file.string() + " is not a readable file");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    std::string text;
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > max_bytes)
            throw std::runtime_error(file.string() + " is larger than " +
                                     std::to_string(max_bytes) + " bytes");
    }
    return text;
}

KeySet load_pem_public_key(const std::filesystem::path& file, JwtAlg alg) {
    auto pem = read_small_file(file, kMaxKeyFileBytes);
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (!raw) throw std::runtime_error(file.string() + " holds no PEM public key");
    auto key = own(raw);
    std::string why;
    if (!fits(key.get(), alg, why)) throw std::runtime_error(file.string() + ": " + why);
    return KeySet{{{std::string(), std::move(key)}}};
}

KeySet parse_jwks(std::string_view text, JwtAlg alg) {
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (ec || !doc.is_object()) throw std::runtime_error("a JWKS must be a JSON object");
    const auto* keys = doc.as_object().if_contains("keys");
    if (!keys || !keys->is_array()) throw std::runtime_error("a JWKS needs a `keys` array");
    KeySet set;
    for (const auto& v : keys->as_array()) {
        if (!v.is_object()) continue;
        const auto& jwk = v.as_object();
        auto use = string_member(jwk, "use");
        auto key_alg = string_member(jwk, "alg");
        if ((!use.empty() && use != "sig") || (!key_alg.empty() && key_alg != to_string(alg)))
            continue;
        auto kty = string_member(jwk, "kty");
        PublicKey key;
        if (kty == "RSA" && alg == JwtAlg::rs256)
            key = rsa_from_jwk(jwk);
        else if (kty == "EC" && alg == JwtAlg::es256)
            key = ec_from_jwk(jwk);
        std::string why;
        if (!key || !fits(key.get(), alg, why)) continue;
        set.keys.push_back({std::string(string_member(jwk, "kid")), std::move(key)});
    }
    if (set.keys.empty())
        throw std::runtime_error("the JWKS has no key usable with " + std::string(to_string(alg)));
    return set;
}

KeySet load_jwks(const std::filesystem::path& file, JwtAlg alg) {
    try {
        return parse_jwks(read_small_file(file, kMaxKeyFileBytes), alg);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(file.string() + ": " + e.what());
    }
}

}  // namespace chatd::auth
