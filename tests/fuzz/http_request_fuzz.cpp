// Fuzzes the HTTP request path: the bytes a client sends on a connection.
//
// They go through Beast's request parser with the server's limits and read
// pattern (src/http/server.cpp: a fresh parser per request, keep-alive
// requests pipelined on one buffer, reads of any size, EOF handling), and each
// parsed request through what ChatApi::handle and its handlers read from it
// (src/api/chat_api.cpp): the origin-form target and its query, the route
// table of ChatApi's constructor, the headers, and the JSON body through
// api::parse_object and optional_string. ChatApi itself needs an engine, a
// store and a socket, so its reading of a request is mirrored here: keep the
// two in step when a handler starts reading something new.
//
// The whole input is also parsed as a bare request body, so that JSON is
// fuzzed without Content-Length framing in the way.
//
// Properties: Router's contract (a match has one non-empty parameter per `{}`
// of its pattern, a miss names the methods that would match), cursors decoded
// from requests re-encode to their text, and a message's content survives
// to_json and back.
#include "api/json_codec.hpp"
#include "api/request_guard.hpp"
#include "auth/authenticator.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"
#include "engine/cursor.hpp"
#include "fuzz_support.hpp"
#include "http/framing.hpp"
#include "http/router.hpp"
#include "http/types.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

namespace api = chatd::api;
namespace bhttp = chatd::http::bhttp;
namespace json = boost::json;
using chatd::http::Request;
using V = bhttp::verb;

// ServerConfig's defaults (src/http/server.hpp), as chatd runs them.
constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr std::uint64_t kMaxBodyBytes = 1024 * 1024;
constexpr std::size_t kMaxPipelined = 16;
// ApiConfig's limits that handlers check while reading.
constexpr std::size_t kMaxTitleChars = 200;
constexpr std::size_t kMaxIdempotencyKeyChars = 255;

enum class Endpoint {
    healthz,
    readyz,
    create_session,
    list_sessions,
    get_session,
    delete_session,
    list_messages,
    send_message,
    stream_session,
    session_status,
    message_content,
    cancel_message,
    stream_message,
    poll,
};

struct Route {
    V method;
    std::string_view pattern;
    Endpoint endpoint;
};

// ChatApi's constructor, in its order.
constexpr std::array kRoutes{
    Route{V::get, "/healthz", Endpoint::healthz},
    Route{V::get, "/readyz", Endpoint::readyz},
    Route{V::post, "/api/v1/chat/sessions", Endpoint::create_session},
    Route{V::get, "/api/v1/chat/sessions", Endpoint::list_sessions},
    Route{V::get, "/api/v1/chat/sessions/{}", Endpoint::get_session},
    Route{V::delete_, "/api/v1/chat/sessions/{}", Endpoint::delete_session},
    Route{V::get, "/api/v1/chat/sessions/{}/messages", Endpoint::list_messages},
    Route{V::post, "/api/v1/chat/sessions/{}/messages", Endpoint::send_message},
    Route{V::get, "/api/v1/chat/messages/stream", Endpoint::stream_session},
    Route{V::get, "/api/v1/chat/messages/{}/status", Endpoint::session_status},
    Route{V::get, "/api/v1/chat/messages/{}/content", Endpoint::message_content},
    Route{V::post, "/api/v1/chat/messages/{}/cancel", Endpoint::cancel_message},
    Route{V::get, "/api/v1/chat/messages/{}/stream", Endpoint::stream_message},
    Route{V::get, "/api/v1/chat/messages/{}/poll", Endpoint::poll},
};

const chatd::http::Router<Endpoint>& router() {
    static const auto* r = [] {
        auto* built = new chatd::http::Router<Endpoint>;
        for (const auto& route : kRoutes) built->add(route.method, route.pattern, route.endpoint);
        return built;
    }();
    return *r;
}

std::size_t parameter_count(Endpoint e) {
    for (const auto& route : kRoutes) {
        if (route.endpoint != e) continue;
        std::size_t n = 0;
        for (auto s : chatd::http::split_path(route.pattern)) n += s == "{}";
        return n;
    }
    return 0;
}

std::optional<std::string> query_value(const boost::urls::params_view& q, std::string_view key) {
    auto it = q.find(key);
    if (it == q.end() || !(*it).has_value) return std::nullopt;
    return std::string((*it).value);
}

