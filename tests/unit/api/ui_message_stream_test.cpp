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
    auto opening = parse(UiMessageStream(false).opening(m, {kId}));
    EXPECT_EQ(types(opening), (std::vector<std::string>{"start", "start-step"}));
    EXPECT_EQ(opening[0].data.at("messageId").as_string(), kId.value);
    for (const auto& e : opening) EXPECT_EQ(e.id, engine::encode_cursor({kId, 0}));
    EXPECT_EQ(UiMessageStream(true).opening(m, {kId, 5}), "");
}

TEST(UiMessageStream, TheTextPartStartsWithItsFirstDelta) {
    auto m = message(store::MessageStatus::generating, "hi");
    auto events = parse(UiMessageStream(false).deltas(m, {kId}, "hi", 16));
    EXPECT_EQ(types(events), (std::vector<std::string>{"text-start", "text-delta"}));
    // The part opens under the delta's cursor: a client resuming from it has both.
    EXPECT_EQ(events[0].id, engine::encode_cursor({kId, 2}));
}

TEST(UiMessageStream, ReasoningIsAPartBeforeTheText) {
    auto m = message(store::MessageStatus::generating, "ok");
    m.reasoning = "hmm, yes";
    UiMessageStream format(false);
    auto thinking = parse(format.reasoning(m, {kId}, "hmm, ", 3));
    EXPECT_EQ(types(thinking), (std::vector<std::string>{"reasoning-start", "reasoning-delta",
                                                         "reasoning-delta"}));
    EXPECT_EQ(thinking[1].data.at("delta"), "hmm");
    EXPECT_EQ(thinking[2].id, engine::encode_cursor({kId, 0, 5}));
    // Resumed inside the reasoning: no second start.
    auto rest = parse(format.reasoning(m, {kId, 0, 5}, m.reasoning, 16));
    EXPECT_EQ(types(rest), (std::vector<std::string>{"reasoning-delta"}));
    EXPECT_EQ(rest[0].data.at("id"), "reasoning");
    // The text closes the reasoning part.
    auto text = parse(format.deltas(m, {kId, 0, 8}, m.content, 16));
    EXPECT_EQ(types(text),
              (std::vector<std::string>{"reasoning-end", "text-start", "text-delta"}));
    EXPECT_EQ(text[2].id, engine::encode_cursor({kId, 2, 8}));
}

TEST(UiMessageStream, ReasoningAfterTheTextBeganIsAClosedPartOfItsOwn) {
    auto m = message(store::MessageStatus::generating, "ok");
    m.reasoning = "abcd";
    auto events = parse(UiMessageStream(false).reasoning(m, {kId, 2, 2}, m.reasoning, 16));
    EXPECT_EQ(types(events),
              (std::vector<std::string>{"reasoning-start", "reasoning-delta", "reasoning-end"}));
    EXPECT_EQ(events[0].data.at("id"), "reasoning-2");
    EXPECT_EQ(events[1].data.at("delta"), "cd");
}

TEST(UiMessageStream, AnAnswerOfReasoningAloneClosesItsPartsAtTheEnd) {
    auto m = message(store::MessageStatus::completed, "");
    m.reasoning = "abc";
    auto events = parse(UiMessageStream(false).ending(m, {kId, 0, 3}));
    EXPECT_EQ(types(events), (std::vector<std::string>{"reasoning-end", "text-start", "text-end",
                                                       "finish-step", "finish", "[DONE]"}));
}

TEST(UiMessageStream, DeltasCarryTheTextAndTheCursorAfterIt) {
    std::string content = "ab\xC3\xA9\xF0\x9F\x99\x82z";
    auto m = message(store::MessageStatus::generating, content);
    auto events = parse(UiMessageStream(false).deltas(m, {kId, 1}, content, 2));
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
    auto events = parse(UiMessageStream(false).ending(m, {kId, 2}));
    EXPECT_EQ(types(events),
              (std::vector<std::string>{"text-end", "finish-step", "finish", "[DONE]"}));
    EXPECT_EQ(events[2].data.at("finishReason"), "length");
    for (const auto& e : events) EXPECT_EQ(e.id, engine::encode_cursor({kId, 2}));
}

TEST(UiMessageStream, AFailedAnswerSaysWhyAndFinishesAsAnError) {
    auto m = message(store::MessageStatus::error, "");
    m.error = store::MessageError{.code = "upstream_error", .message = "the model failed"};
    auto events = parse(UiMessageStream(false).ending(m, {kId}));
    EXPECT_EQ(types(events), (std::vector<std::string>{"text-start", "text-end", "error",
                                                       "finish-step", "finish", "[DONE]"}));
    EXPECT_EQ(events[2].data.at("errorText"), "upstream_error: the model failed");
    EXPECT_EQ(events[4].data.at("finishReason"), "error");
}

TEST(UiMessageStream, ACancelledAnswerEndsWithAbort) {
    auto events =
        parse(UiMessageStream(false).ending(message(store::MessageStatus::cancelled, "x"), {kId, 1}));
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
