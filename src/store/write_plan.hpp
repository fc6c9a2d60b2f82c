#pragma once
// How one MessageWrite meets what the store already holds of its message: the
// rule every backend applies inside its commit transaction, which makes chunk
// writes idempotent by (message id, byte offset) (ChatStore's contract, I2).
#include "store/model.hpp"

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace chatd::store {

// The largest text a message may hold in any store (both SQLite and
// PostgreSQL refuse single values near 1 GB); a write past it is refused on
// its own. --max-answer-bytes stays below it.
inline constexpr std::int64_t kMaxContentBytes = 64 * 1024 * 1024;

// A message as the store holds it at the moment of the write.
struct StoredTail {
    MessageStatus status = MessageStatus::generating;
    std::int64_t end = 0;      // bytes of text stored: content column, then chunks
    std::int64_t version = 1;  // its version now
    std::int64_t epoch = 1;    // its lease epoch now
    std::int64_t reasoning_end = 0;  // bytes of reasoning stored
};

struct WritePlan {
    enum class Action {
        store,   // append `text` at `offset` (and the terminal state, if any)
        skip,    // everything is stored already: an earlier attempt committed it
        refuse,  // `error` says why; nothing of this write is stored
    };
    Action action = Action::refuse;
    std::int64_t offset = 0;
    std::string_view text;  // the part of the write's text not stored yet
    std::string_view reasoning;  // the part of its reasoning not stored yet (appended)
    std::int64_t version = 0;  // the message's version once the plan is carried out
    boost::system::error_code error;
};

// `stored` is nullopt when the message does not exist (deleted meanwhile).
// Text before the stored end is skipped; a write that starts after it (a
// gap), whose whole content disagrees with its offset, or that would grow
// the message past kMaxContentBytes is refused (store_failure), and the same
// rules hold for its reasoning at reasoning_offset; a message
// that has ended takes nothing more (not_generating), except the very
// terminal state it already has (a retried end); a generating message takes
// nothing under another lease epoch than its own (lease_lost).
WritePlan plan_write(const MessageWrite& w, const std::optional<StoredTail>& stored);

}  // namespace chatd::store
