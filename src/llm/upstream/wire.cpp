#include "llm/upstream/wire.hpp"

#include "core/utf8.hpp"
#include "llm/upstream/json_access.hpp"

#include <array>

namespace chatd::llm::upstream {
namespace {

constexpr std::size_t kMaxMessageBytes = 500;

std::string truncated(std::string_view s) {
    return std::string(s.substr(0, utf8_floor(s, std::min(s.size(), kMaxMessageBytes))));
}

// Both vendors' error bodies are {"error": {"type", "message"}, …}.
struct VendorError {
    std::string type;
    std::string message;  // the vendor's own words, else the start of the body
};

VendorError vendor_error(std::string_view body) {
    if (auto o = parse_object(body)) {
        if (auto* e = object_at(*o, "error"))
            return {std::string(string_at(*e, "type")), truncated(string_at(*e, "message"))};
    }
    return {{}, truncated(body)};
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

Failure failure_for_error_event(std::string_view type, std::string_view message) {
    return failure_for_error_type(type, "upstream error event: " + std::string(message));
}

Failure malformed_event() {
    return {"upstream_protocol", "upstream sent a malformed event: not a JSON object", false,
            std::nullopt};
}

Failure failure_for_status(int status, std::string_view body) {
    auto vendor = vendor_error(body);
    std::string message = "upstream answered HTTP " + std::to_string(status);
    if (!vendor.message.empty()) message += ": " + vendor.message;
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
    auto failure = failure_for_error_type(vendor.type, std::move(message));
    if (failure.code == "upstream_unavailable") failure.code = "upstream_bad_request";
    failure.transient = false;
    return failure;
}

}  // namespace chatd::llm::upstream
