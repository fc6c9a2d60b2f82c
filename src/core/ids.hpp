#pragma once
// Opaque, prefixed, time-sortable identifiers (`ses_…`, `msg_…`) and the strong
// types that carry them. Ids made by one process sort in creation order.
#include <compare>
#include <cstddef>
#include <string>
#include <string_view>

namespace chatd {

template <class Tag>
struct StrongId {
    std::string value;
    friend auto operator<=>(const StrongId&, const StrongId&) = default;
};

using UserId = StrongId<struct UserTag>;
using SessionId = StrongId<struct SessionTag>;
using MessageId = StrongId<struct MessageTag>;

// "ses_" or "msg_" followed by 26 Crockford base32 characters: 10 of
// milliseconds since the epoch, 4 of a per-millisecond counter, 12 (60 bits)
// from the kernel's CSPRNG, so no id can be guessed from another.
std::string make_id(std::string_view prefix);
SessionId new_session_id();
MessageId new_message_id();

// Fills `out` with bytes from the kernel's CSPRNG (getrandom); throws only
// when the kernel refuses.
void fill_random(void* out, std::size_t size);

// True when `s` has the shape make_id(prefix) produces.
bool is_well_formed_id(std::string_view s, std::string_view prefix);

}  // namespace chatd