std::optional<std::string> header(const Request& r, bhttp::field f) {
    auto it = r.find(f);
    if (it == r.end()) return std::nullopt;
    return std::string(it->value());
}

// Content the cursor offsets of stream requests are checked against.
constexpr std::string_view kContent = "caf\xC3\xA9 \xF0\x9F\x99\x82 done";

void read_cursor(const Request& r, const boost::urls::params_view& q) {
    std::optional<std::string> text;
    if (auto it = r.find("Last-Event-ID"); it != r.end() && !it->value().empty())
        text = std::string(it->value());
    else
        text = query_value(q, "last_event_id");
    if (!text) return;
    auto cursor = chatd::engine::decode_cursor(*text);
    if (!cursor) return;
    CHATD_FUZZ_CHECK(chatd::engine::encode_cursor(*cursor) == *text);
    (void)chatd::engine::check_cursor_offset(kContent, cursor->offset);
}

// A rejected body's error answer, as the API would send it.
void answer_problem(std::string_view problem) {
    if (problem.empty()) return;
    auto body = api::error_body("invalid_request", problem);
    CHATD_FUZZ_CHECK(api::parse_object(body).object.has_value());
}

// Reads a body as create_session and send_message do.
void read_body(std::string_view body) {
    auto parsed = api::parse_object(body);
    if (!parsed.object) {
        CHATD_FUZZ_CHECK(!parsed.problem.empty());
        answer_problem(parsed.problem);
        return;
    }
    const auto& o = *parsed.object;
    std::string problem;
    auto title = api::optional_string(o, "title", problem);
    auto system_prompt = api::optional_string(o, "system_prompt", problem);
    auto model = api::optional_string(o, "model", problem);
    if (title) (void)(api::count_code_points(*title) > kMaxTitleChars);
    answer_problem(problem);
    (void)system_prompt;
    (void)model;

    auto* content = o.if_contains("content");
    if (!content || !content->is_string()) return;
    // The stored message shows its content back unchanged.
    chatd::store::Message m;
    m.id = chatd::MessageId{"msg_01JABCDEFGHJKMNPQRSTVWXYZ0"};
    m.content = std::string(content->as_string());
    auto shown = api::parse_object(json::serialize(api::to_json(m)));
    CHATD_FUZZ_CHECK(shown.object && shown.object->at("content").as_string() == m.content);
}

void read_poll_since(const boost::urls::params_view& q) {
    auto text = query_value(q, "since");
    if (!text) return;
    std::int64_t seq = 0;
    if (text->size() > 1 && (*text)[0] == 'c') {
        (void)std::from_chars(text->data() + 1, text->data() + text->size(), seq);
    } else if (auto t = chatd::parse_iso8601(*text)) {
        (void)chatd::format_iso8601(*t);
    }
}

void read_list_query(const boost::urls::params_view& q) {
    if (auto text = query_value(q, "limit")) {
        std::size_t v = 0;
        (void)std::from_chars(text->data(), text->data() + text->size(), v);
    }
    if (auto text = query_value(q, "before")) (void)chatd::is_well_formed_id(*text, "ses_");
}

// The checks Server::serve and ChatApi::handle make before routing: framing,
// Expect, Host and Origin, and the credentials of every mode's header.
void check_edge(const Request& r) {
    (void)chatd::http::check_framing(r, r.version());
    (void)chatd::http::expectation_of(r);
    static const chatd::api::RequestGuard local(
        {.loopback_hosts_only = true, .allowed_hosts = {"127.0.0.1"}});
    static const chatd::api::RequestGuard listed(
        {.allowed_hosts = {"chat.example.com"}, .allowed_origins = {"https://app.example.com"}});
    (void)local.check(r);
    (void)listed.check(r);
    if (auto token = chatd::auth::bearer_token(r)) CHATD_FUZZ_CHECK(!token->empty());
}

