#pragma once
// Puts a poll's answer together (ChatStore::changed_since), the same way for
// every backend; only how change sequences compare differs (docs/polling.md).
#include "store/model.hpp"

#include <cstdint>
#include <vector>

namespace chatd::store {

struct PollRules {
    // SQLite numbers changes in commit order: the next poll starts after
    // the last one seen. PostgreSQL's transaction ids commit out of order: it
    // starts at the horizon, inclusive.
    enum class Resume { after, at } resume = Resume::after;
    // Where the next poll starts when nothing was cut: the newest change of
    // the session (SQLite) or the snapshot's xmin (PostgreSQL).
    std::int64_t horizon = 0;
};

// `ended`: the session's ended messages changed since `since`, oldest change
// first, at most since.limit + 1 of them; `live`: its generating messages
// (their change is their newest chunk's). The answer holds at most
// since.limit messages (oldest changes first, `truncated` when more wait),
// in id order.
Changes assemble_changes(std::vector<Message> ended, std::vector<Message> live, const Since& since,
                         PollRules rules);

}  // namespace chatd::store
