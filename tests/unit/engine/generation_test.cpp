#include "engine/generation.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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
    EXPECT_EQ(g.committed(), "");
    g.committed(w, 123, 2);
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
    g.committed(w, 1, 2);
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
    g.committed(w, 5, 2);
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
    g.committed(first, 1, 2);
    auto last = g.take(CommitMode::per_chunk);
    EXPECT_TRUE(last.terminal);
    EXPECT_EQ(last.full_content, "ab");
}

// A write the store refused: nothing after the committed text can follow it,
// so what is pending goes and the end asked for instead replaces any other.
TEST(Generation, EndAfterCommittedDropsWhatCannotBeStored) {
    auto g = make_generation();
    g.append("kept ");
    auto w = g.take(CommitMode::group);
    g.committed(w, 1, 2);
    g.append("refused ");
    auto refused = g.take(CommitMode::group);
    g.append("after");
    g.finish(ended_as(store::MessageStatus::completed));
    g.end_after_committed(ended_as(store::MessageStatus::error, "store_failure"));
    EXPECT_EQ(g.produced_bytes(), 5u);
    auto end = g.take(CommitMode::group);
    EXPECT_EQ(end.offset, 5);
    EXPECT_EQ(end.text, "");
    ASSERT_TRUE(end.terminal);
    EXPECT_EQ(end.terminal->error->code, "store_failure");
    EXPECT_EQ(end.full_content, "kept ");
}

TEST(Generation, AdoptEndTakesTheStoredEndAndWakesSubscribers) {
    boost::asio::io_context io;
    auto g = make_generation();
    auto wakeup = std::make_shared<Wakeup>(io.get_executor());
    g.subscribe(wakeup);
    bool woken = false;
    boost::asio::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            co_await wakeup->wait();
            woken = true;
        },
        boost::asio::detached);
    io.poll();
    g.append("lost");
    auto stored = g.message();
    stored.status = store::MessageStatus::cancelled;
    stored.content = "as stored";
    g.adopt_end(stored);
    io.poll();
    EXPECT_TRUE(woken);
    EXPECT_TRUE(g.ended());
    EXPECT_FALSE(g.has_pending());
    EXPECT_EQ(g.committed(), "as stored");
    EXPECT_TRUE(g.settled());
}

TEST(Generation, ReasoningCommitsBesideTheTextNeverInIt) {
    auto g = make_generation();
    g.append_reasoning("Let me think. ");
    g.append_reasoning("42.");
    g.append("The answer");
    EXPECT_EQ(g.uncommitted_bytes(), 27u);
    EXPECT_FALSE(g.settled());
    auto w = g.take(CommitMode::group);
    EXPECT_EQ(w.reasoning, "Let me think. 42.");
    EXPECT_EQ(w.reasoning_offset, 0);
    EXPECT_EQ(w.text, "The answer");
    EXPECT_FALSE(g.has_pending());
    EXPECT_TRUE(g.message().reasoning.empty()) << "invisible until committed (I1)";
    g.committed(w, 1, 2);
    EXPECT_EQ(g.message().reasoning, "Let me think. 42.");
    EXPECT_EQ(g.committed(), "The answer");
    EXPECT_TRUE(g.settled());
    g.append_reasoning(" More.");
    auto next = g.take(CommitMode::group);
    EXPECT_EQ(next.reasoning_offset, 17);
    EXPECT_EQ(next.offset, 10);
    EXPECT_TRUE(next.text.empty());
}

TEST(Generation, FailedCommitRestoresReasoningInFrontOfNewer) {
    auto g = make_generation();
    g.append_reasoning("first ");
    auto w = g.take(CommitMode::per_chunk);
    EXPECT_EQ(w.reasoning, "first ");
    g.append_reasoning("second");
    g.restore(std::move(w));
    auto again = g.take(CommitMode::group);
    EXPECT_EQ(again.reasoning, "first second");
    EXPECT_EQ(again.reasoning_offset, 0);
}

TEST(Generation, MovingAwayDropsUncommittedReasoning) {
    auto g = make_generation();
    g.append_reasoning("unseen");
    g.move_away();
    EXPECT_TRUE(g.settled());
    EXPECT_FALSE(g.has_pending());
    EXPECT_EQ(g.produced_reasoning_bytes(), 0u);
}

}  // namespace
}  // namespace chatd::engine
