#include "api/requests.hpp"

#include "api/json_codec.hpp"
#include "core/text.hpp"
#include "core/time.hpp"

#include <algorithm>
#include <cctype>
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

Parsed<std::string> chat_id(std::string_view text) {
    constexpr std::size_t kMaxChars = 128;
    bool ok = !text.empty() && text.size() <= kMaxChars &&
              std::all_of(text.begin(), text.end(), [](char ch) {
                  return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
              });
    if (!ok)
        return Problem(Error::invalid_request,
                       "a chat id must be 1 to 128 letters, digits, `_` or `-`");
    return std::string(text);
}

namespace {

// The text of a UI message's parts: text parts only (step boundaries carry
// none); any other part (a file, a tool result) is refused, not dropped.
Parsed<std::string> text_of(const json::value& parts) {
    if (!parts.is_array()) return Problem(Error::invalid_request, "`parts` must be an array");
    std::string text;
    for (const auto& part : parts.as_array()) {
        const auto* object = part.if_object();
        const auto* type = object ? object->if_contains("type") : nullptr;
        if (!type || !type->is_string())
            return Problem(Error::invalid_request, "every part needs a string `type`");
        if (type->as_string() == "step-start") continue;
        if (type->as_string() != "text")
            return Problem(Error::invalid_request, "only text parts can be sent, not `" +
                                                       std::string(type->as_string()) + "`");
        const auto* value = object->if_contains("text");
        if (!value || !value->is_string())
            return Problem(Error::invalid_request, "a text part needs a string `text`");
        text += value->as_string();
    }
    return text;
}

}  // namespace

Parsed<UiSend> parse_ui_send(std::string_view body, const RequestLimits& limits) {
    auto parsed = parse_object(body);
    if (!parsed.object) return Problem(Error::invalid_json, parsed.problem);
    const auto& o = *parsed.object;
    const auto* id = o.if_contains("id");
    if (!id || !id->is_string()) return Problem(Error::invalid_request, "`id` must be a string");
    auto chat = chat_id(id->as_string());
    if (!chat) return chat.error();
    if (const auto* trigger = o.if_contains("trigger");
        trigger && !(trigger->is_string() && trigger->as_string() == "submit-message"))
        return Problem(Error::invalid_request,
                       "`trigger` must be `submit-message`: regenerating is not supported");
    const auto* messages = o.if_contains("messages");
    if (!messages || !messages->is_array() || messages->as_array().empty())
        return Problem(Error::invalid_request, "`messages` must be a non-empty array");
    const auto* last = messages->as_array().back().if_object();
    const auto* role = last ? last->if_contains("role") : nullptr;
    if (!role || !role->is_string() || role->as_string() != "user")
        return Problem(Error::invalid_request, "the last of `messages` must be the user's");
    const auto* parts = last->if_contains("parts");
    if (!parts) return Problem(Error::invalid_request, "the user message needs `parts`");
    auto text = text_of(*parts);
    if (!text) return text.error();
    if (text->empty()) return Problem(Error::invalid_request, "the user message has no text");
    if (text->size() > limits.max_message_bytes)
        return Problem(Error::content_too_long, "the user message is longer than " +
                                                    std::to_string(limits.max_message_bytes) +
                                                    " bytes");
    UiSend send{.chat_id = std::move(*chat), .prompt = {.content = std::move(*text)}};
    // The client's message id: a retried post of the same message replays
    // its turn instead of sending it twice.
    if (const auto* message_id = last->if_contains("id");
        message_id && message_id->is_string() && !message_id->as_string().empty()) {
        if (count_code_points(message_id->as_string()) > limits.max_idempotency_key_chars)
            return Problem(Error::invalid_request, "the user message's `id` is too long");
        send.prompt.idempotency_key = "ui:" + std::string(message_id->as_string());
    }
    return send;
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
