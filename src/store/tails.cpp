#include "store/tails.hpp"

#include <algorithm>

namespace chatd::store {

std::string_view after(std::string_view piece, std::int64_t at, std::int64_t from) {
    auto end = at + static_cast<std::int64_t>(piece.size());
    if (end <= from) return {};
    return piece.substr(static_cast<std::size_t>(std::max<std::int64_t>(from - at, 0)));
}

void TailAssembler::add_message(Message row, std::int64_t from) {
    auto end = static_cast<std::int64_t>(row.content.size());
    row.content = std::string(after(row.content, 0, from));
    index_.emplace(row.id.value, entries_.size());
    entries_.push_back({std::move(row), from, end});
}

void TailAssembler::add_chunk(std::string_view id, std::int64_t offset, std::string_view text,
                              std::int64_t change_seq, UnixMillis at, std::int64_t version) {
    auto it = index_.find(std::string(id));
    if (it == index_.end()) return;
    auto& e = entries_[it->second];
    if (e.message.status != MessageStatus::generating) return;  // its content holds everything
    e.message.content += after(text, offset, std::max(e.from, e.end));
    e.end = std::max(e.end, offset + static_cast<std::int64_t>(text.size()));
    e.message.change_seq = std::max(e.message.change_seq, change_seq);
    e.message.last_updated = at;
    e.message.version = std::max(e.message.version, version);
}

std::vector<Message> TailAssembler::take() {
    std::vector<Message> out;
    out.reserve(entries_.size());
    for (auto& e : entries_) out.push_back(std::move(e.message));
    entries_.clear();
    index_.clear();
    return out;
}

}  // namespace chatd::store
