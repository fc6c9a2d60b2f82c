#pragma once
// Checks every request passes before routing, whatever it targets:
// - Host: a browser page on another domain that re-binds its name to
//   127.0.0.1 (DNS rebinding) sends its own name as Host. With `none`
//   authentication only loopback names and the configured host are answered;
//   with `allowed_hosts` set, only those. HTTP/1.1 requires exactly one Host.
// - Origin: a state-changing request (anything but GET, HEAD, OPTIONS) from
//   another site is refused unless its origin is allowed (CORS). Browsers
//   send such "simple" requests without a preflight, so CORS alone would not
//   stop them; `Origin` and `Sec-Fetch-Site` tell where they come from.
// Pure functions of the request; unit-tested.
#include "core/error.hpp"
#include "http/types.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::api {

struct GuardConfig {
    // `none` mode: answer only loopback names (localhost, 127.0.0.0/8, [::1])
    // and `allowed_hosts`.
    bool loopback_hosts_only = false;
    // Host names (without port, lower case) answered besides; empty and not
    // loopback-only: any Host.
    std::vector<std::string> allowed_hosts;
    // Origins (`https://app.example.com`) allowed to make cross-origin calls.
    std::vector<std::string> allowed_origins;
};

// The host of a Host header value, lower-cased, without its port (IPv6
// literals keep their brackets); nullopt when malformed.
std::optional<std::string> host_name(std::string_view host_header);
bool is_loopback_host(std::string_view name);

class RequestGuard {
public:
    explicit RequestGuard(GuardConfig config);

    // bad_request (no or several Host on HTTP/1.1), forbidden_host, or
    // cross_origin; success otherwise.
    Result<void> check(const http::Request& request) const;
    bool origin_allowed(std::string_view origin) const;

private:
    Result<void> check_host(const http::Request& request) const;
    Result<void> check_origin(const http::Request& request) const;

    GuardConfig config_;
};

}  // namespace chatd::api
