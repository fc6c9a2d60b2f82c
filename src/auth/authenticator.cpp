#include "auth/authenticator.hpp"
#include "core/text.hpp"

#include <openssl/crypto.h>

#include <atomic>

#include <stdexcept>

namespace chatd::auth {
namespace {

// One value of a header that must appear once: a repeated header is refused,
// so a client cannot smuggle a second value past a gateway that set the first.
std::optional<std::string_view> single_header(const http::Request& r, std::string_view name) {
    auto [first, last] = r.equal_range(name);
    if (first == last || std::next(first) != last) return std::nullopt;
    return std::string_view(first->value().data(), first->value().size());
}

class NoAuth final : public Authenticator {
public:
    AuthMode mode() const override { return AuthMode::none; }
    Verdict authenticate(const http::Request&, const http::net::ip::address&,
                         std::int64_t) const override {
        return Verdict::accept(kLocalUser);
    }
};

class JwtAuth final : public Authenticator {
public:
    explicit JwtAuth(AuthConfig config) : config_(std::move(config)) {
        config_.jwt.keys = load_keys();
        verifier_ = std::make_shared<const JwtVerifier>(config_.jwt);
    }
    AuthMode mode() const override { return AuthMode::jwt; }
    Verdict authenticate(const http::Request& r, const http::net::ip::address&,
                         std::int64_t now) const override {
        auto token = bearer_token(r);
        if (!token) return Verdict::refuse("no bearer token");
        return verifier_.load()->verify(*token, now);
    }
    bool issues_sessions() const override { return true; }
    void reload() override {
        if (config_.jwt.alg == JwtAlg::hs256) return;  // the secret comes from the environment
        auto jwt = config_.jwt;
        jwt.keys = load_keys();
        verifier_ = std::make_shared<const JwtVerifier>(std::move(jwt));
    }

private:
    KeySet load_keys() const {
        const auto& c = config_;
        if (c.jwt.alg == JwtAlg::hs256) {
            if (c.jwt.secret.size() < kMinHs256SecretBytes)
                throw std::runtime_error("--auth jwt with HS256 needs a secret of at least " +
                                         std::to_string(kMinHs256SecretBytes) +
                                         " bytes in the --jwt-secret-env variable");
            return {};
        }
        if (c.jwt_public_key_file.empty() == c.jwt_jwks_file.empty())
            throw std::runtime_error("--auth jwt with " + std::string(to_string(c.jwt.alg)) +
                                     " needs exactly one of --jwt-public-key and --jwt-jwks-file");
        return c.jwt_jwks_file.empty() ? load_pem_public_key(c.jwt_public_key_file, c.jwt.alg)
                                       : load_jwks(c.jwt_jwks_file, c.jwt.alg);
    }

    AuthConfig config_;
    std::atomic<std::shared_ptr<const JwtVerifier>> verifier_;  // swapped whole by reload()
};

class ApiKeyAuth final : public Authenticator {
    static constexpr std::size_t kMaxKeyBytes = 1024;

public:
    explicit ApiKeyAuth(std::filesystem::path file) : file_(std::move(file)), table_(load(file_)) {}
    AuthMode mode() const override { return AuthMode::api_keys; }
    Verdict authenticate(const http::Request& r, const http::net::ip::address&,
                         std::int64_t) const override {
        auto token = bearer_token(r);
        if (!token) return Verdict::refuse("no bearer token");
        if (token->size() > kMaxKeyBytes) return Verdict::refuse("API key too long");
        auto hash = sha256_hex(*token);
        auto user = table_.load()->find_by_hash(hash);
        if (!user) return Verdict::refuse("unknown API key");
        auto verdict = Verdict::accept(std::move(*user));
        verdict.binding = std::move(hash);
        return verdict;
    }
    void reload() override { table_ = load(file_); }
    bool issues_sessions() const override { return true; }
    bool session_valid(const UserId& user, std::string_view binding) const override {
        auto listed = table_.load()->find_by_hash(std::string(binding));
        return listed && *listed == user;
    }

private:
    static std::shared_ptr<const ApiKeyTable> load(const std::filesystem::path& file) {
        if (file.empty()) throw std::runtime_error("--auth api-keys needs --api-keys-file");
        return std::make_shared<const ApiKeyTable>(ApiKeyTable::load(file));
    }

    std::filesystem::path file_;
    std::atomic<std::shared_ptr<const ApiKeyTable>> table_;  // swapped whole by reload()
};

class TrustedHeaderAuth final : public Authenticator {
public:
    explicit TrustedHeaderAuth(AuthConfig config) : config_(std::move(config)) {
        if (config_.trusted_proxies.empty() && config_.trusted_secret.empty())
            throw std::runtime_error(
                "--auth trusted-header believes a header only from a gateway: set "
                "--trusted-proxies, --trusted-secret-env, or both");
        if (config_.trusted_user_header.empty())
            throw std::runtime_error("--trusted-user-header must name a header");
    }
    AuthMode mode() const override { return AuthMode::trusted_header; }
    Verdict authenticate(const http::Request& r, const http::net::ip::address& peer,
                         std::int64_t) const override {
        const auto& c = config_;
        if (!c.trusted_proxies.empty() &&
            std::none_of(c.trusted_proxies.begin(), c.trusted_proxies.end(),
                         [&](const AddressRange& range) { return range.contains(peer); }))
            return Verdict::refuse("peer is not a trusted proxy");
        if (!c.trusted_secret.empty()) {
            auto secret = single_header(r, c.trusted_secret_header);
            if (!secret || secret->size() != c.trusted_secret.size() ||
                CRYPTO_memcmp(secret->data(), c.trusted_secret.data(), secret->size()) != 0)
                return Verdict::refuse("missing or wrong proxy secret");
        }
        auto user = single_header(r, c.trusted_user_header);
        if (!user || !is_valid_user_id(*user)) return Verdict::refuse("no valid user header");
        return Verdict::accept(UserId{std::string(*user)});
    }

private:
    AuthConfig config_;
};

}  // namespace

bool is_valid_user_id(std::string_view id) {
    if (id.empty() || id.size() > 255) return false;
    for (char c : id)
        if (c < 0x21 || c > 0x7E) return false;
    return true;
}

std::string_view to_string(AuthMode mode) {
    switch (mode) {
        case AuthMode::none:
            return "none";
        case AuthMode::jwt:
            return "jwt";
        case AuthMode::api_keys:
            return "api-keys";
        case AuthMode::trusted_header:
            return "trusted-header";
    }
    return "?";
}

std::optional<std::string_view> bearer_token(const http::Request& r) {
    auto value = single_header(r, "Authorization");
    if (!value) return std::nullopt;
    constexpr std::string_view kScheme = "bearer";
    if (value->size() <= kScheme.size() + 1 ||
        !iequals(value->substr(0, kScheme.size()), kScheme) || (*value)[kScheme.size()] != ' ')
        return std::nullopt;
    auto token = trim(value->substr(kScheme.size() + 1), " ");
    if (token.empty()) return std::nullopt;
    return token;
}

std::unique_ptr<Authenticator> make_authenticator(AuthConfig config) {
    switch (config.mode) {
        case AuthMode::jwt:
            return std::make_unique<JwtAuth>(std::move(config));
        case AuthMode::api_keys:
            return std::make_unique<ApiKeyAuth>(config.api_keys_file);
        case AuthMode::trusted_header:
            return std::make_unique<TrustedHeaderAuth>(std::move(config));
        case AuthMode::none:
            break;
    }
    return std::make_unique<NoAuth>();
}

}  // namespace chatd::auth
