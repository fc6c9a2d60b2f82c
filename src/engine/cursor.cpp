#include "engine/cursor.hpp"

#include "core/utf8.hpp"

namespace chatd::engine {
namespace {

constexpr std::size_t kMaxOffsetDigits = 15;

}  // namespace

std::string encode_cursor(const Cursor& c) {
    return c.message.value + "." + std::to_string(c.offset);
}

Result<Cursor> decode_cursor(std::string_view text) {
    auto dot = text.rfind('.');
    if (dot == std::string_view::npos) return Error::invalid_cursor;
    auto id = text.substr(0, dot);
    auto digits = text.substr(dot + 1);
    if (!is_well_formed_id(id, "msg_")) return Error::invalid_cursor;
    if (digits.empty() || digits.size() > kMaxOffsetDigits) return Error::invalid_cursor;
    if (digits.size() > 1 && digits[0] == '0') return Error::invalid_cursor;
    std::int64_t offset = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return Error::invalid_cursor;
        offset = offset * 10 + (c - '0');
    }
    return Cursor{MessageId{std::string(id)}, offset};
}

Result<void> check_cursor_offset(std::string_view content, std::int64_t offset) {
    if (offset < 0 || static_cast<std::uint64_t>(offset) > content.size() ||
        !is_utf8_boundary(content, static_cast<std::size_t>(offset)))
        return Error::cursor_out_of_range;
    return {};
}

}  // namespace chatd::engine
