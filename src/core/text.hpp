#pragma once
// ASCII text helpers for protocol fields (header values, flag lists):
// case-insensitive comparison, lower-casing, trimming, splitting lists.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace chatd {

inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

inline std::string_view trim(std::string_view s, std::string_view chars = " \t") {
    auto first = s.find_first_not_of(chars);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(chars) - first + 1);
}

// The items of a `sep`-separated list, trimmed, empty ones dropped.
inline std::vector<std::string_view> split_list(std::string_view list, char sep = ',') {
    std::vector<std::string_view> out;
    while (!list.empty()) {
        auto end = list.find(sep);
        if (auto item = trim(list.substr(0, end)); !item.empty()) out.push_back(item);
        list.remove_prefix(end == std::string_view::npos ? list.size() : end + 1);
    }
    return out;
}

}  // namespace chatd
