#pragma once
// The one place where errors become HTTP statuses and JSON error bodies.
#include "core/error.hpp"
#include "http/types.hpp"

#include <chrono>
#include <optional>
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

http::Response json_response(http::Status status, std::string body, Framing framing);
http::Response error_response(http::Status status, std::string_view code, std::string_view message,
                              Framing framing);
// Maps an error code (chatd's or a foreign one) to status, code and message.
// Limits carry Retry-After: `retry_after` when given, else the limit's own.
http::Response error_response(boost::system::error_code ec, Framing framing,
                              std::optional<std::chrono::seconds> retry_after = std::nullopt);

}  // namespace chatd::api
