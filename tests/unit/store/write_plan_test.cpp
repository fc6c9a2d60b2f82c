#include "store/write_plan.hpp"

#include "core/error.hpp"

#include <gtest/gtest.h>

namespace chatd::store {
namespace {

using Action = WritePlan::Action;

MessageWrite chunk(std::int64_t offset, std::string text) {
    return MessageWrite{.id = MessageId{"msg_1"}, .offset = offset, .text = std::move(text)};
}

MessageWrite end(std::int64_t offset, std::string text, std::string full,
                 MessageStatus status = MessageStatus::completed) {
    auto w = chunk(offset, std::move(text));
    w.terminal = Terminal{.status = status};
    w.full_content = std::move(full);
    return w;
}

StoredTail live(std::int64_t end, std::int64_t version) {
    return StoredTail{.status = MessageStatus::generating, .end = end, .version = version};
}

TEST(WritePlan, TextAtTheStoredEndIsStored) {
    auto w = chunk(5, "world");
    auto plan = plan_write(w, live(5, 2));
    EXPECT_EQ(plan.action, Action::store);
    EXPECT_EQ(plan.offset, 5);
    EXPECT_EQ(plan.text, "world");
    EXPECT_EQ(plan.version, 3);
}

TEST(WritePlan, TextAlreadyStoredIsSkippedWithTheStoredVersion) {
    auto w = chunk(0, "Hello");
    auto plan = plan_write(w, live(5, 2));
    EXPECT_EQ(plan.action, Action::skip);
    EXPECT_EQ(plan.version, 2);
}

TEST(WritePlan, ARetryGrownByLaterTextStoresOnlyTheRest) {
    auto w = chunk(0, "Hello, wörld");
    auto plan = plan_write(w, live(5, 2));
    EXPECT_EQ(plan.action, Action::store);
    EXPECT_EQ(plan.offset, 5);
    EXPECT_EQ(plan.text, ", wörld");
}

// Fencing: a write of another lease epoch than the message's is refused,
// even one whose text is already stored (the old owner learns it lost).
TEST(WritePlan, AWriteOfAnotherLeaseEpochIsRefused) {
    auto tail = live(5, 2);
    tail.epoch = 3;
    for (std::int64_t epoch : {2, 4}) {
        auto w = chunk(5, "world");
        w.epoch = epoch;
        auto plan = plan_write(w, tail);
        EXPECT_EQ(plan.action, Action::refuse) << epoch;
        EXPECT_EQ(plan.error, Error::lease_lost) << epoch;
        auto old = chunk(0, "Hello");
        old.epoch = epoch;
        EXPECT_EQ(plan_write(old, tail).error, Error::lease_lost) << epoch;
    }
    auto w = chunk(5, "world");
    w.epoch = 3;
    EXPECT_EQ(plan_write(w, tail).action, Action::store);
}

TEST(WritePlan, AGapIsRefused) {
    auto plan = plan_write(chunk(6, "x"), live(5, 2));
    EXPECT_EQ(plan.action, Action::refuse);
    EXPECT_EQ(plan.error, Error::store_failure);
}

TEST(WritePlan, AnUnknownMessageIsRefused) {
    auto plan = plan_write(chunk(0, "x"), std::nullopt);
    EXPECT_EQ(plan.action, Action::refuse);
    EXPECT_EQ(plan.error, Error::not_generating);
}

TEST(WritePlan, TextPastTheLargestMessageIsRefused) {
    auto w = chunk(kMaxContentBytes - 1, "ab");
    auto plan = plan_write(w, live(kMaxContentBytes - 1, 9));
    EXPECT_EQ(plan.action, Action::refuse);
    EXPECT_EQ(plan.error, Error::store_failure);
    EXPECT_EQ(plan_write(chunk(kMaxContentBytes - 1, "a"), live(kMaxContentBytes - 1, 9)).action,
              Action::store);
}

TEST(WritePlan, AnEndIsStoredEvenWithItsTextAlreadyStored) {
    auto w = end(0, "Hello", "Hello");
    auto plan = plan_write(w, live(5, 2));
    EXPECT_EQ(plan.action, Action::store);
    EXPECT_EQ(plan.text, "");
    EXPECT_EQ(plan.version, 3);
}

TEST(WritePlan, AnEndWhoseWholeContentDisagreesIsRefused) {
    auto plan = plan_write(end(5, "!", "Hello"), live(5, 2));
    EXPECT_EQ(plan.action, Action::refuse);
    EXPECT_EQ(plan.error, Error::store_failure);
}

TEST(WritePlan, AnEndedMessageTakesOnlyItsOwnEndAgain) {
    StoredTail ended{.status = MessageStatus::completed, .end = 6, .version = 4};
    auto retried = plan_write(end(5, "!", "Hello!"), ended);
    EXPECT_EQ(retried.action, Action::skip);
    EXPECT_EQ(retried.version, 4);
    EXPECT_EQ(plan_write(end(5, "!", "Hello!", MessageStatus::cancelled), ended).error,
              Error::not_generating);
    EXPECT_EQ(plan_write(chunk(6, "more"), ended).error, Error::not_generating);
}

MessageWrite thought(std::int64_t offset, std::string reasoning, std::int64_t text_offset = 0) {
    auto w = chunk(text_offset, "");
    w.reasoning_offset = offset;
    w.reasoning = std::move(reasoning);
    return w;
}

StoredTail thinking(std::int64_t reasoning_end, std::int64_t version) {
    auto t = live(0, version);
    t.reasoning_end = reasoning_end;
    return t;
}

TEST(WritePlan, ReasoningAtItsStoredEndIsStoredAlone) {
    auto w = thought(4, "more");
    auto plan = plan_write(w, thinking(4, 3));
    EXPECT_EQ(plan.action, Action::store);
    EXPECT_EQ(plan.reasoning, "more");
    EXPECT_TRUE(plan.text.empty());
    EXPECT_EQ(plan.version, 4);
}

TEST(WritePlan, ARetriedReasoningWriteStoresOnlyTheRest) {
    auto w = thought(0, "abcdef");
    auto plan = plan_write(w, thinking(4, 3));
    EXPECT_EQ(plan.action, Action::store);
    EXPECT_EQ(plan.reasoning, "ef");
    EXPECT_EQ(plan_write(thought(0, "abcd"), thinking(4, 3)).action, Action::skip);
}

TEST(WritePlan, AGapInTheReasoningIsRefused) {
    EXPECT_EQ(plan_write(thought(5, "x"), thinking(4, 3)).error, Error::store_failure);
    EXPECT_EQ(plan_write(thought(-1, "x"), thinking(4, 3)).error, Error::store_failure);
    EXPECT_EQ(plan_write(thought(kMaxContentBytes, "x"), thinking(kMaxContentBytes, 3)).error,
              Error::store_failure);
}

TEST(WritePlan, TextAndReasoningOfOneWriteAreSkippedApart) {
    auto w = thought(0, "think", 0);
    w.text = "answer";
    auto tail = live(6, 5);
    tail.reasoning_end = 2;
    auto plan = plan_write(w, tail);
    EXPECT_EQ(plan.action, Action::store);
    EXPECT_TRUE(plan.text.empty());
    EXPECT_EQ(plan.reasoning, "ink");
}

}  // namespace
}  // namespace chatd::store
