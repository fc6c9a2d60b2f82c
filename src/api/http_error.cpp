#include "api/http_error.hpp"

#include "api/json_codec.hpp"

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

http::Response limited(http::Status status, std::string_view code, std::string_view message,
                       Framing framing, std::chrono::seconds retry_after) {
    auto res = error_response(status, code, message, framing);
    res.set(http::bhttp::field::retry_after,
            std::to_string(std::max<std::int64_t>(1, retry_after.count())));
    return res;
}

}  // namespace

http::Response error_response(boost::system::error_code ec, Framing framing,
                              std::optional<std::chrono::seconds> retry_after) {
    using S = http::Status;
    using std::chrono::seconds;
    if (ec.category() == chatd_category()) {
        switch (static_cast<Error>(ec.value())) {
            case Error::not_found:
                return error_response(S::not_found, "not_found", "not found", framing);
            case Error::not_generating:
                return error_response(S::conflict, "not_generating",
                                      "the message is not generating", framing);
            case Error::invalid_cursor:
                return error_response(S::bad_request, "invalid_cursor", "invalid cursor", framing);
            case Error::idempotency_key_reused:
                return error_response(S::unprocessable_entity, "idempotency_key_reused",
                                      "this Idempotency-Key was used with a different request",
                                      framing);
            case Error::shutting_down:
                return error_response(S::service_unavailable, "shutting_down",
                                      "the server is shutting down", framing);
            case Error::bad_request:
                return error_response(S::bad_request, "bad_request", "malformed request", framing);
            case Error::unauthorized: {
                // The same bytes whatever was wrong: a client learns nothing
                // about which check failed.
                auto res = error_response(S::unauthorized, "unauthorized",
                                          "missing or invalid credentials", framing);
                res.set(http::bhttp::field::www_authenticate, "Bearer realm=\"chatd\"");
                return res;
            }
            case Error::forbidden_host:
                return error_response(S::forbidden, "forbidden_host",
                                      "this server does not answer for that Host", framing);
            case Error::cross_origin:
                return error_response(S::forbidden, "cross_origin",
                                      "state-changing requests from another origin are refused",
                                      framing);
            case Error::rate_limited:
                return limited(S::too_many_requests, "rate_limited", "too many requests; slow down",
                               framing, retry_after.value_or(seconds(1)));
            case Error::too_many_generations:
                return limited(S::too_many_requests, "too_many_generations",
                               "too many of your answers are generating; wait for one to end",
                               framing, retry_after.value_or(seconds(5)));
            case Error::too_many_streams:
                return limited(S::too_many_requests, "too_many_streams",
                               "too many of your streams are open; close one", framing,
                               retry_after.value_or(seconds(1)));
            case Error::too_many_sessions:
                return limited(S::too_many_requests, "too_many_sessions",
                               "you have as many sessions as allowed; delete one", framing,
                               retry_after.value_or(seconds(60)));
            case Error::overloaded:
                return limited(S::service_unavailable, "overloaded",
                               "the server is at capacity; try again shortly", framing,
                               retry_after.value_or(seconds(5)));
            case Error::model_not_allowed:
                return error_response(S::bad_request, "model_not_allowed",
                                      "this model is not allowed here", framing);
            case Error::store_failure:
                return error_response(S::service_unavailable, "store_unavailable",
                                      "the store is unavailable", framing);
        }
    }
    return error_response(S::internal_server_error, "internal", "internal error", framing);
}

}  // namespace chatd::api
