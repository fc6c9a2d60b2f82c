#include "store/write_plan.hpp"

#include "core/error.hpp"

namespace chatd::store {

WritePlan plan_write(const MessageWrite& w, const std::optional<StoredTail>& stored) {
    WritePlan plan;
    if (!stored) {
        plan.error = Error::not_generating;
        return plan;
    }
    const auto text_size = static_cast<std::int64_t>(w.text.size());
    const auto write_end = w.offset + text_size;
    const bool whole_content = w.terminal || w.rewrite_content;
    if (stored->status != MessageStatus::generating) {
        // A retried end whose first attempt committed: the same end again.
        bool same_end = w.terminal && w.terminal->status == stored->status &&
                        stored->end == static_cast<std::int64_t>(w.full_content.size());
        if (same_end) {
            plan.action = WritePlan::Action::skip;
            plan.version = stored->version;
        } else {
            plan.error = Error::not_generating;
        }
        return plan;
    }
    if (w.epoch != stored->epoch) {
        plan.error = Error::lease_lost;
        return plan;
    }
    const auto reasoning_size = static_cast<std::int64_t>(w.reasoning.size());
    bool consistent = w.offset >= 0 && w.offset <= stored->end && write_end <= kMaxContentBytes &&
                      (!whole_content || static_cast<std::int64_t>(w.full_content.size()) == write_end) &&
                      w.reasoning_offset >= 0 && w.reasoning_offset <= stored->reasoning_end &&
                      w.reasoning_offset + reasoning_size <= kMaxContentBytes;
    if (!consistent) {
        plan.error = Error::store_failure;
        return plan;
    }
    const auto already = std::min(stored->end - w.offset, text_size);
    plan.offset = w.offset + already;
    plan.text = std::string_view(w.text).substr(static_cast<std::size_t>(already));
    const auto reasoning_already = std::min(stored->reasoning_end - w.reasoning_offset, reasoning_size);
    plan.reasoning =
        std::string_view(w.reasoning).substr(static_cast<std::size_t>(reasoning_already));
    if (plan.text.empty() && plan.reasoning.empty() && !w.terminal) {
        plan.action = WritePlan::Action::skip;
        plan.version = stored->version;
        return plan;
    }
    plan.action = WritePlan::Action::store;
    plan.version = stored->version + 1;
    return plan;
}

}  // namespace chatd::store
