#include "api/cors.hpp"
#include "core/text.hpp"

#include <algorithm>

namespace chatd::api {
namespace {

constexpr std::string_view kAllowHeaders =
    "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, Accept, Cache-Control, "
    "X-Request-Id";
constexpr std::string_view kExposeHeaders = "Retry-After, WWW-Authenticate, X-Request-Id";

bool contains_method(std::string_view allow, std::string_view method) {
    while (!allow.empty()) {
        auto comma = allow.find(',');
        auto item = allow.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        if (item == method) return true;
        allow.remove_prefix(comma == std::string_view::npos ? allow.size() : comma + 1);
    }
    return false;
}

}  // namespace

bool is_origin(std::string_view origin) {
    auto scheme_end = origin.find("://");
    if (scheme_end == std::string_view::npos) return false;
    auto scheme = origin.substr(0, scheme_end);
    if (scheme != "http" && scheme != "https") return false;
    auto authority = origin.substr(scheme_end + 3);
    if (authority.empty()) return false;
    for (char c : authority)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':' &&
            c != '[' && c != ']')
            return false;
    return true;
}

CorsPolicy::CorsPolicy(std::vector<std::string> origins) {
    for (auto& o : origins) origins_.push_back(to_lower(o));
}

std::optional<std::string> CorsPolicy::allowed_origin(const http::Request& request) const {
    auto it = request.find(http::bhttp::field::origin);
    if (it == request.end()) return std::nullopt;
    auto origin = to_lower(it->value());
    if (std::find(origins_.begin(), origins_.end(), origin) == origins_.end()) return std::nullopt;
    return std::string(it->value());
}

std::vector<std::pair<std::string, std::string>> CorsPolicy::headers(
    const http::Request& request) const {
    std::vector<std::pair<std::string, std::string>> out;
    if (!enabled()) return out;
    out.emplace_back("Vary", "Origin");  // the answer differs by Origin: caches must know
    if (auto origin = allowed_origin(request)) {
        out.emplace_back("Access-Control-Allow-Origin", *origin);
        out.emplace_back("Access-Control-Allow-Credentials", "true");
        out.emplace_back("Access-Control-Expose-Headers", std::string(kExposeHeaders));
    }
    return out;
}

std::string CorsPolicy::head_lines(const http::Request& request) const {
    std::string out;
    for (const auto& [k, v] : headers(request)) out += k + ": " + v + "\r\n";
    return out;
}

void CorsPolicy::decorate(http::Response& response, const http::Request& request) const {
    for (const auto& [k, v] : headers(request)) response.set(k, v);
}

bool CorsPolicy::preflight(http::Response& response, const http::Request& request,
                           std::string_view allow) const {
    auto method = request.find(http::bhttp::field::access_control_request_method);
    if (method == request.end() || request.find(http::bhttp::field::origin) == request.end())
        return false;
    if (!enabled()) return true;
    response.set(http::bhttp::field::vary, "Origin");
    auto origin = allowed_origin(request);
    if (!origin || !contains_method(allow, method->value())) return true;  // no grant
    response.set(http::bhttp::field::access_control_allow_origin, *origin);
    response.set(http::bhttp::field::access_control_allow_credentials, "true");
    response.set(http::bhttp::field::access_control_allow_methods, allow);
    response.set(http::bhttp::field::access_control_allow_headers, kAllowHeaders);
    response.set(http::bhttp::field::access_control_max_age, "600");
    return true;
}

}  // namespace chatd::api
