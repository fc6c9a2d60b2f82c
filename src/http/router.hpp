#pragma once
// Path routing: patterns of literal segments and `{}` parameters, matched
// segment by segment. A path that matches some pattern but not the method is
// `method_not_allowed` with the methods that would match (for `Allow`).
#include "http/types.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::http {

std::vector<std::string_view> split_path(std::string_view path);

template <class Target>
class Router {
public:
    struct Match {
        const Target* target = nullptr;   // set when matched
        std::vector<std::string> params;  // the `{}` segments, in order
        std::string_view pattern;         // the matched route's (for logs: no ids)
        std::string allow;                // set when only the method is wrong
    };

    void add(bhttp::verb method, std::string_view pattern, Target target) {
        routes_.push_back({method, std::string(pattern), split_owned(pattern), std::move(target)});
    }

    Match match(bhttp::verb method, std::string_view path) const {
        Match result;
        auto segments = split_path(path);
        for (const auto& route : routes_) {
            std::vector<std::string> params;
            if (!matches(route.segments, segments, params)) continue;
            if (route.method == method) {
                result.target = &route.target;
                result.params = std::move(params);
                result.pattern = route.pattern;
                result.allow.clear();
                return result;
            }
            auto verb = std::string(bhttp::to_string(route.method));
            if (result.allow.find(verb) == std::string::npos)
                result.allow += (result.allow.empty() ? "" : ", ") + verb;
        }
        return result;
    }

private:
    struct Route {
        bhttp::verb method;
        std::string pattern;
        std::vector<std::string> segments;
        Target target;
    };

    static std::vector<std::string> split_owned(std::string_view pattern) {
        std::vector<std::string> out;
        for (auto s : split_path(pattern)) out.emplace_back(s);
        return out;
    }

    static bool matches(const std::vector<std::string>& pattern,
                        const std::vector<std::string_view>& path,
                        std::vector<std::string>& params) {
        if (pattern.size() != path.size()) return false;
        for (std::size_t i = 0; i < pattern.size(); ++i) {
            if (pattern[i] == "{}") {
                if (path[i].empty()) return false;
                params.emplace_back(path[i]);
            } else if (pattern[i] != path[i]) {
                return false;
            }
        }
        return true;
    }

    std::vector<Route> routes_;
};

inline std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    if (!path.empty() && path[0] == '/') start = 1;
    while (start <= path.size()) {
        auto end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        out.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    if (!out.empty() && out.back().empty() && out.size() > 1) out.pop_back();  // trailing slash
    return out;
}

}  // namespace chatd::http
