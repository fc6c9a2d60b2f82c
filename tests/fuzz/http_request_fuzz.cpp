// Fuzzes the HTTP request path: the bytes a client sends on a connection.
//
// They go through Beast's request parser with the server's limits and read
// pattern (src/http/server.cpp: a fresh parser per request, keep-alive
// requests pipelined on one buffer, reads of any size, EOF handling), and each
// parsed request through what ChatApi::handle and its handlers read from it:
// the edge checks, the origin-form target and its query, the route table, and
// then the very functions the handlers parse with (src/api/requests.hpp), each
// refusal answered through the one error map. ChatApi itself needs an engine,
// a store and a socket, so its routing is mirrored here: keep the route table
// in step with the handlers' add_routes.
//
// The whole input is also parsed as a bare request body, so that JSON is
// fuzzed without Content-Length framing in the way.
//
// Properties: Router's contract (a match has one non-empty parameter per `{}`
// of its pattern, a miss names the methods that would match), cursors decoded
// from requests re-encode to themselves, every refusal is one JSON error
// object, and a message's content survives to_json and back.
#include "api/http_error.hpp"
#include "api/json_codec.hpp"
#include "api/requests.hpp"
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

enum class Endpoint {
    healthz,
    readyz,
    create_session,
    list_sessions,
    get_session,
    update_session,
    delete_session,
    list_messages,
    send_message,
    stream_session,
    session_status,
    message_content,
    cancel_message,
    stream_message,
    poll,
    auth_session,
    ui_send,
    ui_resume,
    ui_chat,
};

struct Route {
    V method;
    std::string_view pattern;
    Endpoint endpoint;
};

