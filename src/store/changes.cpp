#include "store/changes.hpp"

#include <algorithm>
#include <optional>

namespace chatd::store {

Changes assemble_changes(std::vector<Message> ended, std::vector<Message> live, const Since& since,
                         PollRules rules) {
    const bool at = rules.resume == PollRules::Resume::at;
    auto changed = [&](const Message& m) {
        bool seq = !since.seq || (at ? m.change_seq >= *since.seq : m.change_seq > *since.seq);
        return seq && (!since.time || m.last_updated > *since.time);
    };
    Changes changes;
    changes.has_more_generating = !live.empty();
    changes.messages = std::move(ended);
    for (auto& m : live) {
        if (!at) rules.horizon = std::max(rules.horizon, m.change_seq);
        if (changed(m)) changes.messages.push_back(std::move(m));
    }
    auto by_change = [](const Message& a, const Message& b) {
        return a.change_seq != b.change_seq ? a.change_seq < b.change_seq : a.id < b.id;
    };
    std::sort(changes.messages.begin(), changes.messages.end(), by_change);
    std::optional<std::int64_t> cut;  // the last change this answer covers
    if (since.limit > 0 && changes.messages.size() > since.limit) {
        changes.messages.resize(since.limit);
        cut = changes.messages.back().change_seq;
        changes.truncated = true;
    }
    if (!cut)
        changes.next_seq = rules.horizon;
    else
        // Resuming at the cut includes the rest of its transaction; never
        // past a transaction still running.
        changes.next_seq = at ? std::min(*cut, rules.horizon) : *cut;
    std::sort(changes.messages.begin(), changes.messages.end(),
              [](const Message& a, const Message& b) { return a.id < b.id; });
    return changes;
}

}  // namespace chatd::store
