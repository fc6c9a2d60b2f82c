// Every vendor fixture, replayed through the SSE parser and the vendor's
// decoder: whole, split at every byte position, one byte at a time, and with
// CRLF line ends, must give the text, finish reason, usage and outcome that
// expected.json states.
#include "llm/upstream/wire.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <fstream>
#include <sstream>

namespace chatd::llm::upstream {
namespace {

namespace json = boost::json;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

struct Answer {
    std::string text;
    std::string reasoning;
    bool finished = false;
    std::optional<Failure> failure;
    std::string finish_reason;
    std::optional<Usage> usage;
};

// Feeds `pieces` in order, as the upstream client does with each read.
Answer decode(const Wire& wire, const std::vector<std::string_view>& pieces) {
    GenerationRequest request;
    auto decoder = wire.decoder(request);
    SseParser parser;
    Answer d;
    std::vector<SseEvent> events;
    for (auto piece : pieces) {
        events.clear();
        EXPECT_TRUE(parser.feed(piece, events));
        for (const auto& e : events) {
            if (d.failure || decoder->finished()) break;
            Decoded piece;
            d.failure = decoder->feed(e, piece);
            d.text += piece.text;
            d.reasoning += piece.reasoning;
        }
    }
    d.finished = decoder->finished();
    d.finish_reason = decoder->finish_reason();
    d.usage = decoder->usage();
    return d;
}

std::string to_crlf(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

struct Fixture {
    std::string name;
    std::string bytes;
    json::object expected;
};

std::vector<Fixture> fixtures() {
    std::string dir = CHATD_PROVIDER_FIXTURES;
    auto expected = json::parse(read_file(dir + "/expected.json")).as_object();
    std::vector<Fixture> out;
    for (auto& [name, value] : expected) {
        if (!value.is_object()) continue;
        out.push_back(
            {std::string(name), read_file(dir + "/" + std::string(name)), value.as_object()});
    }
    return out;
}

std::unique_ptr<Wire> wire_for(const json::object& expected) {
    if (expected.at("wire").as_string() == "anthropic-messages") return make_anthropic_wire({});
    return make_openai_wire({});
}

// expected.json gives the vendor's own finish reason; chatd stores its mapping.
std::string mapped(std::string_view raw) {
    if (raw == "end_turn" || raw == "stop_sequence" || raw == "stop") return "stop";
    if (raw == "max_tokens" || raw == "length") return "length";
    return std::string(raw);
}

void check(const Fixture& f, const Answer& d, const std::string& how) {
    SCOPED_TRACE(f.name + " " + how);
    const auto& e = f.expected;
    EXPECT_EQ(d.text, std::string(e.at("text").as_string()));
    if (e.at("outcome").as_string() == "completed") {
        EXPECT_FALSE(d.failure) << d.failure->message;
        EXPECT_TRUE(d.finished);
        EXPECT_EQ(d.finish_reason, mapped(e.at("finish_reason").as_string()));
        if (auto* usage = e.if_contains("usage")) {
            ASSERT_TRUE(d.usage);
            EXPECT_EQ(d.usage->input_tokens, usage->at("input_tokens").as_int64());
            EXPECT_EQ(d.usage->output_tokens, usage->at("output_tokens").as_int64());
        } else {
            EXPECT_FALSE(d.usage);
        }
    } else {
        EXPECT_FALSE(d.finished);
        ASSERT_TRUE(d.failure);
        EXPECT_EQ(d.failure->code, "upstream_unavailable");  // server_error, overloaded_error
        EXPECT_TRUE(d.failure->transient);
    }
}

TEST(WireFixtures, EveryFixtureDecodesWholeAndSplitAtEveryPosition) {
    auto all = fixtures();
    ASSERT_EQ(all.size(), 6u);
    for (const auto& f : all) {
        auto wire = wire_for(f.expected);
        for (const auto& bytes : {f.bytes, to_crlf(f.bytes)}) {
            std::string_view b = bytes;
            std::string how = bytes.size() == f.bytes.size() ? "LF" : "CRLF";
            check(f, decode(*wire, {b}), how + " whole");
            for (std::size_t at = 0; at <= b.size(); ++at)
                check(f, decode(*wire, {b.substr(0, at), b.substr(at)}),
                      how + " split at " + std::to_string(at));
            std::vector<std::string_view> bytewise;
            for (std::size_t i = 0; i < b.size(); ++i) bytewise.push_back(b.substr(i, 1));
            check(f, decode(*wire, bytewise), how + " byte by byte");
        }
    }
}

TEST(WireFixtures, AStreamCutBeforeItsFinalEventIsNotFinished) {
    for (const auto& f : fixtures()) {
        if (f.expected.at("outcome").as_string() != "completed") continue;
        auto wire = wire_for(f.expected);
        std::string_view b = f.bytes;
        // Cut before the terminal event ([DONE] or message_stop).
        auto cut = b.rfind("data:");
        auto d = decode(*wire, {b.substr(0, cut)});
        EXPECT_FALSE(d.finished) << f.name;
        EXPECT_FALSE(d.failure) << f.name;
    }
}

TEST(OpenAiWire, MalformedJsonIsAProtocolFailure) {
    auto wire = make_openai_wire({});
    auto d = decode(*wire, {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
                            "data: {not json\n\n"});
    EXPECT_EQ(d.text, "Hi");
    ASSERT_TRUE(d.failure);
    EXPECT_EQ(d.failure->code, "upstream_protocol");
    EXPECT_FALSE(d.failure->transient);
}

TEST(OpenAiWire, RequestCarriesPromptSettingsAndContinuation) {
    auto wire = make_openai_wire(
        {.max_output_tokens = 77, .temperature = 0.5, .continue_final_message = true});
    GenerationRequest r{.model = "m1",
                        .prompt = {{PromptRole::system, "sys"}, {PromptRole::user, "hi"}},
                        .partial = "Once "};
    auto body = json::parse(wire->body(r)).as_object();
    EXPECT_EQ(body.at("model"), "m1");
    EXPECT_EQ(body.at("stream"), true);
    EXPECT_EQ(body.at("stream_options").at("include_usage"), true);
    EXPECT_EQ(body.at("max_tokens"), 77);
    EXPECT_EQ(body.at("temperature"), 0.5);
    EXPECT_EQ(body.at("continue_final_message"), true);
    EXPECT_EQ(body.at("add_generation_prompt"), false);
    auto& messages = body.at("messages").as_array();
    ASSERT_EQ(messages.size(), 3u);
    EXPECT_EQ(messages[0].at("role"), "system");
    EXPECT_EQ(messages[1].at("content"), "hi");
    EXPECT_EQ(messages[2].at("role"), "assistant");
    EXPECT_EQ(messages[2].at("content"), "Once ");
    EXPECT_TRUE(wire->can_continue());
    EXPECT_FALSE(make_openai_wire({})->can_continue());
    auto newer = make_openai_wire({.openai_max_tokens_field = "max_completion_tokens"});
    auto newer_body = json::parse(newer->body(r)).as_object();
    EXPECT_EQ(newer_body.at("max_completion_tokens"), 1024);
    EXPECT_FALSE(newer_body.contains("max_tokens"));
    EXPECT_EQ(wire->headers("k").at(0).second, "Bearer k");
    EXPECT_TRUE(wire->headers("").empty());
}

TEST(AnthropicWire, RequestMovesSystemOutAndTrimsThePrefill) {
    auto wire = make_anthropic_wire({.max_output_tokens = 9});
    GenerationRequest r{.model = "claude",
                        .prompt = {{PromptRole::system, "sys"}, {PromptRole::user, "hi"}},
                        .partial = "Once upon \n"};
    auto body = json::parse(wire->body(r)).as_object();
    EXPECT_EQ(body.at("system"), "sys");
    EXPECT_EQ(body.at("max_tokens"), 9);
    EXPECT_FALSE(body.contains("temperature"));
    auto& messages = body.at("messages").as_array();
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[1].at("role"), "assistant");
    EXPECT_EQ(messages[1].at("content"), "Once upon");
    // The continuation's leading whitespace stands in for the trimmed one.
    auto decoder = wire->decoder(r);
    std::string text;
    SseParser parser;
    std::vector<SseEvent> events;
    parser.feed(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\" a time\"}}\n\n",
        events);
    for (auto& e : events) {
        Decoded piece;
        EXPECT_FALSE(decoder->feed(e, piece));
        text += piece.text;
    }
    EXPECT_EQ(text, "a time");
}

TEST(Failures, StatusesMapToCodesAndRetryability) {
    struct Case {
        int status;
        std::string_view code;
        bool transient;
    };
    for (auto c :
         {Case{400, "upstream_bad_request", false}, Case{401, "upstream_auth", false},
          Case{403, "upstream_auth", false}, Case{404, "upstream_bad_request", false},
          Case{408, "upstream_timeout", true}, Case{409, "upstream_unavailable", true},
          Case{429, "upstream_rate_limited", true}, Case{500, "upstream_unavailable", true},
          Case{502, "upstream_unavailable", true}, Case{503, "upstream_unavailable", true},
          Case{504, "upstream_timeout", true}, Case{529, "upstream_unavailable", true},
          Case{501, "upstream_unavailable", false}, Case{418, "upstream_bad_request", false}}) {
        auto f = failure_for_status(c.status, R"({"error":{"message":"nope","type":"x"}})");
        EXPECT_EQ(f.code, c.code) << c.status;
        EXPECT_EQ(f.transient, c.transient) << c.status;
        EXPECT_EQ(f.message, "upstream answered HTTP " + std::to_string(c.status) + ": nope");
    }
    EXPECT_EQ(failure_for_status(500, "<html>oops</html>").message,
              "upstream answered HTTP 500: <html>oops</html>");
}

TEST(WireFixtures, AnthropicThinkingIsReasoningNeverText) {
    for (const auto& f : fixtures()) {
        auto d = decode(*wire_for(f.expected), {f.bytes});
        if (f.name == "anthropic-thinking.sse")
            EXPECT_EQ(d.reasoning, "The user wants a number. 6 times 7 is 42.");
        else
            EXPECT_EQ(d.reasoning, "") << f.name;
    }
}

TEST(OpenAiWire, ReasoningContentAndReasoningAreReasoning) {
    // DeepSeek, vLLM and llama.cpp say reasoning_content; OpenRouter and Ollama
    // reasoning; a server that sends both means one text.
    std::string_view bytes =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Six \\u00e9\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"times seven.\","
        "\"content\":null}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\" Both\","
        "\"reasoning\":\" Both\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"42\"},"
        "\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    auto wire = make_openai_wire({});
    for (std::size_t at = 0; at <= bytes.size(); ++at) {
        auto d = decode(*wire, {bytes.substr(0, at), bytes.substr(at)});
        EXPECT_EQ(d.reasoning, "Six \xC3\xA9times seven. Both") << at;
        EXPECT_EQ(d.text, "42") << at;
        EXPECT_TRUE(d.finished);
    }
}

TEST(AnthropicWire, ThinkingIsAskedForWithItsBudgetAndNeverPrefilled) {
    auto wire = make_anthropic_wire(
        {.max_output_tokens = 4096, .temperature = 0.3, .anthropic_thinking_budget = 2048});
    GenerationRequest r{.model = "claude", .prompt = {{PromptRole::user, "hi"}}};
    auto body = json::parse(wire->body(r)).as_object();
    EXPECT_EQ(body.at("thinking").at("type"), "enabled");
    EXPECT_EQ(body.at("thinking").at("budget_tokens"), 2048);
    EXPECT_FALSE(body.contains("temperature")) << "the API takes no temperature with thinking";
    EXPECT_FALSE(wire->can_continue()) << "nor a prefill";
    auto plain = json::parse(make_anthropic_wire({.temperature = 0.3})->body(r)).as_object();
    EXPECT_FALSE(plain.contains("thinking"));
    EXPECT_EQ(plain.at("temperature"), 0.3);
}

}  // namespace
}  // namespace chatd::llm::upstream
