#include "auth/api_key_table.hpp"
#include "core/text.hpp"

#include "auth/identity.hpp"
#include "auth/public_keys.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace chatd::auth {
namespace {

constexpr std::size_t kMaxFileBytes = 16 << 20;
constexpr std::size_t kMaxKeyBytes = 1024;

bool is_lower_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 unavailable");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 15]);
    }
    return out;
}

ApiKeyTable ApiKeyTable::parse(std::string_view text) {
    ApiKeyTable table;
    std::size_t line_no = 0;
    while (!text.empty()) {
        auto end = text.find('\n');
        auto line = trim(text.substr(0, end), " \t\r");
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        ++line_no;
        if (line.empty() || line.front() == '#') continue;
        auto space = line.find_first_of(" \t");
        auto hash = line.substr(0, space);
        auto user = space == std::string_view::npos ? std::string_view() : trim(line.substr(space));
        auto where = "line " + std::to_string(line_no) + ": ";
        if (hash.size() != 64 || !is_lower_hex(hash))
            throw std::runtime_error(where +
                                     "expected the key's SHA-256 as 64 lowercase hex digits");
        if (!is_valid_user_id(user))
            throw std::runtime_error(where +
                                     "expected a user id (1-255 printable ASCII characters)");
        if (!table.users_.emplace(std::string(hash), UserId{std::string(user)}).second)
            throw std::runtime_error(where + "this key is listed twice");
    }
    return table;
}

ApiKeyTable ApiKeyTable::load(const std::filesystem::path& file) {
    try {
        return parse(read_small_file(file, kMaxFileBytes));
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(file.string() + ": " + e.what());
    }
}

std::optional<UserId> ApiKeyTable::find(std::string_view key) const {
    if (key.empty() || key.size() > kMaxKeyBytes) return std::nullopt;
    // The lookup compares digests, not keys: its timing tells nothing about
    // how much of a guessed key was right.
    return find_by_hash(sha256_hex(key));
}

std::optional<UserId> ApiKeyTable::find_by_hash(const std::string& sha256) const {
    auto it = users_.find(sha256);
    if (it == users_.end()) return std::nullopt;
    return it->second;
}

}  // namespace chatd::auth
