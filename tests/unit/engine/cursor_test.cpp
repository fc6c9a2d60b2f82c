#include "engine/cursor.hpp"

#include <gtest/gtest.h>

namespace chatd::engine {
namespace {

const MessageId kId{"msg_01JABCDEFGHJKMNPQRSTVWXYZ0"};

TEST(Cursor, RoundTripsThroughItsEncoding) {
    Cursor c{kId, 1234};
    auto decoded = decode_cursor(encode_cursor(c));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, c);
}

TEST(Cursor, RoundTripsOffsetZero) {
    auto decoded = decode_cursor(encode_cursor({kId, 0}));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->offset, 0);
}

TEST(Cursor, RejectsMalformedText) {
    for (std::string_view bad :
         {"", "garbage", ".", "msg_01JABCDEFGHJKMNPQRSTVWXYZ0", "msg_01JABCDEFGHJKMNPQRSTVWXYZ0.",
          "msg_01JABCDEFGHJKMNPQRSTVWXYZ0.-1", "msg_01JABCDEFGHJKMNPQRSTVWXYZ0.+1",
          "msg_01JABCDEFGHJKMNPQRSTVWXYZ0.1x", "msg_01JABCDEFGHJKMNPQRSTVWXYZ0.007",
          "msg_01JABCDEFGHJKMNPQRSTVWXYZ0.1234567890123456", "ses_01JABCDEFGHJKMNPQRSTVWXYZ0.1",
          "msg_short.1", "msg_01jabcdefghjkmnpqrstvwxyz0.1", "msg_01JABCDEFGHJKMNPQRSTVWXYZ0. 1"}) {
        EXPECT_FALSE(decode_cursor(bad)) << bad;
        EXPECT_EQ(decode_cursor(bad).error(), Error::invalid_cursor) << bad;
    }
}

TEST(Cursor, AcceptsOffsetAtEndOfContent) {
    EXPECT_TRUE(check_cursor_offset("hello", 5));
    EXPECT_TRUE(check_cursor_offset("", 0));
}

TEST(Cursor, RejectsOffsetPastEndOfContent) {
    EXPECT_FALSE(check_cursor_offset("hello", 6));
    EXPECT_FALSE(check_cursor_offset("", 1));
}

TEST(Cursor, RejectsOffsetInsideUtf8Character) {
    std::string text = "caf\xC3\xA9 \xF0\x9F\x99\x82";  // "café 🙂"
    EXPECT_TRUE(check_cursor_offset(text, 3));
    EXPECT_FALSE(check_cursor_offset(text, 4));
    EXPECT_TRUE(check_cursor_offset(text, 5));
    EXPECT_TRUE(check_cursor_offset(text, 6));
    for (int i = 7; i < 10; ++i) EXPECT_FALSE(check_cursor_offset(text, i)) << i;
    EXPECT_TRUE(check_cursor_offset(text, 10));
}

TEST(Cursor, CarriesTheReasoningOffsetOnlyWhenThereIsOne) {
    EXPECT_EQ(encode_cursor({kId, 12}), kId.value + ".12");
    EXPECT_EQ(encode_cursor({kId, 12, 30}), kId.value + ".12.30");
    EXPECT_EQ(encode_cursor({kId, 0, 30}), kId.value + ".0.30");
    for (Cursor c : {Cursor{kId, 0, 7}, Cursor{kId, 5, 7}, Cursor{kId, 5, 0}}) {
        auto decoded = decode_cursor(encode_cursor(c));
        ASSERT_TRUE(decoded);
        EXPECT_EQ(*decoded, c);
    }
}

TEST(Cursor, RejectsMalformedReasoningOffsets) {
    // One cursor, one spelling: a zero reasoning offset is never written.
    for (std::string_view bad : {".1.0", ".1.", ".1.01", ".1.x", ".1.2.3", "..1", ".1.-2"}) {
        auto text = kId.value + std::string(bad);
        EXPECT_EQ(decode_cursor(text).error(), Error::invalid_cursor) << text;
    }
}

TEST(Cursor, ChecksBothOffsets) {
    EXPECT_TRUE(check_cursor({kId, 2, 3}, "ab", "xyz"));
    EXPECT_EQ(check_cursor({kId, 2, 4}, "ab", "xyz").error(), Error::cursor_out_of_range);
    EXPECT_EQ(check_cursor({kId, 3, 0}, "ab", "").error(), Error::cursor_out_of_range);
    EXPECT_EQ(check_cursor({kId, 0, 1}, "", "\xC3\xA9").error(), Error::cursor_out_of_range);
}

}  // namespace
}  // namespace chatd::engine
