#pragma once
// Reading requests: path ids, JSON bodies, query parameters and headers, each
// checked against its contract, with a Problem that says what was wrong.
// Pure functions of the request; what they accept is what handlers act on.
// The HTTP fuzz target runs them on arbitrary requests.
#include "api/http_error.hpp"
#include "engine/conversations.hpp"
#include "engine/cursor.hpp"
#include "http/types.hpp"
#include "store/model.hpp"

#include <boost/system/result.hpp>
#include <boost/url/params_view.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace chatd::api {

template <class T>
using Parsed = boost::system::result<T, Problem>;

// What request bodies and headers may hold.
struct RequestLimits {
    std::size_t max_message_bytes = 256 * 1024;
    std::size_t max_title_chars = 200;
    std::size_t max_system_prompt_bytes = 256 * 1024;
    std::size_t max_model_bytes = 200;
    std::size_t max_idempotency_key_chars = 255;
};

// Ids in paths and queries: a malformed id is not_found, as a missing one.
Parsed<SessionId> session_id(std::string_view text);
Parsed<MessageId> message_id(std::string_view text);

// POST /sessions: {title?, system_prompt?, model?}, strings or null.
Parsed<engine::SessionDraft> parse_session_draft(std::string_view body,
                                                 const RequestLimits& limits);
// POST /sessions/{id}/messages: {content} and the Idempotency-Key header.
Parsed<engine::Prompt> parse_prompt(const http::Request& request, const RequestLimits& limits);

// An AI SDK chat id (path or body): 1 to 128 of `A-Z a-z 0-9 _ -`, so it
// needs no escaping in a path. Another shape is invalid_request.
Parsed<std::string> chat_id(std::string_view text);

// What the AI SDK's DefaultChatTransport posts (`useChat`'s request): the
// chat `id`, the whole `messages` history, `trigger`, `messageId`. chatd
// keeps the history itself, so only the last message counts: a user
// message of text parts, whose id (the client's) makes the send
// idempotent. Regenerating an answer is not supported (invalid_request).
struct UiSend {
    std::string chat_id;
    engine::Prompt prompt;
};
Parsed<UiSend> parse_ui_send(std::string_view body, const RequestLimits& limits);

// A page of a list: `limit` (absent: `fallback`; 1..max) and `before` (the
// `next` of an earlier page).
template <class Id>
struct Page {
    std::size_t limit = 0;
    std::optional<Id> before;
};
Parsed<Page<SessionId>> parse_session_page(const boost::urls::params_view& query,
                                           std::size_t fallback, std::size_t max);
Parsed<Page<MessageId>> parse_message_page(const boost::urls::params_view& query,
                                           std::size_t fallback, std::size_t max);

// A poll's `since`: an ISO-8601 time or a `next_since` token (`c<seq>`);
// absent: everything. The query is form-decoded, so a `+` in a time's offset
// must be sent as `%2B` (or use `Z`).
Parsed<store::Since> parse_since(const boost::urls::params_view& query);

// Where a stream resumes: `Last-Event-ID`, else the `last_event_id` query
// parameter; none when neither is given.
Parsed<std::optional<engine::Cursor>> parse_cursor(const http::Request& request,
                                                   const boost::urls::params_view& query);

// A body, when there is one, must be `application/json` (parameters such as
// charset aside).
Parsed<void> check_content_type(const http::Request& request);
// Whether the client asks for an event stream (`Accept: text/event-stream`).
bool wants_event_stream(const http::Request& request);

std::optional<std::string> query_value(const boost::urls::params_view& query,
                                       std::string_view key);

}  // namespace chatd::api
