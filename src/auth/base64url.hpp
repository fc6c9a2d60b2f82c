#pragma once
// Base64url without padding (RFC 4648 §5, as JOSE uses it), strict: any byte
// outside the alphabet, padding, a length that no encoding has, or non-zero
// unused trailing bits make the input invalid, so every value has exactly one
// accepted spelling.
#include <optional>
#include <string>
#include <string_view>

namespace chatd::auth {

std::optional<std::string> decode_base64url(std::string_view text);
std::string encode_base64url(std::string_view bytes);

}  // namespace chatd::auth
