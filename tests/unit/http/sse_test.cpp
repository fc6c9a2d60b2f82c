#include "http/sse.hpp"

#include <gtest/gtest.h>

namespace chatd::http {
namespace {

TEST(SseFormat, WritesEventIdAndData) {
    EXPECT_EQ(format_sse_event("delta", "msg_x.3", R"({"text":"abc"})"),
              "event: delta\nid: msg_x.3\ndata: {\"text\":\"abc\"}\n\n");
}

TEST(SseFormat, SplitsMultiLineDataIntoDataLines) {
    EXPECT_EQ(format_sse_event("", "", "a\nb\r\nc"), "data: a\ndata: b\ndata: c\n\n");
}

TEST(SseFormat, LeavesOutEmptyEventAndId) {
    EXPECT_EQ(format_sse_event("", "", "x"), "data: x\n\n");
}

TEST(SseFormat, WritesCommentsAndRetry) {
    EXPECT_EQ(format_sse_comment("ping"), ": ping\n\n");
    EXPECT_EQ(format_sse_retry(std::chrono::milliseconds(1000)), "retry: 1000\n\n");
}

}  // namespace
}  // namespace chatd::http
