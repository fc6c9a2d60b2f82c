#pragma once
// Verification keys for JWT signatures: the algorithm chatd is configured
// with, and the public keys (RS256, ES256) loaded from a PEM file or a JWKS
// document. Loading throws std::runtime_error with a clear message: it runs
// at start-up and on SIGHUP, never per request.
#include <openssl/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::auth {

enum class JwtAlg { hs256, rs256, es256 };

std::optional<JwtAlg> jwt_alg_from_string(std::string_view s);  // exact JOSE names
std::string_view to_string(JwtAlg alg);

using PublicKey = std::shared_ptr<EVP_PKEY>;

struct KeySet {
    struct Entry {
        std::string kid;  // empty for a PEM key
        PublicKey key;
    };
    std::vector<Entry> keys;

    // The key for a token's `kid`: the one with that kid; a token without a
    // kid uses the only key of a one-key set. nullptr otherwise.
    const EVP_PKEY* find(const std::optional<std::string>& kid) const;
};

// One PEM public key ("BEGIN PUBLIC KEY") of the type `alg` needs: RSA of at
// least 2048 bits for RS256, EC P-256 for ES256.
KeySet load_pem_public_key(const std::filesystem::path& file, JwtAlg alg);
// A JWKS document ({"keys": [...]}): keeps the signing keys usable with `alg`
// (kty RSA or EC P-256, `use` absent or "sig", `alg` absent or equal); throws
// when none is.
KeySet parse_jwks(std::string_view json, JwtAlg alg);
KeySet load_jwks(const std::filesystem::path& file, JwtAlg alg);

// The whole file, or throws (start-up and reload only).
std::string read_small_file(const std::filesystem::path& file, std::size_t max_bytes);

}  // namespace chatd::auth
