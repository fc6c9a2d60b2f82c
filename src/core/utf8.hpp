#pragma once
// UTF-8 boundary arithmetic: where text may be split so that no character is cut.
#include <cstddef>
#include <string_view>

namespace chatd {

// True when `offset` (0..size) does not fall inside a multi-byte character.
bool is_utf8_boundary(std::string_view text, std::size_t offset);
// The largest boundary <= offset (offset is clamped to the text's size).
std::size_t utf8_floor(std::string_view text, std::size_t offset);
// True when `text` is valid UTF-8.
bool is_valid_utf8(std::string_view text);

}  // namespace chatd
