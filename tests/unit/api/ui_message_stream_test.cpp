#include "api/ui_message_stream.hpp"

#include "engine/cursor.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <string>
#include <vector>

namespace chatd::api {
namespace {

namespace json = boost::json;

const MessageId kId{"msg_01JABCDEFGHJKMNPQRSTVWXYZ0"};

// One `id:` + `data:` event of the stream; data "[DONE]" is kept as text.
struct Event {
    std::string id;
    json::value data;
    std::string type() const {
        return data.is_string() ? std::string(data.as_string())
                                : std::string(data.at("type").as_string());
    }
};

std::vector<Event> parse(const std::string& events) {
    std::vector<Event> out;
    std::size_t pos = 0;
    while (pos < events.size()) {
        auto end = events.find("\n\n", pos);
        auto block = events.substr(pos, end - pos);
        pos = end + 2;
        EXPECT_EQ(block.find("event:"), std::string::npos) << "UI message streams name no events";
        auto id_at = block.find("id: ") + 4;
        auto data = block.substr(block.find("data: ") + 6);
        out.push_back({block.substr(id_at, block.find('\n', id_at) - id_at),
                       data == "[DONE]" ? json::value(data) : json::parse(data)});
    }
    return out;
}

std::vector<std::string> types(const std::vector<Event>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.type());
    return out;
}

store::Message message(store::MessageStatus status, std::string content) {
    store::Message m{.id = kId, .content = std::move(content), .status = status};
    m.role = store::Role::assistant;
    return m;
}

TEST(UiMessageStream, OpensWithStartNamingTheMessageUnlessItContinues) {
    auto m = message(store::MessageStatus::generating, "");
    auto opening = parse(UiMessageStream(false).opening(m, 0));
    EXPECT_EQ(types(opening), (std::vector<std::string>{"start", "start-step", "text-start"}));
    EXPECT_EQ(opening[0].data.at("messageId").as_string(), kId.value);
    for (const auto& e : opening) EXPECT_EQ(e.id, engine::encode_cursor({kId, 0}));
    EXPECT_EQ(UiMessageStream(true).opening(m, 5), "");
}

TEST(UiMessageStream, DeltasCarryTheTextAndTheCursorAfterIt) {
    std::string content = "ab\xC3\xA9\xF0\x9F\x99\x82z";
    auto events = parse(UiMessageStream(false).deltas(kId, content, 1, 2));
    std::string joined;
    for (const auto& e : events) {
        EXPECT_EQ(e.type(), "text-delta");
        EXPECT_EQ(e.data.at("id"), "text");
        joined += e.data.at("delta").as_string();
        auto cursor = engine::decode_cursor(e.id);
        ASSERT_TRUE(cursor);
        EXPECT_EQ(content.substr(0, cursor->offset), content.substr(0, 1) + joined);
    }
    EXPECT_EQ(joined, content.substr(1));
}

TEST(UiMessageStream, ACompletedAnswerFinishesThenSaysDone) {
    auto m = message(store::MessageStatus::completed, "hi");
    m.finish_reason = "length";
    auto events = parse(UiMessageStream(false).ending(m, 2));
    EXPECT_EQ(types(events),
              (std::vector<std::string>{"text-end", "finish-step", "finish", "[DONE]"}));
    EXPECT_EQ(events[2].data.at("finishReason"), "length");
    for (const auto& e : events) EXPECT_EQ(e.id, engine::encode_cursor({kId, 2}));
}

TEST(UiMessageStream, AFailedAnswerSaysWhyAndFinishesAsAnError) {
    auto m = message(store::MessageStatus::error, "");
    m.error = store::MessageError{.code = "upstream_error", .message = "the model failed"};
    auto events = parse(UiMessageStream(false).ending(m, 0));
    EXPECT_EQ(types(events),
              (std::vector<std::string>{"text-end", "error", "finish-step", "finish", "[DONE]"}));
    EXPECT_EQ(events[1].data.at("errorText"), "upstream_error: the model failed");
    EXPECT_EQ(events[3].data.at("finishReason"), "error");
}

TEST(UiMessageStream, ACancelledAnswerEndsWithAbort) {
    auto events =
        parse(UiMessageStream(false).ending(message(store::MessageStatus::cancelled, "x"), 1));
    EXPECT_EQ(types(events), (std::vector<std::string>{"text-end", "abort", "[DONE]"}));
}

TEST(UiMessageStream, FinishReasonsAreTheAiSdks) {
    auto with = [](std::optional<std::string> reason) {
        auto m = message(store::MessageStatus::completed, "");
        m.finish_reason = std::move(reason);
        return std::string(ui_finish_reason(m));
    };
    EXPECT_EQ(with(std::nullopt), "stop");
    EXPECT_EQ(with("stop"), "stop");
    EXPECT_EQ(with("end_turn"), "stop");
    EXPECT_EQ(with("max_tokens"), "length");
    EXPECT_EQ(with("content_filter"), "content-filter");
    EXPECT_EQ(with("tool_use"), "tool-calls");
    EXPECT_EQ(with("something new"), "other");
}

TEST(UiMessageStream, IsChunkedAndNamesItsProtocol) {
    UiMessageStream format(false);
    EXPECT_TRUE(format.chunked());
    EXPECT_EQ(format.head_lines(), "x-vercel-ai-ui-message-stream: v1\r\n");
}

}  // namespace
}  // namespace chatd::api
