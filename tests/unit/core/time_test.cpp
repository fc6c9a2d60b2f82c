#include "core/time.hpp"

#include <gtest/gtest.h>

namespace chatd {
namespace {

TEST(Time, FormatsUtcWithMilliseconds) {
    EXPECT_EQ(format_iso8601(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_iso8601(1759257900123), "2025-09-30T18:45:00.123Z");
}

TEST(Time, ParsesWhatItFormats) {
    EXPECT_EQ(parse_iso8601("2025-09-30T18:45:00.123Z"), 1759257900123);
    EXPECT_EQ(parse_iso8601("2025-09-30T18:45:00Z"), 1759257900000);
}

TEST(Time, ParsesOffsets) {
    EXPECT_EQ(parse_iso8601("2025-09-30T20:45:00.123+02:00"), 1759257900123);
    EXPECT_EQ(parse_iso8601("2025-09-30T17:45:00.123-01:00"), 1759257900123);
}

TEST(Time, RejectsAnythingElse) {
    for (auto bad :
         {"", "yesterday", "2025-09-30", "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z",
          "2025-09-30T18:45:00", "2025-09-30T18:45:00.Z", "2025-09-30T18:45:00Zjunk", "c12"})
        EXPECT_FALSE(parse_iso8601(bad)) << bad;
}

}  // namespace
}  // namespace chatd
