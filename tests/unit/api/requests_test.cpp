#include "api/requests.hpp"

#include "core/time.hpp"

#include <gtest/gtest.h>
#include <boost/url/parse.hpp>

#include <string>

namespace chatd::api {
namespace {

using V = http::bhttp::verb;

const RequestLimits kLimits;

http::Request request(std::string body = {},
                      std::initializer_list<std::pair<std::string, std::string>> headers = {}) {
    http::Request r{V::post, "/api/v1/chat/sessions", 11};
    for (const auto& [k, v] : headers) r.insert(k, v);
    r.body() = std::move(body);
    r.prepare_payload();
    return r;
}

// A request target; its params() view the text, which must outlive them.
boost::urls::url_view url(std::string_view target) {
    return boost::urls::parse_origin_form(target).value();
}

// `n` copies of a two-byte character.
std::string accented(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += "\xC3\xA9";  // é
    return s;
}

bool mentions(const Problem& p, std::string_view text) {
    return p.detail.find(text) != std::string::npos;
}

// Ids

TEST(RequestsTest, WellFormedIdsAreAccepted) {
    auto s = new_session_id();
    auto m = new_message_id();
    auto parsed_session = session_id(s.value);
    auto parsed_message = message_id(m.value);
    ASSERT_TRUE(parsed_session && parsed_message);
    EXPECT_EQ(*parsed_session, s);
    EXPECT_EQ(*parsed_message, m);
}

TEST(RequestsTest, MalformedIdsAreNotFound) {
    auto s = new_session_id();
    auto m = new_message_id();
    for (auto bad : {std::string(), std::string("ses_"), std::string("ses_x"), m.value,
                     s.value + "0", s.value.substr(0, s.value.size() - 1)})
        EXPECT_EQ(session_id(bad).error().code, make_error_code(Error::not_found)) << bad;
    for (auto bad : {std::string(), std::string("msg_abc"), s.value, m.value + "/x"})
        EXPECT_EQ(message_id(bad).error().code, make_error_code(Error::not_found)) << bad;
}

// parse_session_draft

TEST(RequestsTest, SessionDraftMustBeOneJsonObject) {
    for (auto body : {"", "{", "not json", "[]", "\"title\"", "42", "null"})
        EXPECT_EQ(parse_session_draft(body, kLimits).error().code,
                  make_error_code(Error::invalid_json))
            << body;
}

TEST(RequestsTest, SessionDraftFieldsOfAnotherTypeNameTheField) {
    struct Case {
        const char* body;
        const char* field;
    };
    for (auto [body, field] :
         {Case{R"({"title": 5})", "`title`"}, Case{R"({"system_prompt": true})", "`system_prompt`"},
          Case{R"({"model": ["a"]})", "`model`"}, Case{R"({"title": {}})", "`title`"},
          Case{R"({"title": 5, "model": 5})", "`title`"}}) {  // the first bad field
        auto r = parse_session_draft(body, kLimits);
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().code, make_error_code(Error::invalid_request)) << body;
        EXPECT_TRUE(mentions(r.error(), field)) << body << ": " << r.error().detail;
    }
}

TEST(RequestsTest, SessionDraftAbsentAndNullFieldsTakeTheDefaults) {
    for (auto body :
         {"{}", R"({"title": null, "system_prompt": null, "model": null})", R"({"unknown": 1})"}) {
        auto r = parse_session_draft(body, kLimits);
        ASSERT_TRUE(r) << body;
        EXPECT_FALSE(r->title) << body;
        EXPECT_FALSE(r->system_prompt) << body;
        EXPECT_FALSE(r->model) << body;
    }
}

TEST(RequestsTest, SessionDraftKeepsItsFields) {
    auto r = parse_session_draft(R"({"title": "T", "system_prompt": "be brief", "model": "m"})",
                                 kLimits);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->title, "T");
    EXPECT_EQ(r->system_prompt, "be brief");
    EXPECT_EQ(r->model, "m");
}

