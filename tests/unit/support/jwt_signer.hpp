#pragma once
// Makes JWTs for tests with OpenSSL directly: HS256 with a secret, RS256 and
// ES256 with freshly generated keys, whose public halves it exports as PEM and
// as JWKs. Independent of the verifier under test: a shared bug cannot hide.
#include "auth/base64url.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <memory>
#include <stdexcept>
#include <string>

namespace chatd::test {

using KeyPtr = std::shared_ptr<EVP_PKEY>;

inline KeyPtr generate_rsa() {
    return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}), EVP_PKEY_free);
}
inline KeyPtr generate_p256() {
    return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
}

inline std::string b64(std::string_view s) {
    return auth::encode_base64url(s);
}

inline std::string public_pem(const KeyPtr& key) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key.get());
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(len));
    BIO_free(bio);
    return out;
}

inline std::string bn_bytes(const KeyPtr& key, const char* name) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key.get(), name, &bn);
    std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    return out;
}

// The public key as a JWK object (RSA or EC P-256).
inline boost::json::object public_jwk(const KeyPtr& key, std::string kid) {
    boost::json::object jwk{{"kid", kid}, {"use", "sig"}};
    if (EVP_PKEY_is_a(key.get(), "RSA")) {
        jwk["kty"] = "RSA";
        jwk["n"] = b64(bn_bytes(key, OSSL_PKEY_PARAM_RSA_N));
        jwk["e"] = b64(bn_bytes(key, OSSL_PKEY_PARAM_RSA_E));
    } else {
        unsigned char point[65];
        std::size_t len = 0;
        EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
                                        &len);
        if (len != 65) throw std::runtime_error("expected an uncompressed P-256 point");
        jwk["kty"] = "EC";
        jwk["crv"] = "P-256";
        jwk["x"] = b64(std::string_view(reinterpret_cast<char*>(point) + 1, 32));
        jwk["y"] = b64(std::string_view(reinterpret_cast<char*>(point) + 33, 32));
    }
    return jwk;
}

inline std::string hmac_sha256(std::string_view key, std::string_view input) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return std::string(reinterpret_cast<char*>(mac), len);
}

inline std::string sign_with(const KeyPtr& key, std::string_view input) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get());
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    if (!EVP_PKEY_is_a(key.get(), "EC")) return sig;
    // DER ECDSA -> JOSE r||s.
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(es);
    return raw;
}

// header.payload.signature from JSON objects; `sign` maps the signing input
// to the raw signature.
template <class Sign>
std::string make_jwt(const boost::json::object& header, const boost::json::object& claims,
                     Sign sign) {
    auto input = b64(boost::json::serialize(header)) + "." + b64(boost::json::serialize(claims));
    return input + "." + b64(sign(input));
}

}  // namespace chatd::test
