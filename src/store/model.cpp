#include "store/model.hpp"

#include <algorithm>

namespace chatd::store {

std::string_view to_string(Role r) {
    switch (r) {
        case Role::user:
            return "user";
        case Role::assistant:
            return "assistant";
        case Role::system:
            return "system";
    }
    return "user";
}

std::string_view to_string(MessageStatus s) {
    switch (s) {
        case MessageStatus::generating:
            return "generating";
        case MessageStatus::completed:
            return "completed";
        case MessageStatus::error:
            return "error";
        case MessageStatus::cancelled:
            return "cancelled";
    }
    return "error";
}

std::optional<Role> role_from_string(std::string_view s) {
    if (s == "user") return Role::user;
    if (s == "assistant") return Role::assistant;
    if (s == "system") return Role::system;
    return std::nullopt;
}

std::optional<MessageStatus> status_from_string(std::string_view s) {
    if (s == "generating") return MessageStatus::generating;
    if (s == "completed") return MessageStatus::completed;
    if (s == "error") return MessageStatus::error;
    if (s == "cancelled") return MessageStatus::cancelled;
    return std::nullopt;
}

bool allows(const ModelList& allowed, std::string_view model) {
    return !allowed || std::find(allowed->begin(), allowed->end(), model) != allowed->end();
}

Message as_first_created(Message m) {
    m.content.clear();
    m.status = MessageStatus::generating;
    m.is_streaming = true;
    m.last_updated = m.created_at;
    m.version = 1;
    m.error.reset();
    m.finish_reason.reset();
    m.usage.reset();
    return m;
}

}  // namespace chatd::store
