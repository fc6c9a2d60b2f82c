#pragma once
// The api-keys mode's table: which user each key acts for. The file holds no
// key itself, only its SHA-256, one `<64 lowercase hex digits> <user id>` per
// line (blank lines and `#` comments ignored), so a leaked file grants nothing.
// Immutable once built; a reload builds a new table and swaps it in.
#include "core/ids.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace chatd::auth {

std::string sha256_hex(std::string_view bytes);

class ApiKeyTable {
public:
    // Throws std::runtime_error naming the first bad line.
    static ApiKeyTable parse(std::string_view text);
    static ApiKeyTable load(const std::filesystem::path& file);

    std::optional<UserId> find(std::string_view key) const;
    // By the key's SHA-256 (hex), as sessions made from the key remember it.
    std::optional<UserId> find_by_hash(const std::string& sha256) const;
    std::size_t size() const { return users_.size(); }

private:
    std::unordered_map<std::string, UserId> users_;  // by SHA-256 hex of the key
};

}  // namespace chatd::auth