TEST(RequestsTest, TitleLengthCountsCharactersNotBytes) {
    ASSERT_EQ(kLimits.max_title_chars, 200u);
    auto body = [](const std::string& title) { return R"({"title": ")" + title + "\"}"; };
    // 200 two-byte characters: 400 bytes, yet within the limit.
    auto ok = parse_session_draft(body(accented(200)), kLimits);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->title->size(), 400u);
    auto long_title = parse_session_draft(body(accented(201)), kLimits);
    ASSERT_FALSE(long_title);
    EXPECT_EQ(long_title.error().code, make_error_code(Error::invalid_request));
    EXPECT_TRUE(mentions(long_title.error(), "`title`"));
    EXPECT_TRUE(mentions(long_title.error(), "200"));
    EXPECT_FALSE(parse_session_draft(body(std::string(201, 'a')), kLimits));
}

TEST(RequestsTest, SystemPromptHasAByteLimit) {
    RequestLimits limits{.max_system_prompt_bytes = 10};
    auto body = [](std::size_t n) {
        return R"({"system_prompt": ")" + std::string(n, 'p') + "\"}";
    };
    EXPECT_TRUE(parse_session_draft(body(10), limits));
    auto r = parse_session_draft(body(11), limits);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(Error::invalid_request));
    EXPECT_TRUE(mentions(r.error(), "`system_prompt`"));
}

TEST(RequestsTest, ModelMustBeNonEmptyAndShort) {
    auto body = [](const std::string& model) { return R"({"model": ")" + model + "\"}"; };
    EXPECT_TRUE(parse_session_draft(body(std::string(200, 'm')), kLimits));
    for (auto bad : {std::string(), std::string(201, 'm')}) {
        auto r = parse_session_draft(body(bad), kLimits);
        ASSERT_FALSE(r) << bad.size();
        EXPECT_EQ(r.error().code, make_error_code(Error::invalid_request));
        EXPECT_TRUE(mentions(r.error(), "`model`"));
    }
}

// parse_prompt

TEST(RequestsTest, PromptNeedsNonEmptyStringContent) {
    EXPECT_EQ(parse_prompt(request("nope"), kLimits).error().code,
              make_error_code(Error::invalid_json));
    for (auto body : {"{}", R"({"content": null})", R"({"content": 5})", R"({"content": ""})"}) {
        auto r = parse_prompt(request(body), kLimits);
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().code, make_error_code(Error::invalid_request)) << body;
        EXPECT_TRUE(mentions(r.error(), "`content`")) << body;
    }
    auto ok = parse_prompt(request(R"({"content": "hi"})"), kLimits);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->content, "hi");
    EXPECT_FALSE(ok->idempotency_key);
}

TEST(RequestsTest, ChatIdsAreShortAndNeedNoEscaping) {
    for (const std::string& ok : std::vector<std::string>{
             "a", "chat-1_X", "ses_01JABCDEFGHJKMNPQRSTVWXYZ0", std::string(128, 'z')})
        EXPECT_TRUE(chat_id(ok)) << ok;
    for (const std::string& bad : std::vector<std::string>{
             "", "a.b", "..", "a b", "a/b", "caf\xC3\xA9", std::string(129, 'z')}) {
        auto r = chat_id(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, make_error_code(Error::invalid_request)) << bad;
    }
}

// DefaultChatTransport's body for `text` sent in chat `id`.
std::string ui_body(std::string_view id, std::string_view parts,
                    std::string_view trigger = "submit-message") {
    return R"({"id":")" + std::string(id) + R"(","trigger":")" + std::string(trigger) +
           R"(","messageId":null,"messages":[)" +
           R"({"id":"a0","role":"assistant","parts":[{"type":"text","text":"earlier"}]},)" +
           R"({"id":"u1","role":"user","parts":)" + std::string(parts) + "}]}";
}

