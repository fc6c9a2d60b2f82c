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

// What it cannot read (another version's notice, a hand-made NOTIFY) may
// have changed anything: followers read again rather than miss it.
TEST(PgNotices, AnUnreadablePayloadSaysEverything) {
    for (std::string_view payload : {"x:1", "m:", "hello", "m:a  s:b *"}) {
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
