#pragma once
// Wall-clock time as UTC milliseconds since the epoch, and its ISO-8601 form
// (`2025-09-30T18:45:00.123Z`), the only time format the API shows.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatd {

using UnixMillis = std::int64_t;

UnixMillis now_millis();
std::string format_iso8601(UnixMillis ms);
// Accepts `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`; nullopt for anything else.
std::optional<UnixMillis> parse_iso8601(std::string_view text);

}  // namespace chatd
