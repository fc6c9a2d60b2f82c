#include "auth/api_key_table.hpp"

#include <gtest/gtest.h>

namespace chatd::auth {
namespace {

TEST(ApiKeyTable, MapsAKeyToItsUserByItsSha256) {
    auto table = ApiKeyTable::parse("# team keys\n\n" + sha256_hex("key-alice") + " alice\n" +
                                    sha256_hex("key-bob") + "\tbob  \r\n");
    EXPECT_EQ(table.size(), 2u);
    EXPECT_EQ(table.find("key-alice")->value, "alice");
    EXPECT_EQ(table.find("key-bob")->value, "bob");
    EXPECT_FALSE(table.find("key-carol"));
    EXPECT_FALSE(table.find(""));
    // The hash itself is not a key.
    EXPECT_FALSE(table.find(sha256_hex("key-alice")));
}

TEST(ApiKeyTable, Sha256HexMatchesAKnownVector) {
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeyTable, RefusesMalformedLinesNamingThem) {
    auto h = sha256_hex("k");
    for (auto bad : {std::string("nothex alice"), h.substr(1) + " alice", h + " ", h + " has space",
                     h + " a\n" + h + " b", std::string(64, 'A') + " upper"}) {
        try {
            ApiKeyTable::parse(bad);
            ADD_FAILURE() << bad;
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("line "), std::string::npos);
        }
    }
}

}  // namespace
}  // namespace chatd::auth
