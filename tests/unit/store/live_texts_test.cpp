#include "store/sqlite/live_texts.hpp"

#include <gtest/gtest.h>

namespace chatd::store::sqlite {
namespace {

LiveTexts::Update loaded(std::string_view id, std::string text, std::int64_t epoch = 1) {
    return LiveTexts::Update{
        .id = id, .base = LiveTexts::Tail{.text = std::move(text), .version = 2, .epoch = epoch}};
}

LiveTexts::Update appended(std::string_view id, std::string_view text, std::int64_t seq) {
    return LiveTexts::Update{
        .id = id, .text = text, .version = seq, .change_seq = seq, .at = seq * 10};
}

TEST(LiveTextsTest, ACommitAppendsToWhatWasLoaded) {
    LiveTexts live;
    std::vector updates{loaded("m", "Hel"), appended("m", "lo", 7)};
    live.committed(updates, 7);
    const auto* t = live.find("m");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->text, "Hello");
    EXPECT_EQ(t->version, 7);
    EXPECT_EQ(t->change_seq, 7);
    EXPECT_EQ(t->last_updated, 70);
    auto piece = live.read("m", 1, 7, 2);
    ASSERT_TRUE(piece);
    EXPECT_EQ(piece->offset, 2);
    EXPECT_EQ(piece->text, "llo");
    EXPECT_EQ(piece->version, 7);
}

// A reader whose snapshot holds a change sequence the writer has not
// accounted for (another store's commit) reads the log instead, as does one
// that sees another lease epoch (the message changed hands).
TEST(LiveTextsTest, AReaderTrustsItOnlyForSnapshotsItAccountsFor) {
    LiveTexts live;
    std::vector updates{loaded("m", "Hello")};
    live.committed(updates, 10);
    EXPECT_TRUE(live.read("m", 1, 10, 0));
    EXPECT_TRUE(live.read("m", 1, 9, 0));  // an older snapshot: the text is newer, and durable
    EXPECT_FALSE(live.read("m", 1, 11, 0));
    EXPECT_FALSE(live.read("m", 2, 10, 0));
    EXPECT_FALSE(live.read("unknown", 1, 10, 0));
    // The writer's own other transactions extend it; someone else's in
    // between do not.
    live.advance(10, 12);
    EXPECT_TRUE(live.read("m", 1, 12, 0));
    live.advance(13, 15);
    EXPECT_FALSE(live.read("m", 1, 15, 0));
    std::vector none = std::vector<LiveTexts::Update>{};
    live.committed(none, 16);  // the writer's next commit, after it rebuilt what it needs
    EXPECT_TRUE(live.read("m", 1, 16, 0));
    live.forget_all();
    EXPECT_FALSE(live.read("m", 1, 16, 0));
}

TEST(LiveTextsTest, EndedForgottenAndNoLongerGeneratingMessagesGo) {
    LiveTexts live;
    std::vector updates{loaded("a", "x"), loaded("b", "y"), loaded("c", "z"), loaded("d", "w")};
    live.committed(updates, 1);
    std::vector ends{LiveTexts::Update{.id = "a", .ended = true}};
    live.committed(ends, 2);
    live.forget({"b"});
    live.retain({"c"});
    EXPECT_EQ(live.size(), 1u);
    EXPECT_NE(live.find("c"), nullptr);
    // An update for a message forgotten meanwhile (and not loaded) is dropped.
    std::vector late{appended("b", "!", 3)};
    live.committed(late, 3);
    EXPECT_EQ(live.find("b"), nullptr);
}

TEST(LiveTextsTest, ARewriteReplacesTheText) {
    LiveTexts live;
    std::vector updates{loaded("m", "old")};
    live.committed(updates, 1);
    std::vector rewrite{LiveTexts::Update{.id = "m", .replace = "new text", .version = 3}};
    live.committed(rewrite, 2);
    EXPECT_EQ(live.find("m")->text, "new text");
    EXPECT_EQ(live.find("m")->version, 3);
}

}  // namespace
}  // namespace chatd::store::sqlite
