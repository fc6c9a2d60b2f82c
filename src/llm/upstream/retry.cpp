#include "llm/upstream/retry.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>

namespace chatd::llm::upstream {
namespace {

// IMF-fixdate, the form servers must send: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::chrono::system_clock::time_point> parse_imf_fixdate(std::string_view s) {
    static constexpr std::array<std::string_view, 12> kMonths{
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s.substr(25) != " GMT") return std::nullopt;
    auto number = [&](std::size_t at, std::size_t len, int& out) {
        auto [p, ec] = std::from_chars(s.data() + at, s.data() + at + len, out);
        return ec == std::errc() && p == s.data() + at + len;
    };
    std::tm tm{};
    int day = 0, year = 0, hour = 0, minute = 0, second = 0;
    if (!number(5, 2, day) || !number(12, 4, year) || !number(17, 2, hour) ||
        !number(20, 2, minute) || !number(23, 2, second) || s[19] != ':' || s[22] != ':')
        return std::nullopt;
    auto month = std::find(kMonths.begin(), kMonths.end(), s.substr(8, 3));
    if (month == kMonths.end()) return std::nullopt;
    tm.tm_mday = day;
    tm.tm_mon = static_cast<int>(month - kMonths.begin());
    tm.tm_year = year - 1900;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    std::int64_t seconds = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc() && p == value.data() + value.size()) {
        if (seconds < 0) return std::nullopt;
        return std::chrono::seconds(std::min<std::int64_t>(seconds, 86400));
    }
    auto at = parse_imf_fixdate(value);
    if (!at) return std::nullopt;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*at - now);
    return std::max(wait, std::chrono::milliseconds(0));
}

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry,
                                        std::optional<std::chrono::milliseconds> retry_after,
                                        std::mt19937_64& random) {
    auto ceiling = policy.base.count();
    for (int i = 0; i < retry && ceiling < policy.cap.count(); ++i) ceiling *= 2;
    ceiling = std::min(ceiling, policy.cap.count());
    std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(ceiling, 0));
    std::chrono::milliseconds wait(pick(random));
    if (retry_after) wait = std::max(wait, *retry_after);
    return wait;
}

}  // namespace chatd::llm::upstream
