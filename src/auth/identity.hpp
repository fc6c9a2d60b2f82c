#pragma once
// What authentication establishes: the user a request acts for, or why none.
#include "core/ids.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatd::auth {

// A user id from any mode (JWT `sub`, api-keys file, trusted header): 1 to 255
// printable ASCII characters (0x21-0x7E). Anything else is refused rather than
// stored, logged or echoed.
bool is_valid_user_id(std::string_view id);

// The outcome of checking one request's credentials. `reason` says why not,
// for the server's debug log only: every failure looks the same to clients.
struct Verdict {
    std::optional<UserId> user;
    std::string_view reason;
    // When the credential stops being valid (unix seconds; 0: no end of its
    // own), and what a session made from it is bound to (an API key's hash).
    std::int64_t expires_at = 0;
    std::string binding;

    static Verdict accept(UserId u) { return {std::move(u), {}, 0, {}}; }
    static Verdict refuse(std::string_view why) { return {std::nullopt, why, 0, {}}; }
};

}  // namespace chatd::auth
