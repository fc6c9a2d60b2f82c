#include "auth/jwt_verifier.hpp"

#include "support/jwt_signer.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace chatd::auth {
namespace {

namespace json = boost::json;
using test::b64;
using test::make_jwt;

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";
constexpr std::int64_t kNow = 1'800'000'000;

json::object hs_header() {
    return {{"alg", "HS256"}, {"typ", "JWT"}};
}
json::object claims(std::string sub = "alice") {
    return {{"sub", sub}, {"exp", kNow + 600}, {"iat", kNow}};
}
auto hs(std::string key = kSecret) {
    return [key](std::string_view input) { return test::hmac_sha256(key, input); };
}

JwtVerifier hs_verifier(JwtConfig c = {}) {
    c.alg = JwtAlg::hs256;
    c.secret = kSecret;
    return JwtVerifier(std::move(c));
}

void write_file(const std::filesystem::path& p, std::string_view text) {
    std::ofstream(p, std::ios::binary) << text;
}

TEST(JwtVerifier, AcceptsAValidHs256TokenAndTakesSubAsTheUser) {
    auto v = hs_verifier().verify(make_jwt(hs_header(), claims(), hs()), kNow);
    ASSERT_TRUE(v.user) << v.reason;
    EXPECT_EQ(v.user->value, "alice");
}

TEST(JwtVerifier, RefusesAnExpiredTokenPastTheLeeway) {
    auto c = claims();
    c["exp"] = kNow - 31;
    EXPECT_FALSE(hs_verifier().verify(make_jwt(hs_header(), c, hs()), kNow).user);
    c["exp"] = kNow - 10;  // within the 30 s leeway
    EXPECT_TRUE(hs_verifier().verify(make_jwt(hs_header(), c, hs()), kNow).user);
}

TEST(JwtVerifier, RefusesATokenNotYetValid) {
    auto c = claims();
    c["nbf"] = kNow + 600;
    EXPECT_FALSE(hs_verifier().verify(make_jwt(hs_header(), c, hs()), kNow).user);
    c["nbf"] = kNow + 10;  // within the leeway
    EXPECT_TRUE(hs_verifier().verify(make_jwt(hs_header(), c, hs()), kNow).user);
}

TEST(JwtVerifier, RefusesNonNumericTimes) {
    auto c = claims();
    c["exp"] = "tomorrow";
    EXPECT_FALSE(hs_verifier().verify(make_jwt(hs_header(), c, hs()), kNow).user);
}

TEST(JwtVerifier, RefusesAWrongSignature) {
    auto token = make_jwt(hs_header(), claims(), hs("another secret of a good length......"));
    EXPECT_FALSE(hs_verifier().verify(token, kNow).user);
}

TEST(JwtVerifier, RefusesATamperedPayload) {
    auto token = make_jwt(hs_header(), claims("alice"), hs());
    auto dot1 = token.find('.'), dot2 = token.rfind('.');
    auto forged =
        token.substr(0, dot1 + 1) + b64(json::serialize(claims("bob"))) + token.substr(dot2);
    EXPECT_FALSE(hs_verifier().verify(forged, kNow).user);
}

TEST(JwtVerifier, RefusesAlgNoneInEverySpelling) {
    for (auto alg : {"none", "None", "NONE", "nOnE"}) {
        json::object header{{"alg", alg}, {"typ", "JWT"}};
        auto unsigned_token = make_jwt(header, claims(), [](std::string_view) { return ""; });
        EXPECT_FALSE(hs_verifier().verify(unsigned_token, kNow).user) << alg;
        // Also with the HS256 signature attached.
        EXPECT_FALSE(hs_verifier().verify(make_jwt(header, claims(), hs()), kNow).user) << alg;
    }
}

TEST(JwtVerifier, RefusesEveryAlgorithmButTheConfiguredOne) {
    for (auto alg : {"HS384", "HS512", "RS256", "ES256", "hs256", "PS256", ""}) {
        json::object header{{"alg", alg}};
        EXPECT_FALSE(hs_verifier().verify(make_jwt(header, claims(), hs()), kNow).user) << alg;
    }
    json::object no_alg{{"typ", "JWT"}};
    EXPECT_FALSE(hs_verifier().verify(make_jwt(no_alg, claims(), hs()), kNow).user);
}

TEST(JwtVerifier, RefusesHs256SignedWithTheRs256PublicKey) {
    // Algorithm confusion: a verifier that let the token pick HMAC would
    // check this signature with the public key's PEM bytes as the secret.
    test::TempDir dir;
    auto rsa = test::generate_rsa();
    auto pem = test::public_pem(rsa);
    write_file(dir.path() / "key.pem", pem);
    JwtVerifier v(JwtConfig{.alg = JwtAlg::rs256,
                            .keys = load_pem_public_key(dir.path() / "key.pem", JwtAlg::rs256)});
    auto forged = make_jwt(hs_header(), claims(), hs(pem));
    EXPECT_FALSE(v.verify(forged, kNow).user);
    // The genuine RS256 token passes.
    auto genuine = make_jwt({{"alg", "RS256"}}, claims(),
                            [&](std::string_view in) { return test::sign_with(rsa, in); });
    EXPECT_TRUE(v.verify(genuine, kNow).user);
}

TEST(JwtVerifier, ChecksIssuerAndAudienceWhenConfigured) {
    auto v = hs_verifier({.issuer = "https://auth.example", .audience = "chatd"});
    auto c = claims();
    EXPECT_FALSE(v.verify(make_jwt(hs_header(), c, hs()), kNow).user);  // neither present
    c["iss"] = "https://auth.example";
    c["aud"] = "chatd";
    EXPECT_TRUE(v.verify(make_jwt(hs_header(), c, hs()), kNow).user);
    c["aud"] = json::array{"other", "chatd"};
    EXPECT_TRUE(v.verify(make_jwt(hs_header(), c, hs()), kNow).user);
    c["aud"] = json::array{"other"};
    EXPECT_FALSE(v.verify(make_jwt(hs_header(), c, hs()), kNow).user);
    c["aud"] = "chatd";
    c["iss"] = "https://evil.example";
    EXPECT_FALSE(v.verify(make_jwt(hs_header(), c, hs()), kNow).user);
}

TEST(JwtVerifier, RefusesAMissingOrInvalidSub) {
    auto c = claims();
    c.erase("sub");
    EXPECT_FALSE(hs_verifier().verify(make_jwt(hs_header(), c, hs()), kNow).user);
    for (auto bad : {"", "with space", "new\nline"}) {
        EXPECT_FALSE(hs_verifier().verify(make_jwt(hs_header(), claims(bad), hs()), kNow).user)
            << bad;
    }
    c["sub"] = 42;
    EXPECT_FALSE(hs_verifier().verify(make_jwt(hs_header(), c, hs()), kNow).user);
}

TEST(JwtVerifier, RefusesMalformedTokens) {
    auto good = make_jwt(hs_header(), claims(), hs());
    auto v = hs_verifier();
    for (std::string bad :
         {std::string(), std::string("abc"), std::string("a.b"), std::string("a.b.c.d"), good + ".",
          "." + good, good.substr(0, good.rfind('.')) + ".%%%",  // signature not base64url
          "!!!" + good.substr(good.find('.')),                   // header not base64url
          b64("[1,2]") + good.substr(good.find('.')),            // header not an object
          good + "=",                                            // padding
          std::string(good).insert(good.find('.') + 1, "A")})
        EXPECT_FALSE(v.verify(bad, kNow).user) << bad;
    EXPECT_TRUE(v.verify(good, kNow).user);
}

TEST(JwtVerifier, RefusesAnOversizedToken) {
    auto c = claims();
    c["pad"] = std::string(9000, 'x');
    EXPECT_FALSE(hs_verifier().verify(make_jwt(hs_header(), c, hs()), kNow).user);
}

TEST(JwtVerifier, RefusesCriticalHeaderExtensions) {
    auto h = hs_header();
    h["crit"] = json::array{"exp"};
    EXPECT_FALSE(hs_verifier().verify(make_jwt(h, claims(), hs()), kNow).user);
}

TEST(JwtVerifier, VerifiesEs256WithRawSignatures) {
    test::TempDir dir;
    auto ec = test::generate_p256();
    write_file(dir.path() / "key.pem", test::public_pem(ec));
    JwtVerifier v(JwtConfig{.alg = JwtAlg::es256,
                            .keys = load_pem_public_key(dir.path() / "key.pem", JwtAlg::es256)});
    auto sign = [&](std::string_view in) { return test::sign_with(ec, in); };
    EXPECT_TRUE(v.verify(make_jwt({{"alg", "ES256"}}, claims(), sign), kNow).user);
    // Another key's signature fails.
    auto other = test::generate_p256();
    auto other_sign = [&](std::string_view in) { return test::sign_with(other, in); };
    EXPECT_FALSE(v.verify(make_jwt({{"alg", "ES256"}}, claims(), other_sign), kNow).user);
}

TEST(JwtVerifier, PicksTheJwksKeyByKid) {
    auto k1 = test::generate_rsa(), k2 = test::generate_rsa();
    json::object jwks{
        {"keys", json::array{test::public_jwk(k1, "one"), test::public_jwk(k2, "two")}}};
    JwtVerifier v(
        JwtConfig{.alg = JwtAlg::rs256, .keys = parse_jwks(json::serialize(jwks), JwtAlg::rs256)});
    auto by = [](const test::KeyPtr& k) {
        return [k](std::string_view in) { return test::sign_with(k, in); };
    };
    EXPECT_TRUE(
        v.verify(make_jwt({{"alg", "RS256"}, {"kid", "two"}}, claims(), by(k2)), kNow).user);
    EXPECT_TRUE(
        v.verify(make_jwt({{"alg", "RS256"}, {"kid", "one"}}, claims(), by(k1)), kNow).user);
    // Signed by one, named as the other; an unknown kid; no kid among two keys.
    EXPECT_FALSE(
        v.verify(make_jwt({{"alg", "RS256"}, {"kid", "one"}}, claims(), by(k2)), kNow).user);
    EXPECT_FALSE(
        v.verify(make_jwt({{"alg", "RS256"}, {"kid", "three"}}, claims(), by(k1)), kNow).user);
    EXPECT_FALSE(v.verify(make_jwt({{"alg", "RS256"}}, claims(), by(k1)), kNow).user);
}

TEST(JwtVerifier, Es256JwksKeysWork) {
    auto k = test::generate_p256();
    json::object jwks{{"keys", json::array{test::public_jwk(k, "ec1")}}};
    JwtVerifier v(
        JwtConfig{.alg = JwtAlg::es256, .keys = parse_jwks(json::serialize(jwks), JwtAlg::es256)});
    auto sign = [&](std::string_view in) { return test::sign_with(k, in); };
    EXPECT_TRUE(v.verify(make_jwt({{"alg", "ES256"}, {"kid", "ec1"}}, claims(), sign), kNow).user);
    // One key: a token without kid uses it.
    EXPECT_TRUE(v.verify(make_jwt({{"alg", "ES256"}}, claims(), sign), kNow).user);
}

TEST(PublicKeys, RefuseKeysOfTheWrongKind) {
    test::TempDir dir;
    write_file(dir.path() / "ec.pem", test::public_pem(test::generate_p256()));
    EXPECT_THROW(load_pem_public_key(dir.path() / "ec.pem", JwtAlg::rs256), std::runtime_error);
    write_file(dir.path() / "junk.pem", "not a key");
    EXPECT_THROW(load_pem_public_key(dir.path() / "junk.pem", JwtAlg::es256), std::runtime_error);
    EXPECT_THROW(parse_jwks(R"({"keys":[]})", JwtAlg::rs256), std::runtime_error);
    EXPECT_THROW(parse_jwks("[]", JwtAlg::rs256), std::runtime_error);
    json::object jwks{{"keys", json::array{test::public_jwk(test::generate_p256(), "ec")}}};
    EXPECT_THROW(parse_jwks(json::serialize(jwks), JwtAlg::rs256), std::runtime_error);
}

}  // namespace
}  // namespace chatd::auth
