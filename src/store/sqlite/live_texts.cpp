#include "store/sqlite/live_texts.hpp"

#include <algorithm>

namespace chatd::store::sqlite {

const LiveTexts::Tail* LiveTexts::find(const std::string& id) const {
    auto it = tails_.find(id);
    return it == tails_.end() ? nullptr : &it->second;
}

void LiveTexts::committed(std::vector<Update>& updates, std::int64_t through) {
    std::lock_guard lock(mutex_);
    for (auto& u : updates) {
        if (u.ended) {
            if (auto it = tails_.find(u.id); it != tails_.end()) tails_.erase(it);
            continue;
        }
        auto it = tails_.find(u.id);
        if (u.base) {
            it = tails_.insert_or_assign(std::string(u.id), std::move(*u.base)).first;
        } else if (it == tails_.end()) {
            continue;  // forgotten meanwhile; the next write reads it again
        }
        auto& t = it->second;
        if (u.replace) {
            t.text.assign(*u.replace);
        } else {
            t.text.append(u.text);  // at its end: the write was planned from it
        }
        t.reasoning_end += u.reasoning_added;
        t.version = std::max(t.version, u.version);
        t.change_seq = std::max(t.change_seq, u.change_seq);
        t.last_updated = std::max(t.last_updated, u.at);
    }
    valid_through_ = through;
}

void LiveTexts::advance(std::int64_t before, std::int64_t through) {
    std::lock_guard lock(mutex_);
    if (valid_through_ == before) valid_through_ = through;
}

void LiveTexts::remember(std::string id, Tail tail) {
    std::lock_guard lock(mutex_);
    tails_.insert_or_assign(std::move(id), std::move(tail));
}

void LiveTexts::forget(const std::vector<std::string>& ids) {
    std::lock_guard lock(mutex_);
    for (const auto& id : ids) tails_.erase(id);
}

void LiveTexts::forget_all() {
    std::lock_guard lock(mutex_);
    tails_.clear();
    valid_through_ = -1;
}

void LiveTexts::retain(const std::unordered_set<std::string>& generating) {
    std::lock_guard lock(mutex_);
    std::erase_if(tails_, [&](const auto& kv) { return !generating.contains(kv.first); });
}

std::optional<LiveTexts::Piece> LiveTexts::read(const std::string& id, std::int64_t epoch,
                                                std::int64_t snapshot_seq,
                                                std::int64_t from) const {
    std::lock_guard lock(mutex_);
    if (snapshot_seq > valid_through_) return std::nullopt;
    auto it = tails_.find(id);
    if (it == tails_.end() || it->second.epoch != epoch) return std::nullopt;
    const auto& t = it->second;
    auto at = std::clamp<std::int64_t>(from, 0, static_cast<std::int64_t>(t.text.size()));
    return Piece{.offset = at,
                 .text = t.text.substr(static_cast<std::size_t>(at)),
                 .version = t.version,
                 .change_seq = t.change_seq,
                 .last_updated = t.last_updated};
}

std::size_t LiveTexts::size() const {
    std::lock_guard lock(mutex_);
    return tails_.size();
}

}  // namespace chatd::store::sqlite