// What ChatApi::handle and the matched handler read from one request.
void handle(const Request& r) {
    (void)r.keep_alive();
    (void)r.version();
    check_edge(r);
    auto target = boost::urls::parse_origin_form(r.target());
    if (!target) return;  // 400 malformed request target
    auto query = target->params();
    for (auto param : query) (void)param;  // decodes every key and value
    auto path = target->path();
    auto match = router().match(r.method(), path);
    if (!match.target) {
        CHATD_FUZZ_CHECK(match.params.empty());
        // 405: `Allow` names other methods, each of which the path does match.
        std::string_view allow = match.allow;
        while (!allow.empty()) {
            auto end = allow.find(", ");
            auto verb = bhttp::string_to_verb(allow.substr(0, end));
            CHATD_FUZZ_CHECK(verb != V::unknown && verb != r.method());
            CHATD_FUZZ_CHECK(router().match(verb, path).target != nullptr);
            allow.remove_prefix(end == std::string_view::npos ? allow.size() : end + 2);
        }
        return;
    }
    auto endpoint = *match.target;
    CHATD_FUZZ_CHECK(match.params.size() == parameter_count(endpoint));
    for (const auto& p : match.params) CHATD_FUZZ_CHECK(!p.empty());
    if (r.method() == V::post && !r.body().empty()) (void)header(r, bhttp::field::content_type);
    std::string_view id = match.params.empty() ? std::string_view() : match.params[0];
    switch (endpoint) {
        case Endpoint::healthz:
        case Endpoint::readyz:
            break;
        case Endpoint::create_session:
            read_body(r.body());
            break;
        case Endpoint::list_sessions:
            read_list_query(query);
            break;
        case Endpoint::get_session:
        case Endpoint::delete_session:
        case Endpoint::list_messages:
        case Endpoint::session_status:
            (void)chatd::is_well_formed_id(id, "ses_");
            break;
        case Endpoint::send_message:
            (void)chatd::is_well_formed_id(id, "ses_");
            read_body(r.body());
            if (auto it = r.find("Idempotency-Key"); it != r.end())
                (void)(api::count_code_points(it->value()) > kMaxIdempotencyKeyChars);
            if (auto accept = header(r, bhttp::field::accept))
                (void)(accept->find("text/event-stream") != std::string::npos);
            break;
        case Endpoint::message_content:
        case Endpoint::cancel_message:
            (void)chatd::is_well_formed_id(id, "msg_");
            break;
        case Endpoint::poll:
            (void)chatd::is_well_formed_id(id, "ses_");
            read_poll_since(query);
            break;
        case Endpoint::stream_message:
            read_cursor(r, query);
            break;
        case Endpoint::stream_session:
            if (auto s = query_value(query, "session_id"))
                (void)chatd::is_well_formed_id(*s, "ses_");
            read_cursor(r, query);
            break;
    }
}

// Server::serve's loop over one connection's bytes, arriving in reads of
// sizes drawn from the input.
void serve(std::string_view bytes, chatd::fuzz::Splitter& random) {
    std::size_t consumed = 0;  // handed to a parser
    std::size_t received = 0;  // read off the "socket"
    auto receive = [&] {
        received += std::min(bytes.size() - received, random.read_size(bytes.size() - received));
    };
    for (std::size_t n = 0; n < kMaxPipelined; ++n) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(kMaxHeaderBytes);
        parser.body_limit(kMaxBodyBytes);
        parser.eager(true);  // async_read_header then async_read: header and body
        boost::beast::error_code ec;
        while (!parser.is_done()) {
            if (consumed == received) {
                if (received == bytes.size()) {
                    // EOF: as beast::http::read does, an error unless nothing came.
                    if (parser.got_some())
                        parser.put_eof(ec);
                    else
                        ec = bhttp::error::end_of_stream;
                    break;
                }
                receive();
            }
            auto used =
                parser.put(boost::asio::buffer(bytes.data() + consumed, received - consumed), ec);
            CHATD_FUZZ_CHECK(used <= received - consumed);
            consumed += used;
            if (ec == bhttp::error::need_more) {
                ec = {};
                if (received == bytes.size()) {
                    if (parser.got_some())
                        parser.put_eof(ec);
                    else
                        ec = bhttp::error::end_of_stream;
                    break;
                }
                receive();
                continue;
            }
            if (ec) break;
        }
        // 413, 431, 400 or a quiet end: the connection closes either way.
        if (ec) return;
        CHATD_FUZZ_CHECK(parser.get().body().size() <= kMaxBodyBytes);
        auto request = parser.release();
        handle(request);
        if (!request.keep_alive()) return;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto input = chatd::fuzz::as_text(data, size);
    chatd::fuzz::Splitter random(input);
    serve(input, random);
    read_body(input);
    return 0;
}
