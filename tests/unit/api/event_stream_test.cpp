#include "api/event_stream.hpp"

#include "core/utf8.hpp"

#include "engine/cursor.hpp"
#include "http/sse.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace chatd::api {
namespace {

const MessageId kId{"msg_01JABCDEFGHJKMNPQRSTVWXYZ0"};

struct Delta {
    std::string id;
    std::int64_t offset;
    std::string text;
};

std::vector<Delta> parse(const std::string& events) {
    std::vector<Delta> out;
    std::size_t pos = 0;
    while (pos < events.size()) {
        auto end = events.find("\n\n", pos);
        auto block = events.substr(pos, end - pos);
        pos = end + 2;
        auto id_at = block.find("id: ") + 4;
        auto data_at = block.find("data: ") + 6;
        auto json = boost::json::parse(block.substr(data_at)).as_object();
        out.push_back({block.substr(id_at, block.find('\n', id_at) - id_at),
                       json.at("offset").as_int64(), std::string(json.at("text").as_string())});
    }
    return out;
}

TEST(FormatDeltas, SplitsOnlyBetweenCharactersAndCoversTheText) {
    std::string content;
    for (int i = 0; i < 200; ++i) content += "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x99\x82";
    auto deltas = parse(format_deltas({kId, 3}, content, 7));
    std::string joined;
    std::int64_t expect_offset = 3;
    for (const auto& d : deltas) {
        EXPECT_EQ(d.offset, expect_offset);
        EXPECT_LE(d.text.size(), 7u);
        EXPECT_TRUE(is_valid_utf8(d.text));
        joined += d.text;
        expect_offset += static_cast<std::int64_t>(d.text.size());
        EXPECT_EQ(d.id, kId.value + "." + std::to_string(expect_offset));
    }
    EXPECT_EQ(joined, content.substr(3));
}

TEST(CatchUp, PiecesEndBetweenCharactersWithinTheBound) {
    std::string text = "ab\xc3\xa9\xe2\x82\xac";  // a b é €
    EXPECT_EQ(catch_up_end(text, 0, 2), 2u);
    EXPECT_EQ(catch_up_end(text, 0, 3), 2u);  // not inside é
    EXPECT_EQ(catch_up_end(text, 2, 1), 4u);  // one character at least
    EXPECT_EQ(catch_up_end(text, 4, 64), text.size());
    EXPECT_EQ(catch_up_end(text, text.size(), 64), text.size());
}

// The delta is written by hand for speed: byte for byte the event the
// generic path (a json::object, serialized, framed by format_sse_event)
// makes, for text JSON must escape.
TEST(FormatDeltas, WritesTheEventTheGenericPathWould) {
    const std::string content = "ok \"quoted\" back\\slash\nline\r\ttab \x01 caf\xC3\xA9 </script>";
    engine::Cursor at{kId, 3};
    engine::Cursor after{kId, static_cast<std::int64_t>(content.size())};
    auto data = boost::json::serialize(
        boost::json::object{{"message_id", kId.value},
                            {"offset", 3},
                            {"text", std::string_view(content).substr(3)}});
    EXPECT_EQ(format_deltas(at, content, 1024),
              http::format_sse_event("delta", engine::encode_cursor(after), data));
}

TEST(FormatDeltas, NothingToSendIsNoEvent) {
    EXPECT_EQ(format_deltas({kId, 3}, "abc", 16), "");
    EXPECT_EQ(format_reasoning({kId, 0, 2}, "ab", 16), "");
}

TEST(FormatReasoning, IsItsOwnEventWithOffsetsInTheReasoning) {
    // The cursor after each piece moves in the reasoning and keeps the content's offset.
    auto events = format_reasoning({kId, 4, 1}, "xyz\xC3\xA9", 2);
    EXPECT_EQ(events.find("event: delta"), std::string::npos);
    auto pieces = parse(events);
    ASSERT_EQ(pieces.size(), 2u);
    EXPECT_EQ(pieces[0].offset, 1);
    EXPECT_EQ(pieces[0].text, "yz");
    EXPECT_EQ(pieces[0].id, kId.value + ".4.3");
    EXPECT_EQ(pieces[1].text, "\xC3\xA9");
    EXPECT_EQ(pieces[1].id, kId.value + ".4.5");
    EXPECT_NE(events.find("event: reasoning\nid: " + kId.value + ".4.3\n"), std::string::npos);
}

TEST(FormatDeltas, CursorsKeepTheReasoningOffset) {
    auto pieces = parse(format_deltas({kId, 0, 7}, "ab", 16));
    ASSERT_EQ(pieces.size(), 1u);
    EXPECT_EQ(pieces[0].id, kId.value + ".2.7");
}

TEST(FormatStatus, CarriesTheMessageWithoutContentAndTheCursor) {
    store::Message m{
        .id = kId, .content = "secret text", .status = store::MessageStatus::completed};
    m.reasoning = "secret thoughts";
    auto event = format_status(m, {kId, 11});
    EXPECT_NE(event.find("event: status\nid: " + kId.value + ".11\n"), std::string::npos);
    EXPECT_EQ(event.find("secret text"), std::string::npos);
    EXPECT_EQ(event.find("secret thoughts"), std::string::npos);
    EXPECT_NE(event.find("\"status\":\"completed\""), std::string::npos);
}

}  // namespace
}  // namespace chatd::api
