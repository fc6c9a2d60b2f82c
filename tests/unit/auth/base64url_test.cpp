#include "auth/base64url.hpp"

#include <gtest/gtest.h>

namespace chatd::auth {
namespace {

TEST(Base64url, RoundTripsEveryLength) {
    std::string bytes;
    for (int i = 0; i < 70; ++i) {
        auto decoded = decode_base64url(encode_base64url(bytes));
        ASSERT_TRUE(decoded) << i;
        EXPECT_EQ(*decoded, bytes);
        bytes.push_back(static_cast<char>(i * 37));
    }
}

TEST(Base64url, MatchesTheRfcAlphabet) {
    EXPECT_EQ(encode_base64url("\xfb\xff"), "-_8");
    EXPECT_EQ(decode_base64url("-_8").value(), "\xfb\xff");
}

TEST(Base64url, RefusesPaddingForeignBytesImpossibleLengthsAndLooseTails) {
    for (auto bad : {"QQ==", "QQ=", "Q", "QUJD+", "QUJD/", "QU JD", "QR"})
        EXPECT_FALSE(decode_base64url(bad)) << bad;
    EXPECT_EQ(decode_base64url("QQ").value(), "A");
}

}  // namespace
}  // namespace chatd::auth