TEST(RequestsTest, UiSendTakesTheLastUserMessagesText) {
    auto ok = parse_ui_send(
        ui_body("chat-1", R"([{"type":"step-start"},{"type":"text","text":"hello "},)"
                          R"({"type":"text","text":"there"}])"),
        kLimits);
    ASSERT_TRUE(ok) << ok.error().detail;
    EXPECT_EQ(ok->chat_id, "chat-1");
    EXPECT_EQ(ok->prompt.content, "hello there");
    EXPECT_EQ(ok->prompt.idempotency_key, "ui:u1");
}

TEST(RequestsTest, UiSendRefusesWhatItCannotSendFaithfully) {
    const std::string text = R"([{"type":"text","text":"hi"}])";
    for (const auto& body : {
             ui_body("bad id", text),
             ui_body("chat", text, "regenerate-message"),
             ui_body("chat", R"([{"type":"file","url":"data:,x","mediaType":"text/plain"}])"),
             ui_body("chat", R"([{"type":"text","text":""}])"),
             ui_body("chat", R"([{"type":"text"}])"),
             ui_body("chat", R"("hi")"),
             std::string(R"({"id":"chat","messages":[]})"),
             std::string(R"({"id":"chat","messages":[{"role":"assistant","parts":[]}]})"),
             std::string(R"({"messages":[{"role":"user","parts":[]}]})"),
         }) {
        auto r = parse_ui_send(body, kLimits);
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().code, make_error_code(Error::invalid_request)) << body;
        EXPECT_FALSE(r.error().detail.empty()) << body;
    }
    EXPECT_EQ(parse_ui_send("[]", kLimits).error().code, make_error_code(Error::invalid_json));
    RequestLimits small{.max_message_bytes = 4};
    EXPECT_EQ(parse_ui_send(ui_body("chat", R"([{"type":"text","text":"hello"}])"), small)
                  .error()
                  .code,
              make_error_code(Error::content_too_long));
}

TEST(RequestsTest, PromptContentHasAByteLimit) {
    RequestLimits limits{.max_message_bytes = 8};
    auto body = [](const std::string& content) { return R"({"content": ")" + content + "\"}"; };
    EXPECT_TRUE(parse_prompt(request(body(accented(4))), limits));
    auto r = parse_prompt(request(body(accented(4) + "x")), limits);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(Error::content_too_long));
}

TEST(RequestsTest, IdempotencyKeyHasOneTo255Characters) {
    auto with_key = [](const std::string& key) {
        return parse_prompt(request(R"({"content": "hi"})", {{"Idempotency-Key", key}}), kLimits);
    };
    auto ok = with_key("key-1");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->idempotency_key, "key-1");
    // 255 characters of two bytes each are fine.
    auto multibyte = with_key(accented(255));
    ASSERT_TRUE(multibyte);
    EXPECT_EQ(multibyte->idempotency_key, accented(255));
    for (auto bad : {std::string(), std::string(256, 'k'), accented(256)}) {
        auto r = with_key(bad);
        ASSERT_FALSE(r) << bad.size();
        EXPECT_EQ(r.error().code, make_error_code(Error::invalid_request));
        EXPECT_TRUE(mentions(r.error(), "Idempotency-Key"));
    }
}

// Pages

TEST(RequestsTest, PageLimitDefaultsToTheFallback) {
    auto u = url("/x");
    auto sessions = parse_session_page(u.params(), 20, 100);
    ASSERT_TRUE(sessions);
    EXPECT_EQ(sessions->limit, 20u);
    EXPECT_FALSE(sessions->before);
    auto messages = parse_message_page(u.params(), 50, 100);
    ASSERT_TRUE(messages);
    EXPECT_EQ(messages->limit, 50u);
    EXPECT_FALSE(messages->before);
}

