#include "api/requests.hpp"

#include "api/json_codec.hpp"
#include "core/text.hpp"
#include "core/time.hpp"

#include <algorithm>
#include <charconv>

namespace chatd::api {
namespace {

template <class Id>
Parsed<Id> id_of(std::string_view text, std::string_view prefix) {
    if (!is_well_formed_id(text, prefix)) return Problem(Error::not_found);
    return Id{std::string(text)};
}

template <class Id>
Parsed<Page<Id>> page_of(const boost::urls::params_view& query, std::size_t fallback,
                         std::size_t max, std::string_view prefix) {
    Page<Id> page{.limit = fallback};
    bool ok = true;
    if (auto text = query_value(query, "limit")) {
        auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), page.limit);
        ok = ec == std::errc{} && ptr == text->data() + text->size() && page.limit >= 1 &&
             page.limit <= max;
    }
    if (auto text = query_value(query, "before"); ok && text) {
        ok = is_well_formed_id(*text, prefix);
        if (ok) page.before = Id{*text};
    }
    if (!ok)
        return Problem(Error::invalid_request, "`limit` must be an integer from 1 to " +
                                                   std::to_string(max) +
                                                   ", `before` a `next` value from an earlier page");
    return page;
}

}  // namespace

Parsed<SessionId> session_id(std::string_view text) {
    return id_of<SessionId>(text, "ses_");
}

Parsed<MessageId> message_id(std::string_view text) {
    return id_of<MessageId>(text, "msg_");
}

Parsed<engine::SessionDraft> parse_session_draft(std::string_view body,
                                                 const RequestLimits& limits) {
    auto parsed = parse_object(body);
    if (!parsed.object) return Problem(Error::invalid_json, parsed.problem);
    std::string problem;
    engine::SessionDraft draft{.title = optional_string(*parsed.object, "title", problem),
                               .system_prompt =
                                   optional_string(*parsed.object, "system_prompt", problem),
                               .model = optional_string(*parsed.object, "model", problem)};
    if (problem.empty() && draft.title && count_code_points(*draft.title) > limits.max_title_chars)
        problem =
            "`title` is longer than " + std::to_string(limits.max_title_chars) + " characters";
    if (problem.empty() && draft.system_prompt &&
        draft.system_prompt->size() > limits.max_system_prompt_bytes)
        problem = "`system_prompt` is longer than " +
                  std::to_string(limits.max_system_prompt_bytes) + " bytes";
    if (problem.empty() && draft.model &&
        (draft.model->empty() || draft.model->size() > limits.max_model_bytes))
        problem = "`model` must be a non-empty string of at most " +
                  std::to_string(limits.max_model_bytes) + " bytes";
    if (!problem.empty()) return Problem(Error::invalid_request, std::move(problem));
    return draft;
}

Parsed<engine::Prompt> parse_prompt(const http::Request& request, const RequestLimits& limits) {
    auto parsed = parse_object(request.body());
    if (!parsed.object) return Problem(Error::invalid_json, parsed.problem);
    auto* content = parsed.object->if_contains("content");
    if (!content) return Problem(Error::invalid_request, "`content` is required");
    if (!content->is_string())
        return Problem(Error::invalid_request, "`content` must be a string");
    engine::Prompt prompt{.content = std::string(content->as_string())};
    if (prompt.content.empty())
        return Problem(Error::invalid_request, "`content` must not be empty");
    if (prompt.content.size() > limits.max_message_bytes)
        return Problem(Error::content_too_long, "`content` is longer than " +
                                                    std::to_string(limits.max_message_bytes) +
                                                    " bytes");
    if (auto it = request.find("Idempotency-Key"); it != request.end()) {
        prompt.idempotency_key = std::string(it->value());
        if (prompt.idempotency_key->empty() ||
            count_code_points(*prompt.idempotency_key) > limits.max_idempotency_key_chars)
            return Problem(Error::invalid_request,
                           "`Idempotency-Key` must have 1 to " +
                               std::to_string(limits.max_idempotency_key_chars) + " characters");
    }
    return prompt;
}

Parsed<Page<SessionId>> parse_session_page(const boost::urls::params_view& query,
                                           std::size_t fallback, std::size_t max) {
    return page_of<SessionId>(query, fallback, max, "ses_");
}

Parsed<Page<MessageId>> parse_message_page(const boost::urls::params_view& query,
                                           std::size_t fallback, std::size_t max) {
    return page_of<MessageId>(query, fallback, max, "msg_");
}

Parsed<store::Since> parse_since(const boost::urls::params_view& query) {
    store::Since since;
    auto text = query_value(query, "since");
    if (!text) return since;
    if (text->size() > 1 && (*text)[0] == 'c') {
        std::int64_t seq = 0;
        auto [ptr, ec] = std::from_chars(text->data() + 1, text->data() + text->size(), seq);
        if (ec == std::errc{} && ptr == text->data() + text->size() && seq >= 0) since.seq = seq;
    } else {
        since.time = parse_iso8601(*text);
    }
    if (!since.seq && !since.time) return Problem(Error::invalid_since);
    return since;
}

Parsed<std::optional<engine::Cursor>> parse_cursor(const http::Request& request,
                                                   const boost::urls::params_view& query) {
    std::optional<std::string> text;
    if (auto it = request.find("Last-Event-ID"); it != request.end() && !it->value().empty())
        text = std::string(it->value());
    else
        text = query_value(query, "last_event_id");
    if (!text) return std::optional<engine::Cursor>{};
    auto cursor = engine::decode_cursor(*text);
    if (!cursor) return Problem(cursor.error());
    return std::optional<engine::Cursor>{*cursor};
}

Parsed<void> check_content_type(const http::Request& request) {
    if (request.body().empty()) return {};
    auto it = request.find(http::bhttp::field::content_type);
    // The media type, without parameters such as charset.
    auto type = it == request.end() ? std::string_view() : std::string_view(it->value());
    type = trim(type.substr(0, type.find(';')));
    if (!iequals(type, "application/json")) return Problem(Error::unsupported_media_type);
    return {};
}

bool wants_event_stream(const http::Request& request) {
    auto it = request.find(http::bhttp::field::accept);
    if (it == request.end()) return false;
    return to_lower(it->value()).find("text/event-stream") != std::string::npos;
}

std::optional<std::string> query_value(const boost::urls::params_view& query,
                                       std::string_view key) {
    auto it = query.find(key);
    if (it == query.end() || !(*it).has_value) return std::nullopt;
    return std::string((*it).value);
}

}  // namespace chatd::api
