#pragma once
// The one place where errors become HTTP statuses and JSON error bodies.
#include "core/error.hpp"
#include "core/ids.hpp"
#include "http/types.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace chatd::api {

// How a response is framed: the request's HTTP version and keep-alive.
struct Framing {
    unsigned version = 11;
    bool keep_alive = false;
};
inline Framing framing_of(const http::Request& r) {
    return {r.version(), r.keep_alive()};
}

// An error as the client reads it: its code (chatd's or a foreign one), and
// optionally what exactly was wrong, which replaces the code's own message.
// A refused send names the session's generating message (generation_in_progress).
struct Problem {
    Problem() = default;
    Problem(boost::system::error_code code, std::string detail = {})
        : code(code), detail(std::move(detail)) {}
    Problem(Error e, std::string detail = {}) : code(e), detail(std::move(detail)) {}

    boost::system::error_code code;
    std::string detail;
    std::optional<MessageId> active_message;
};

http::Response json_response(http::Status status, std::string body, Framing framing);
// A response whose status and code come from elsewhere (the HTTP server's own
// refusals, before any request reached the API).
http::Response error_response(http::Status status, std::string_view code, std::string_view message,
                              Framing framing);
// The code a problem answers with (`not_found`, …).
std::string_view error_code_of(const Problem& problem);
// Maps a problem to its status, code and message. Limits carry Retry-After:
// `retry_after` when given, else the limit's own.
http::Response error_response(const Problem& problem, Framing framing,
                              std::optional<std::chrono::seconds> retry_after = std::nullopt);

}  // namespace chatd::api