TEST(RequestsTest, PageLimitIsFromOneToTheMax) {
    for (auto target : {"/x?limit=1", "/x?limit=100"}) {
        auto u = url(target);
        EXPECT_TRUE(parse_session_page(u.params(), 20, 100)) << target;
        EXPECT_TRUE(parse_message_page(u.params(), 20, 100)) << target;
    }
    auto u = url("/x?limit=5");
    EXPECT_EQ(parse_session_page(u.params(), 20, 100)->limit, 5u);
    for (auto target : {"/x?limit=0", "/x?limit=101", "/x?limit=5x", "/x?limit=-1",
                        "/x?limit=", "/x?limit=%205", "/x?limit=99999999999999999999999"}) {
        auto bad = url(target);
        for (auto r : {parse_session_page(bad.params(), 20, 100).error(),
                       parse_message_page(bad.params(), 20, 100).error()}) {
            EXPECT_EQ(r.code, make_error_code(Error::invalid_request)) << target;
            EXPECT_TRUE(mentions(r, "100")) << target << ": " << r.detail;
        }
    }
}

TEST(RequestsTest, PageBeforeIsAnIdOfTheListedKind) {
    auto s = new_session_id();
    auto m = new_message_id();
    auto sessions_target = "/x?limit=5&before=" + s.value;
    auto messages_target = "/x?before=" + m.value;
    auto su = url(sessions_target);
    auto mu = url(messages_target);
    auto sessions = parse_session_page(su.params(), 20, 100);
    ASSERT_TRUE(sessions);
    EXPECT_EQ(sessions->limit, 5u);
    EXPECT_EQ(sessions->before, s);
    auto messages = parse_message_page(mu.params(), 20, 100);
    ASSERT_TRUE(messages);
    EXPECT_EQ(messages->before, m);
    // Each with the other's prefix, or no id at all.
    auto empty = url("/x?before=");
    for (const auto& problem : {parse_session_page(mu.params(), 20, 100).error(),
                                parse_session_page(empty.params(), 20, 100).error(),
                                parse_message_page(su.params(), 20, 100).error(),
                                parse_message_page(empty.params(), 20, 100).error()}) {
        EXPECT_EQ(problem.code, make_error_code(Error::invalid_request));
        EXPECT_TRUE(mentions(problem, "100")) << problem.detail;
    }
}

// parse_since

TEST(RequestsTest, SinceAbsentMeansEverything) {
    auto u = url("/x?limit=3");
    auto r = parse_since(u.params());
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->seq);
    EXPECT_FALSE(r->time);
}

TEST(RequestsTest, SinceTokenIsASequence) {
    for (auto [target, seq] : {std::pair{"/x?since=c42", 42}, std::pair{"/x?since=c0", 0}}) {
        auto u = url(target);
        auto r = parse_since(u.params());
        ASSERT_TRUE(r) << target;
        EXPECT_EQ(r->seq, seq);
        EXPECT_FALSE(r->time);
    }
}

TEST(RequestsTest, SinceTimeIsIso8601) {
    auto u = url("/x?since=2026-01-02T03:04:05Z");
    auto r = parse_since(u.params());
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->seq);
    EXPECT_EQ(r->time, parse_iso8601("2026-01-02T03:04:05Z"));
    auto ms = url("/x?since=2026-01-02T03:04:05.678Z");
    auto with_ms = parse_since(ms.params());
    ASSERT_TRUE(with_ms);
    ASSERT_TRUE(with_ms->time);
    EXPECT_EQ(*with_ms->time, *r->time + 678);
}

TEST(RequestsTest, SinceOfAnotherShapeIsInvalid) {
    for (auto target : {"/x?since=c", "/x?since=c-1", "/x?since=cx", "/x?since=c4x",
                        "/x?since=garbage", "/x?since=", "/x?since=42", "/x?since=2026-01-02"}) {
        auto u = url(target);
        EXPECT_EQ(parse_since(u.params()).error().code, make_error_code(Error::invalid_since))
            << target;
    }
}

