#pragma once
// How ChangeNotices travel between nodes as PostgreSQL notifications: one
// NOTIFY on one channel per transaction that changes messages, its payload
// the ids it changed ("m:<message id>", "s:<session id>", space separated),
// or "*" when they do not fit in one payload (the server takes < 8000 bytes).
// A chunk's text goes along while it fits, length-prefixed:
// "t:<message id>:<offset>:<version>:<at>:<length>:<text>"; the rest of the
// chunks are named with "m:".
#include "store/model.hpp"

#include <string>
#include <string_view>

namespace chatd::store::postgres {

inline constexpr std::string_view kNoticeChannel = "chatd_changes";
inline constexpr std::size_t kMaxNoticePayload = 7000;

std::string encode_notice(const ChangeNotice& notice);
// Adds what `payload` names to `into`; a payload it cannot read counts as
// "*" (whatever a node follows may have changed).
void decode_notice(std::string_view payload, ChangeNotice& into);

}  // namespace chatd::store::postgres
