#include "api/request_guard.hpp"
#include "core/text.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>

namespace chatd::api {
namespace {

bool is_safe_method(http::bhttp::verb v) {
    using V = http::bhttp::verb;
    return v == V::get || v == V::head || v == V::options;
}

}  // namespace

std::optional<std::string> host_name(std::string_view host) {
    if (host.empty() || host.size() > 255) return std::nullopt;
    std::string_view name = host;
    std::string_view port;
    bool has_port = false;
    if (host.front() == '[') {
        auto close = host.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        name = host.substr(0, close + 1);
        auto rest = host.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port = rest.substr(1);
            has_port = true;
        }
        boost::system::error_code ec;
        boost::asio::ip::make_address_v6(std::string(name.substr(1, name.size() - 2)), ec);
        if (ec) return std::nullopt;
    } else {
        auto colon = host.find(':');
        if (colon != std::string_view::npos) {
            name = host.substr(0, colon);
            port = host.substr(colon + 1);
            has_port = true;
        }
        if (name.empty()) return std::nullopt;
        for (char c : name)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
                return std::nullopt;
    }
    if (has_port && (port.empty() || port.size() > 5)) return std::nullopt;
    for (char c : port)
        if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    return to_lower(name);
}

bool is_loopback_host(std::string_view name) {
    if (name == "localhost" || name.ends_with(".localhost")) return true;  // RFC 6761 §6.3
    if (name == "[::1]") return true;
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address_v4(std::string(name), ec);
    return !ec && a.is_loopback();
}

RequestGuard::RequestGuard(GuardConfig config) : config_(std::move(config)) {
    for (auto& h : config_.allowed_hosts) h = to_lower(h);
    for (auto& o : config_.allowed_origins) o = to_lower(o);
}

Result<void> RequestGuard::check(const http::Request& request) const {
    if (auto r = check_host(request); !r) return r;
    return check_origin(request);
}

Result<void> RequestGuard::check_host(const http::Request& request) const {
    auto [first, last] = request.equal_range(http::bhttp::field::host);
    auto count = std::distance(first, last);
    if (count > 1 || (count == 0 && request.version() >= 11)) return Error::bad_request;
    if (count == 0)
        return config_.loopback_hosts_only ? Result<void>(Error::forbidden_host) : Result<void>();
    auto name = host_name(first->value());
    if (!name) return Error::bad_request;
    bool listed = std::find(config_.allowed_hosts.begin(), config_.allowed_hosts.end(), *name) !=
                  config_.allowed_hosts.end();
    if (config_.loopback_hosts_only) {
        if (listed || is_loopback_host(*name)) return {};
        return Error::forbidden_host;
    }
    if (config_.allowed_hosts.empty() || listed) return {};
    return Error::forbidden_host;
}

bool RequestGuard::origin_allowed(std::string_view origin) const {
    auto o = to_lower(origin);
    return std::find(config_.allowed_origins.begin(), config_.allowed_origins.end(), o) !=
           config_.allowed_origins.end();
}

Result<void> RequestGuard::check_origin(const http::Request& request) const {
    if (is_safe_method(request.method())) return {};
    auto origin_it = request.find(http::bhttp::field::origin);
    if (origin_it != request.end()) {
        auto origin = to_lower(origin_it->value());
        if (origin_allowed(origin)) return {};
        // Same origin: the origin's authority is the Host this request names.
        auto host = request.find(http::bhttp::field::host);
        auto scheme_end = origin.find("://");
        if (host != request.end() && scheme_end != std::string::npos &&
            origin.substr(scheme_end + 3) == to_lower(host->value()))
            return {};
        return Error::cross_origin;
    }
    // No Origin (older browsers on some requests): Fetch metadata still says
    // where the request comes from.
    auto site = request.find("Sec-Fetch-Site");
    if (site != request.end() && (site->value() == "cross-site" || site->value() == "same-site"))
        return Error::cross_origin;
    return {};
}

}  // namespace chatd::api