// parse_cursor

TEST(RequestsTest, CursorAbsentIsNone) {
    auto u = url("/x");
    auto r = parse_cursor(request(), u.params());
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
}

TEST(RequestsTest, CursorFromTheHeaderWinsOverTheQuery) {
    engine::Cursor from_header{new_message_id(), 7};
    engine::Cursor from_query{new_message_id(), 12};
    auto target = "/x?last_event_id=" + engine::encode_cursor(from_query);
    auto u = url(target);
    auto both = parse_cursor(request({}, {{"Last-Event-ID", engine::encode_cursor(from_header)}}),
                             u.params());
    ASSERT_TRUE(both);
    EXPECT_EQ(*both, from_header);
    auto query_only = parse_cursor(request(), u.params());
    ASSERT_TRUE(query_only);
    EXPECT_EQ(*query_only, from_query);
    // An empty header is no header.
    auto empty_header = parse_cursor(request({}, {{"Last-Event-ID", ""}}), u.params());
    ASSERT_TRUE(empty_header);
    EXPECT_EQ(*empty_header, from_query);
}

TEST(RequestsTest, MalformedCursorIsInvalid) {
    auto m = new_message_id();
    auto none = url("/x");
    for (auto bad : {std::string("x"), m.value, m.value + ".", m.value + ".-1", m.value + ".01",
                     std::string("msg_x.1"), new_session_id().value + ".1"})
        EXPECT_EQ(parse_cursor(request({}, {{"Last-Event-ID", bad}}), none.params()).error().code,
                  make_error_code(Error::invalid_cursor))
            << bad;
    auto query = url("/x?last_event_id=nope.3");
    EXPECT_EQ(parse_cursor(request(), query.params()).error().code,
              make_error_code(Error::invalid_cursor));
}

// Headers

TEST(RequestsTest, BodiesMustBeJson) {
    EXPECT_TRUE(check_content_type(request()));
    EXPECT_TRUE(check_content_type(request({}, {{"Content-Type", "text/plain"}})));
    for (auto type : {"application/json", "application/json; charset=utf-8", "Application/JSON",
                      " application/json ;charset=utf-8"})
        EXPECT_TRUE(check_content_type(request("{}", {{"Content-Type", type}}))) << type;
    EXPECT_EQ(check_content_type(request("{}")).error().code,
              make_error_code(Error::unsupported_media_type));
    for (auto type : {"text/plain", "application/x-www-form-urlencoded", "", "json",
                      "application/jsonx", "application/json-patch+json"})
        EXPECT_EQ(check_content_type(request("{}", {{"Content-Type", type}})).error().code,
                  make_error_code(Error::unsupported_media_type))
            << type;
}

TEST(RequestsTest, WantsEventStreamReadsAccept) {
    EXPECT_FALSE(wants_event_stream(request()));
    EXPECT_FALSE(wants_event_stream(request({}, {{"Accept", "application/json"}})));
    EXPECT_TRUE(wants_event_stream(request({}, {{"Accept", "text/event-stream"}})));
    EXPECT_TRUE(
        wants_event_stream(request({}, {{"Accept", "application/json, text/event-stream"}})));
    EXPECT_TRUE(wants_event_stream(request({}, {{"Accept", "Text/Event-Stream"}})));
}

TEST(RequestsTest, QueryValueDecodesAndDistinguishesAbsence) {
    auto u = url("/x?a=1&b=&c&d=x%20y");
    EXPECT_EQ(query_value(u.params(), "a"), "1");
    EXPECT_EQ(query_value(u.params(), "b"), "");
    EXPECT_FALSE(query_value(u.params(), "c"));
    EXPECT_FALSE(query_value(u.params(), "missing"));
    EXPECT_EQ(query_value(u.params(), "d"), "x y");
}

}  // namespace
}  // namespace chatd::api
