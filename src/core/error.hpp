#pragma once
// chatd's error vocabulary. Expected failures travel as Result<T> values carrying
// an error_code of this category (or a foreign one: asio, sqlite). The API layer
// maps each code to an HTTP status in one place (api/http_error.cpp).
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>

namespace chatd {

enum class Error {
    not_found = 1,
    not_generating,  // cancel of a message that is not generating
    invalid_cursor,
    idempotency_key_reused,
    store_failure,
    shutting_down,
    bad_request,     // a malformed request (HTTP framing, Host)
    unauthorized,    // no valid credentials (every cause looks the same)
    forbidden_host,  // a Host this server does not answer for (DNS rebinding)
    cross_origin,    // a state-changing request from another site
    // Limits (429 per user, 503 for the whole server; with Retry-After).
    rate_limited,          // requests per user per second
    too_many_generations,  // concurrent generations of one user
    too_many_streams,      // open event streams of one user
    too_many_sessions,     // sessions one user may keep
    overloaded,            // live generations of the whole server
    model_not_allowed,     // a model outside --allowed-models
    // Requests the API refuses before acting (400, 405, 409, 413, 415).
    invalid_request,         // a field or parameter out of its contract
    invalid_json,            // a body that is not one JSON object
    content_too_long,        // a message above --max-message-bytes
    invalid_since,           // a poll's `since` that is neither time nor token
    unsupported_media_type,  // a body that is not application/json
    method_not_allowed,      // a path that exists, with another method
    generation_in_progress,  // a send while the session's answer generates
    cursor_mismatch,         // a cursor of another message or session
    cursor_out_of_range,     // past the committed content, or inside a character
    not_ready,               // readiness: store unreachable or shutting down
    store_unavailable,       // the store did not answer: unreachable, or past a deadline
    lease_lost,              // a write under a lease another node has taken over (fencing)
};

const boost::system::error_category& chatd_category() noexcept;

inline boost::system::error_code make_error_code(Error e) noexcept {
    return {static_cast<int>(e), chatd_category()};
}

template <class T>
using Result = boost::system::result<T>;

}  // namespace chatd

template <>
struct boost::system::is_error_code_enum<chatd::Error> : std::true_type {};
