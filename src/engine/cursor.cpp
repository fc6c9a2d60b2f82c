#include "engine/cursor.hpp"

#include "core/utf8.hpp"

#include <optional>

namespace chatd::engine {
namespace {

constexpr std::size_t kMaxOffsetDigits = 15;

// Digits of one offset; nullopt unless canonical (no sign, no leading zero).
std::optional<std::int64_t> parse_offset(std::string_view digits) {
    if (digits.empty() || digits.size() > kMaxOffsetDigits) return std::nullopt;
    if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
    std::int64_t offset = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        offset = offset * 10 + (c - '0');
    }
    return offset;
}

}  // namespace

std::string encode_cursor(const Cursor& c) {
    auto text = c.message.value + "." + std::to_string(c.offset);
    if (c.reasoning_offset != 0) text += "." + std::to_string(c.reasoning_offset);
    return text;
}

Result<Cursor> decode_cursor(std::string_view text) {
    auto dot = text.find('.');
    if (dot == std::string_view::npos) return Error::invalid_cursor;
    auto id = text.substr(0, dot);
    if (!is_well_formed_id(id, "msg_")) return Error::invalid_cursor;
    auto offsets = text.substr(dot + 1);
    auto second = offsets.find('.');
    auto offset = parse_offset(offsets.substr(0, second));
    if (!offset) return Error::invalid_cursor;
    Cursor c{MessageId{std::string(id)}, *offset};
    if (second != std::string_view::npos) {
        // Written only when not 0: one cursor, one spelling.
        auto reasoning = parse_offset(offsets.substr(second + 1));
        if (!reasoning || *reasoning == 0) return Error::invalid_cursor;
        c.reasoning_offset = *reasoning;
    }
    return c;
}

Result<void> check_cursor_offset(std::string_view content, std::int64_t offset) {
    if (offset < 0 || static_cast<std::uint64_t>(offset) > content.size() ||
        !is_utf8_boundary(content, static_cast<std::size_t>(offset)))
        return Error::cursor_out_of_range;
    return {};
}

Result<void> check_cursor(const Cursor& c, std::string_view content, std::string_view reasoning) {
    if (auto r = check_cursor_offset(content, c.offset); !r) return r;
    return check_cursor_offset(reasoning, c.reasoning_offset);
}

}  // namespace chatd::engine
