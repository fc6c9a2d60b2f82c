#pragma once
// CORS for browser apps served from other origins: an allow-list of exact
// origins (`https://app.example.com`), nothing allowed by default. An allowed
// origin may send credentials (cookie or Authorization), so answers name it
// exactly (never `*`) with `Access-Control-Allow-Credentials: true` and
// `Vary: Origin`; a preflight (OPTIONS with Access-Control-Request-Method)
// from it is answered with the path's methods and the headers chatd reads.
// A state-changing request from an origin not listed is refused before it
// runs (RequestGuard), not merely hidden from the page. Pure; unit-tested.
#include "http/types.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::api {

// Whether `origin` is a serialised origin: scheme://host[:port], no path.
bool is_origin(std::string_view origin);

class CorsPolicy {
public:
    explicit CorsPolicy(std::vector<std::string> origins);

    bool enabled() const { return !origins_.empty(); }
    // The request's Origin, when it is on the list.
    std::optional<std::string> allowed_origin(const http::Request& request) const;
    // CORS headers of an answer to `request` (as `Name: value\r\n` lines for
    // an event stream's hand-written head, or set on a response).
    std::string head_lines(const http::Request& request) const;
    void decorate(http::Response& response, const http::Request& request) const;
    // True when `request` is a preflight; then `response` (204) carries what
    // an allowed origin may do on a path that takes `allow`.
    bool preflight(http::Response& response, const http::Request& request,
                   std::string_view allow) const;

private:
    std::vector<std::pair<std::string, std::string>> headers(const http::Request& request) const;

    std::vector<std::string> origins_;
};

}  // namespace chatd::api
