#pragma once
// The one place where errors become HTTP statuses and JSON error bodies.
#include "core/error.hpp"
#include "http/types.hpp"

#include <string_view>

namespace chatd::api {

http::Response json_response(http::Status status, std::string body, unsigned version,
                             bool keep_alive);
http::Response error_response(http::Status status, std::string_view code, std::string_view message,
                              unsigned version, bool keep_alive);
// Maps an error code (chatd's or a foreign one) to status, code and message.
http::Response error_response(boost::system::error_code ec, unsigned version, bool keep_alive);

}  // namespace chatd::api
