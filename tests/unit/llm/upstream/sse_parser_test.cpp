#include "llm/upstream/sse_parser.hpp"

#include <gtest/gtest.h>

namespace chatd::llm::upstream {
namespace {

std::vector<SseEvent> parse(std::initializer_list<std::string_view> pieces) {
    SseParser p;
    std::vector<SseEvent> out;
    for (auto piece : pieces) EXPECT_TRUE(p.feed(piece, out));
    return out;
}

TEST(SseParser, JoinsDataLinesAndKeepsTheEventName) {
    auto events = parse({"event: x\ndata: a\ndata:b\n\n: comment\ndata: c\n\n"});
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].event, "x");
    EXPECT_EQ(events[0].data, "a\nb");
    EXPECT_EQ(events[1].event, "");
    EXPECT_EQ(events[1].data, "c");
}

TEST(SseParser, AcceptsCrLfAndLoneCrSplitAnywhere) {
    auto events = parse({"data: one\r", "\n\r", "\ndata: two\r\rdata: three\n", "\n"});
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].data, "one");
    EXPECT_EQ(events[1].data, "two");
    EXPECT_EQ(events[2].data, "three");
}

TEST(SseParser, SkipsAByteOrderMarkSplitAcrossReads) {
    auto events = parse({"\xEF", "\xBB",
                         "\xBF"
                         "data: x\n\n"});
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "x");
}

TEST(SseParser, AnEventWithoutDataIsNotDispatchedAndAnUnfinishedOneIsHeld) {
    auto events = parse({"event: ping\n\n", "data: partial"});
    EXPECT_TRUE(events.empty());
}

TEST(SseParser, AnOversizedEventFailsInsteadOfGrowing) {
    SseParser p(16);
    std::vector<SseEvent> out;
    EXPECT_TRUE(p.feed("data: 0123456789\n", out));
    EXPECT_FALSE(p.feed("data: 0123456789\n", out));
    EXPECT_TRUE(p.failed());
    EXPECT_FALSE(p.feed("\n", out));
    EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace chatd::llm::upstream
