#include "engine/generation_slots.hpp"

namespace chatd::engine {

GenerationSlots::Slot& GenerationSlots::Slot::operator=(Slot&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = other.owner_;
        user_ = std::move(other.user_);
        other.owner_ = nullptr;
    }
    return *this;
}

void GenerationSlots::Slot::release() {
    if (!owner_) return;
    owner_->give_back(user_);
    owner_ = nullptr;
}

Result<GenerationSlots::Slot> GenerationSlots::reserve(const UserId& user) {
    if (total_ >= limits_.max_live) return Error::overloaded;
    auto& mine = per_user_[user.value];
    if (mine >= limits_.max_per_user) {
        if (mine == 0) per_user_.erase(user.value);
        return Error::too_many_generations;
    }
    ++mine;
    ++total_;
    return Slot(this, user);
}

std::size_t GenerationSlots::live(const UserId& user) const {
    auto it = per_user_.find(user.value);
    return it == per_user_.end() ? 0 : it->second;
}

void GenerationSlots::give_back(const UserId& user) {
    --total_;
    auto it = per_user_.find(user.value);
    if (it != per_user_.end() && --it->second == 0) per_user_.erase(it);
}

}  // namespace chatd::engine
