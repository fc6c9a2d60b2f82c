#include "api/http_error.hpp"

#include "api/json_codec.hpp"

#include <boost/json/serialize.hpp>

namespace chatd::api {

http::Response json_response(http::Status status, std::string body, Framing framing) {
    http::Response res{status, framing.version};
    res.set(http::bhttp::field::content_type, "application/json");
    res.set(http::bhttp::field::cache_control, "no-store");
    res.keep_alive(framing.keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

http::Response error_response(http::Status status, std::string_view code, std::string_view message,
                              Framing framing) {
    return json_response(status, error_body(code, message), framing);
}

namespace {

using S = http::Status;
using std::chrono::seconds;

// How one error reaches the client. Limits say when to try again.
struct Mapping {
    S status;
    std::string_view code;
    std::string_view message;
    std::optional<seconds> retry_after = std::nullopt;
};

Mapping mapping_of(Error e) {
    switch (e) {
        case Error::not_found:
            return {S::not_found, "not_found", "not found"};
        case Error::not_generating:
            return {S::conflict, "not_generating", "the message is not generating"};
        case Error::invalid_cursor:
            return {S::bad_request, "invalid_cursor", "malformed cursor"};
        case Error::cursor_mismatch:
            return {S::bad_request, "invalid_cursor",
                    "the cursor belongs to another message or session"};
        case Error::cursor_out_of_range:
            return {S::bad_request, "invalid_cursor",
                    "the cursor is past the committed content or inside a character"};
        case Error::idempotency_key_reused:
            return {S::unprocessable_entity, "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request"};
        case Error::shutting_down:
            return {S::service_unavailable, "shutting_down", "the server is shutting down"};
        case Error::not_ready:
            return {S::service_unavailable, "not_ready", "not ready"};
        case Error::bad_request:
            return {S::bad_request, "bad_request", "malformed request"};
        case Error::invalid_request:
            return {S::bad_request, "invalid_request", "invalid request"};
        case Error::invalid_json:
            return {S::bad_request, "invalid_json", "request body must be a JSON object"};
        case Error::invalid_since:
            return {S::bad_request, "invalid_since",
                    "`since` must be an ISO-8601 time or a `next_since` value"};
        case Error::content_too_long:
            return {S::payload_too_large, "message_too_long", "`content` is too long"};
        case Error::unsupported_media_type:
            return {S::unsupported_media_type, "unsupported_media_type",
                    "request body must be application/json"};
        case Error::method_not_allowed:
            return {S::method_not_allowed, "method_not_allowed", "method not allowed here"};
        case Error::generation_in_progress:
            return {S::conflict, "generation_in_progress",
                    "a generation is already in progress in this session"};
        case Error::model_not_allowed:
            return {S::bad_request, "model_not_allowed", "this model is not allowed here"};
        case Error::unauthorized:
            // The same bytes whatever was wrong: a client learns nothing
            // about which check failed.
            return {S::unauthorized, "unauthorized", "missing or invalid credentials"};
        case Error::forbidden_host:
            return {S::forbidden, "forbidden_host", "this server does not answer for that Host"};
        case Error::cross_origin:
            return {S::forbidden, "cross_origin",
                    "state-changing requests from another origin are refused"};
        case Error::rate_limited:
            return {S::too_many_requests, "rate_limited", "too many requests; slow down",
                    seconds(1)};
        case Error::too_many_generations:
            return {S::too_many_requests, "too_many_generations",
                    "too many of your answers are generating; wait for one to end", seconds(5)};
        case Error::too_many_streams:
            return {S::too_many_requests, "too_many_streams",
                    "too many of your streams are open; close one", seconds(1)};
        case Error::too_many_sessions:
            return {S::too_many_requests, "too_many_sessions",
                    "you have as many sessions as allowed; delete one", seconds(60)};
        case Error::overloaded:
            return {S::service_unavailable, "overloaded",
                    "the server is at capacity; try again shortly", seconds(5)};
        case Error::store_failure:
            return {S::service_unavailable, "store_unavailable", "the store is unavailable"};
        case Error::lease_lost:  // the store's answer to a stale owner; never a client's
        case Error::store_unavailable:
            return {S::service_unavailable, "store_unavailable",
                    "the store is unreachable; try again shortly", seconds(5)};
    }
    return {S::internal_server_error, "internal", "internal error"};
}

}  // namespace

namespace {

Mapping mapping_of(const Problem& problem) {
    if (problem.code.category() == chatd_category())
        return mapping_of(static_cast<Error>(problem.code.value()));
    return {S::internal_server_error, "internal", "internal error"};
}

}  // namespace

std::string_view error_code_of(const Problem& problem) {
    return mapping_of(problem).code;
}

http::Response error_response(const Problem& problem, Framing framing,
                              std::optional<std::chrono::seconds> retry_after) {
    Mapping m = mapping_of(problem);
    json::object error{{"code", m.code},
                       {"message", problem.detail.empty() ? m.message : problem.detail}};
    if (problem.active_message) error["active_message_id"] = problem.active_message->value;
    auto res = json_response(m.status, json::serialize(json::object{{"error", std::move(error)}}),
                             framing);
    if (m.status == S::unauthorized)
        res.set(http::bhttp::field::www_authenticate, "Bearer realm=\"chatd\"");
    if (m.retry_after) {
        auto wait = retry_after.value_or(*m.retry_after);
        res.set(http::bhttp::field::retry_after,
                std::to_string(std::max<std::int64_t>(1, wait.count())));
    }
    return res;
}

}  // namespace chatd::api
