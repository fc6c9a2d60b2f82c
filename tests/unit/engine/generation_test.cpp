#include "engine/generation.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

namespace chatd::engine {
namespace {

Generation make_generation() {
    return Generation(store::Message{.id = MessageId{"msg_1"},
                                     .role = store::Role::assistant,
                                     .status = store::MessageStatus::generating},
                      UserId{"usr_1"}, GenerationSlots::Slot{});
}

store::Terminal ended_as(store::MessageStatus status, std::string code = {}) {
    store::Terminal t{.status = status};
    if (!code.empty()) t.error = store::MessageError{code, code};
    return t;
}

TEST(Generation, PendingTextIsInvisibleUntilCommitted) {
    auto g = make_generation();
    g.append("Hello, ");
    g.append("wörld");
    EXPECT_EQ(g.committed(), "");
    auto w = g.take(CommitMode::group);
    EXPECT_EQ(w.text, "Hello, wörld");
    EXPECT_EQ(w.offset, 0);
    EXPECT_EQ(w.version, 2);
    EXPECT_EQ(g.committed(), "");
    g.committed(w, 123);
    EXPECT_EQ(g.committed(), "Hello, wörld");
    EXPECT_EQ(g.message().version, 2);
    EXPECT_EQ(g.message().last_updated, 123);
}

TEST(Generation, PerChunkModeTakesOneTokenAndRewritesContent) {
    auto g = make_generation();
    g.append("a");
    g.append("b");
    auto w = g.take(CommitMode::per_chunk);
    EXPECT_EQ(w.text, "a");
    EXPECT_TRUE(w.rewrite_content);
    EXPECT_EQ(w.full_content, "a");
    g.committed(w, 1);
    auto w2 = g.take(CommitMode::per_chunk);
    EXPECT_EQ(w2.full_content, "ab");
    EXPECT_EQ(w2.offset, 1);
}

TEST(Generation, FirstTerminalStateWinsAlsoWhileItCommits) {
    auto g = make_generation();
    g.append("partial");
    g.finish(ended_as(store::MessageStatus::error, "interrupted"));
    auto w = g.take(CommitMode::group);
    ASSERT_TRUE(w.terminal);
    EXPECT_EQ(w.full_content, "partial");
    // The terminal state is in flight: a late request must not replace it.
    EXPECT_TRUE(g.finishing());
    g.finish(ended_as(store::MessageStatus::error, "cancelled"));
    g.append("more");
    EXPECT_FALSE(g.has_pending());
    g.committed(w, 5);
    EXPECT_TRUE(g.ended());
    EXPECT_EQ(g.message().error->code, "interrupted");
    EXPECT_EQ(g.committed(), "partial");
}

TEST(Generation, FailedCommitIsRestoredInFrontOfNewerText) {
    auto g = make_generation();
    g.append("one ");
    auto w = g.take(CommitMode::group);
    g.append("two");
    g.restore(std::move(w));
    auto again = g.take(CommitMode::group);
    EXPECT_EQ(again.text, "one two");
    EXPECT_EQ(again.offset, 0);
}

TEST(Generation, TerminalWaitsUntilPendingTextIsTakenInPerChunkMode) {
    auto g = make_generation();
    g.append("a");
    g.append("b");
    g.finish(ended_as(store::MessageStatus::completed));
    auto first = g.take(CommitMode::per_chunk);
    EXPECT_FALSE(first.terminal);
    g.committed(first, 1);
    auto last = g.take(CommitMode::per_chunk);
    EXPECT_TRUE(last.terminal);
    EXPECT_EQ(last.full_content, "ab");
}

}  // namespace
}  // namespace chatd::engine
