#include "store/postgres/pg_notices.hpp"

#include <gtest/gtest.h>

namespace chatd::store::postgres {
namespace {

TEST(PgNotices, NamesTravelAndComeBack) {
    ChangeNotice sent{.messages = {MessageId{"msg_a"}, MessageId{"msg_b"}},
                      .sessions = {SessionId{"ses_c"}}};
    auto payload = encode_notice(sent);
    EXPECT_EQ(payload, "m:msg_a m:msg_b s:ses_c");
    ChangeNotice got;
    decode_notice(payload, got);
    EXPECT_EQ(got.messages, sent.messages);
    EXPECT_EQ(got.sessions, sent.sessions);
    EXPECT_FALSE(got.everything);
}

TEST(PgNotices, TooManyNamesForOnePayloadSayEverything) {
    ChangeNotice sent;
    for (int i = 0; i < 1000; ++i) sent.messages.push_back(MessageId{"msg_" + std::to_string(i)});
    auto payload = encode_notice(sent);
    EXPECT_EQ(payload, "*");
    ChangeNotice got;
    decode_notice(payload, got);
    EXPECT_TRUE(got.everything);
}

TEST(PgNotices, ChunkTextTravelsWhateverItHolds) {
    ChangeNotice sent{.messages = {MessageId{"msg_end"}},
                      .chunks = {{.id = MessageId{"msg_a"},
                                  .offset = 7,
                                  .text = "wörld: a b  c:1 m:x *",
                                  .version = 3,
                                  .at = 1700000000123},
                                 {.id = MessageId{"msg_b"}, .offset = 0, .text = " ", .version = 2}}};
    ChangeNotice got;
    decode_notice(encode_notice(sent), got);
    EXPECT_FALSE(got.everything);
    EXPECT_EQ(got.messages, sent.messages);
    ASSERT_EQ(got.chunks.size(), 2u);
    EXPECT_EQ(got.chunks[0].id, sent.chunks[0].id);
    EXPECT_EQ(got.chunks[0].offset, 7);
    EXPECT_EQ(got.chunks[0].text, sent.chunks[0].text);
    EXPECT_EQ(got.chunks[0].version, 3);
    EXPECT_EQ(got.chunks[0].at, 1700000000123);
    EXPECT_EQ(got.chunks[1].text, " ");
}

// Text that does not fit is left for the follower to read: its message is
// still named.
TEST(PgNotices, ChunksThatDoNotFitAreNamedOnly) {
    ChangeNotice sent;
    for (int i = 0; i < 3; ++i)
        sent.chunks.push_back({.id = MessageId{"msg_" + std::to_string(i)},
                               .offset = 0,
                               .text = std::string(3000, 'x'),
                               .version = 2});
    auto payload = encode_notice(sent);
    EXPECT_LE(payload.size(), kMaxNoticePayload);
    ChangeNotice got;
    decode_notice(payload, got);
    EXPECT_FALSE(got.everything);
    EXPECT_EQ(got.chunks.size(), 2u);
    ASSERT_EQ(got.messages.size(), 1u);
    EXPECT_EQ(got.messages[0].value, "msg_2");
}

// What it cannot read (another version's notice, a hand-made NOTIFY) may
// have changed anything: followers read again rather than miss it.
TEST(PgNotices, AnUnreadablePayloadSaysEverything) {
    for (std::string_view payload :
         {"x:1", "m:", "hello", "m:a  s:b *", "t:msg_a:0:2:0:9:short", "t:msg_a:x:2:0:1:a",
          "t:msg_a:0:2:0:1:ab"}) {
        ChangeNotice got;
        decode_notice(payload, got);
        EXPECT_TRUE(got.everything) << payload;
    }
    ChangeNotice empty;
    decode_notice("", empty);
    EXPECT_TRUE(empty.empty());
}

}  // namespace
}  // namespace chatd::store::postgres