// ChatApi's route table (the add_routes of sessions_api, messages_api,
// streams_api, ui_chat_api and identity).
constexpr std::array kRoutes{
    Route{V::get, "/healthz", Endpoint::healthz},
    Route{V::get, "/readyz", Endpoint::readyz},
    Route{V::post, "/api/v1/chat/sessions", Endpoint::create_session},
    Route{V::get, "/api/v1/chat/sessions", Endpoint::list_sessions},
    Route{V::get, "/api/v1/chat/sessions/{}", Endpoint::get_session},
    Route{V::patch, "/api/v1/chat/sessions/{}", Endpoint::update_session},
    Route{V::delete_, "/api/v1/chat/sessions/{}", Endpoint::delete_session},
    Route{V::get, "/api/v1/chat/sessions/{}/messages", Endpoint::list_messages},
    Route{V::post, "/api/v1/chat/sessions/{}/messages", Endpoint::send_message},
    Route{V::get, "/api/v1/chat/messages/stream", Endpoint::stream_session},
    Route{V::get, "/api/v1/chat/messages/{}/status", Endpoint::session_status},
    Route{V::get, "/api/v1/chat/messages/{}/content", Endpoint::message_content},
    Route{V::post, "/api/v1/chat/messages/{}/cancel", Endpoint::cancel_message},
    Route{V::get, "/api/v1/chat/messages/{}/stream", Endpoint::stream_message},
    Route{V::get, "/api/v1/chat/messages/{}/poll", Endpoint::poll},
    Route{V::post, "/api/v1/auth/session", Endpoint::auth_session},
    Route{V::get, "/api/v1/auth/session", Endpoint::auth_session},
    Route{V::delete_, "/api/v1/auth/session", Endpoint::auth_session},
    Route{V::post, "/api/v1/ai-sdk/chat", Endpoint::ui_send},
    Route{V::get, "/api/v1/ai-sdk/chat/{}/stream", Endpoint::ui_resume},
    Route{V::post, "/api/v1/ai-sdk/chat/{}/stop", Endpoint::ui_chat},
    Route{V::get, "/api/v1/ai-sdk/chat/{}/messages", Endpoint::ui_chat},
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

// Content the cursor offsets of stream requests are checked against.
constexpr std::string_view kContent = "caf\xC3\xA9 \xF0\x9F\x99\x82 done";

const api::RequestLimits kLimits{};

// A refused request's answer, as the API sends it: one JSON error object.
void answer(const api::Problem& problem) {
    auto res = api::error_response(problem, api::Framing{});
    auto body = api::parse_object(res.body());
    CHATD_FUZZ_CHECK(body.object && body.object->at("error").at("code").is_string());
}

template <class T>
bool accepted(const api::Parsed<T>& parsed) {
    if (!parsed) answer(parsed.error());
    return parsed.has_value();
}

// A stored message shows its content back unchanged.
void show_content(const std::string& content) {
    chatd::store::Message m;
    m.id = chatd::MessageId{"msg_01JABCDEFGHJKMNPQRSTVWXYZ0"};
    m.content = content;
    auto shown = api::parse_object(json::serialize(api::to_json(m)));
    CHATD_FUZZ_CHECK(shown.object && shown.object->at("content").as_string() == m.content);
}

void read_cursor(const Request& r, const boost::urls::params_view& q) {
    auto cursor = api::parse_cursor(r, q);
    if (!accepted(cursor) || !*cursor) return;
    const auto& c = **cursor;
    auto again = chatd::engine::decode_cursor(chatd::engine::encode_cursor(c));
    CHATD_FUZZ_CHECK(again && *again == c);
    (void)chatd::engine::check_cursor_offset(kContent, c.offset);
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
    if (r.method() == V::post || r.method() == V::patch) (void)accepted(api::check_content_type(r));
    std::string_view id = match.params.empty() ? std::string_view() : match.params[0];
    switch (endpoint) {
        case Endpoint::healthz:
        case Endpoint::readyz:
        case Endpoint::auth_session:
            break;
        case Endpoint::create_session:
            (void)accepted(api::parse_session_draft(r.body(), kLimits));
            break;
        case Endpoint::update_session:
            (void)accepted(api::session_id(id));
            (void)accepted(api::parse_session_draft(r.body(), kLimits));
            break;
        case Endpoint::list_sessions:
            (void)accepted(api::parse_session_page(query, 50, 200));
            break;
        case Endpoint::get_session:
        case Endpoint::delete_session:
        case Endpoint::session_status:
            (void)accepted(api::session_id(id));
            break;
        case Endpoint::list_messages:
            (void)accepted(api::session_id(id));
            (void)accepted(api::parse_message_page(query, 1000, 1000));
            break;
        case Endpoint::send_message: {
            (void)accepted(api::session_id(id));
            auto prompt = api::parse_prompt(r, kLimits);
            if (accepted(prompt)) show_content(prompt->content);
            (void)api::wants_event_stream(r);
            break;
        }
        case Endpoint::message_content:
        case Endpoint::cancel_message:
            (void)accepted(api::message_id(id));
            break;
        case Endpoint::poll: {
            (void)accepted(api::session_id(id));
            auto since = api::parse_since(query);
            if (accepted(since) && since->time) (void)chatd::format_iso8601(*since->time);
            break;
        }
        case Endpoint::stream_message:
            read_cursor(r, query);
            break;
        case Endpoint::stream_session:
            if (auto s = api::query_value(query, "session_id")) (void)accepted(api::session_id(*s));
            read_cursor(r, query);
            break;
        case Endpoint::ui_send:
            if (auto send = api::parse_ui_send(r.body(), kLimits); accepted(send)) {
                CHATD_FUZZ_CHECK(accepted(api::chat_id(send->chat_id)));
                show_content(send->prompt.content);
            }
            break;
        case Endpoint::ui_resume:
            (void)accepted(api::chat_id(id));
            read_cursor(r, query);
            break;
        case Endpoint::ui_chat:
            (void)accepted(api::chat_id(id));
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
    (void)accepted(api::parse_session_draft(input, kLimits));
    Request bare;
    bare.body() = std::string(input);
    if (auto prompt = api::parse_prompt(bare, kLimits); accepted(prompt))
        show_content(prompt->content);
    if (auto send = api::parse_ui_send(input, kLimits); accepted(send))
        show_content(send->prompt.content);
    return 0;
}
