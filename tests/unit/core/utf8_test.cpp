#include "core/utf8.hpp"

#include <gtest/gtest.h>

namespace chatd {
namespace {

const std::string kText = "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x99\x82";  // "aé日🙂"

TEST(Utf8, BoundariesFallBetweenCharacters) {
    std::vector<std::size_t> boundaries;
    for (std::size_t i = 0; i <= kText.size(); ++i)
        if (is_utf8_boundary(kText, i)) boundaries.push_back(i);
    EXPECT_EQ(boundaries, (std::vector<std::size_t>{0, 1, 3, 6, 10}));
}

TEST(Utf8, OffsetPastEndIsNoBoundary) {
    EXPECT_FALSE(is_utf8_boundary(kText, 11));
}

TEST(Utf8, FloorMovesBackToCharacterStart) {
    EXPECT_EQ(utf8_floor(kText, 2), 1u);
    EXPECT_EQ(utf8_floor(kText, 5), 3u);
    EXPECT_EQ(utf8_floor(kText, 9), 6u);
    EXPECT_EQ(utf8_floor(kText, 99), kText.size());
}

TEST(Utf8, ValidatesEncodings) {
    EXPECT_TRUE(is_valid_utf8(kText));
    EXPECT_TRUE(is_valid_utf8(""));
    EXPECT_FALSE(is_valid_utf8("\xC3"));              // truncated
    EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
    EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
    EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
    EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation
}

}  // namespace
}  // namespace chatd
