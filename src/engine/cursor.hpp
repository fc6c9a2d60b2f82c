#pragma once
// Stream cursors (SSE event ids): a message and committed byte offsets in its
// content and in its reasoning. Encoded as `<message id>.<offset>`, or
// `<message id>.<offset>.<reasoning offset>` once it has reasoning; clients
// treat them as opaque.
#include "core/error.hpp"
#include "core/ids.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatd::engine {

struct Cursor {
    MessageId message;
    std::int64_t offset = 0;
    std::int64_t reasoning_offset = 0;
    friend bool operator==(const Cursor&, const Cursor&) = default;
};

// Where a session stream starts (DESIGN §4): the message it writes first
// (the cursor's rest, or the one generating when it opens, from its start),
// and the message after which every later assistant message of the session
// is carried.
struct SessionStreamStart {
    std::optional<Cursor> first;
    std::optional<MessageId> after;  // none: every assistant message
};

std::string encode_cursor(const Cursor& c);
// invalid_cursor unless `text` is exactly what encode_cursor makes.
[[nodiscard]] Result<Cursor> decode_cursor(std::string_view text);
// cursor_out_of_range unless `offset` is within `content` and not inside a
// UTF-8 character.
[[nodiscard]] Result<void> check_cursor_offset(std::string_view content, std::int64_t offset);
// Both of the cursor's offsets, in the message's content and reasoning.
[[nodiscard]] Result<void> check_cursor(const Cursor& c, std::string_view content,
                                        std::string_view reasoning);

}  // namespace chatd::engine
