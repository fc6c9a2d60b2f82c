#include "api/stream_slots.hpp"

namespace chatd::api {

Result<StreamSlots::Slot> StreamSlots::open(const UserId& user) {
    auto& n = (*counts_)[user.value];
    if (n >= per_user_) {
        if (n == 0) counts_->erase(user.value);
        return Error::too_many_streams;
    }
    ++n;
    std::weak_ptr<std::unordered_map<std::string, std::size_t>> counts = counts_;
    return Slot(nullptr, [counts, key = user.value](void*) {
        auto table = counts.lock();
        if (!table) return;
        auto it = table->find(key);
        if (it != table->end() && --it->second == 0) table->erase(it);
    });
}

std::size_t StreamSlots::open_count(const UserId& user) const {
    auto it = counts_->find(user.value);
    return it == counts_->end() ? 0 : it->second;
}

std::size_t StreamSlots::open_total() const {
    std::size_t total = 0;
    for (const auto& [user, n] : *counts_) total += n;
    return total;
}

}  // namespace chatd::api
