#include "engine/generation_slots.hpp"

namespace chatd::engine {

void GenerationSlots::Counts::give_back(const std::string& user) {
    --total;
    auto it = per_user.find(user);
    if (it != per_user.end() && --it->second == 0) per_user.erase(it);
}

GenerationSlots::Slot& GenerationSlots::Slot::operator=(Slot&& other) noexcept {
    if (this != &other) {
        release();
        counts_ = std::move(other.counts_);
        user_ = std::move(other.user_);
        other.counts_.reset();
    }
    return *this;
}

void GenerationSlots::Slot::release() {
    if (auto counts = counts_.lock()) counts->give_back(user_);
    counts_.reset();
}

Result<GenerationSlots::Slot> GenerationSlots::reserve(const UserId& user) {
    auto& c = *counts_;
    if (c.total >= limits_.max_live) return Error::overloaded;
    auto [it, fresh] = c.per_user.try_emplace(user.value, 0);
    if (it->second >= limits_.max_per_user) {
        if (fresh) c.per_user.erase(it);
        return Error::too_many_generations;
    }
    ++it->second;
    ++c.total;
    return Slot(counts_, user.value);
}

GenerationSlots::Slot GenerationSlots::adopt(const UserId& user) {
    ++counts_->per_user[user.value];
    ++counts_->total;
    return Slot(counts_, user.value);
}

std::size_t GenerationSlots::live(const UserId& user) const {
    auto it = counts_->per_user.find(user.value);
    return it == counts_->per_user.end() ? 0 : it->second;
}

}  // namespace chatd::engine
