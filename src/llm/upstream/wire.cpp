#include "llm/upstream/wire.hpp"

#include "core/utf8.hpp"
#include "llm/upstream/json_access.hpp"

#include <array>

namespace chatd::llm::upstream {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxMessageBytes = 500;

std::string truncated(std::string_view s) {
    return std::string(s.substr(0, utf8_floor(s, std::min(s.size(), kMaxMessageBytes))));
}

// The vendor's own words, when the body is the vendor's JSON error shape
// (both put it at error.message), else the start of the body.
std::string message_from_body(std::string_view body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (!ec && v.is_object()) {
        if (auto* e = object_at(v.as_object(), "error")) return truncated(string_at(*e, "message"));
    }
    return truncated(body);
}

std::string error_type_from_body(std::string_view body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return {};
    auto* e = object_at(v.as_object(), "error");
    return e ? std::string(string_at(*e, "type")) : std::string();
}

}  // namespace

Failure failure_for_error_type(std::string_view type, std::string message) {
    struct Row {
        std::string_view type, code;
        bool transient;
    };
    static constexpr std::array kRows{
        Row{"overloaded_error", "upstream_unavailable", true},
        Row{"api_error", "upstream_unavailable", true},
        Row{"server_error", "upstream_unavailable", true},
        Row{"rate_limit_error", "upstream_rate_limited", true},
        Row{"rate_limit_exceeded", "upstream_rate_limited", true},
        Row{"timeout_error", "upstream_timeout", true},
        Row{"authentication_error", "upstream_auth", false},
        Row{"permission_error", "upstream_auth", false},
        Row{"invalid_api_key", "upstream_auth", false},
        Row{"invalid_request_error", "upstream_bad_request", false},
        Row{"not_found_error", "upstream_bad_request", false},
        Row{"request_too_large", "upstream_bad_request", false},
    };
    for (const auto& row : kRows)
        if (row.type == type)
            return {std::string(row.code), std::move(message), row.transient, std::nullopt};
    return {"upstream_unavailable", std::move(message), true, std::nullopt};
}

Failure failure_for_status(int status, std::string_view body) {
    std::string detail = message_from_body(body);
    std::string message = "upstream answered HTTP " + std::to_string(status);
    if (!detail.empty()) message += ": " + detail;
    switch (status) {
        case 401:
        case 403:
            return {"upstream_auth", std::move(message), false, std::nullopt};
        case 400:
        case 404:
        case 413:
        case 422:
            return {"upstream_bad_request", std::move(message), false, std::nullopt};
        case 429:
            return {"upstream_rate_limited", std::move(message), true, std::nullopt};
        case 408:
        case 504:
            return {"upstream_timeout", std::move(message), true, std::nullopt};
        case 409:
        case 500:
        case 502:
        case 503:
        case 529:
            return {"upstream_unavailable", std::move(message), true, std::nullopt};
        default:
            break;
    }
    if (status >= 500) return {"upstream_unavailable", std::move(message), false, std::nullopt};
    // Other statuses: let the vendor's error type decide, never retrying.
    auto failure = failure_for_error_type(error_type_from_body(body), std::move(message));
    if (failure.code == "upstream_unavailable") failure.code = "upstream_bad_request";
    failure.transient = false;
    return failure;
}

}  // namespace chatd::llm::upstream
