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
