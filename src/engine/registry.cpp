#include "engine/registry.hpp"

namespace chatd::engine {
namespace {

template <class Map>
void erase_if_same(Map& map, const std::string& key, const std::shared_ptr<Generation>& g) {
    if (auto it = map.find(key); it != map.end() && it->second == g) map.erase(it);
}

}  // namespace

void Registry::add(const std::shared_ptr<Generation>& g) {
    by_message_[g->id().value] = g;
    by_session_[g->session_id().value] = g;
}

void Registry::remove(const std::shared_ptr<Generation>& g) {
    erase_if_same(by_message_, g->id().value, g);
    erase_if_same(by_session_, g->session_id().value, g);
}

std::shared_ptr<Generation> Registry::live(const MessageId& id) const {
    auto it = by_message_.find(id.value);
    return it == by_message_.end() ? nullptr : it->second;
}

std::shared_ptr<Generation> Registry::find(const UserId& user, const MessageId& id) const {
    auto g = live(id);
    return g && g->user() == user ? g : nullptr;
}

std::shared_ptr<Generation> Registry::active_in(const UserId& user,
                                                const SessionId& session) const {
    auto it = by_session_.find(session.value);
    if (it == by_session_.end() || it->second->user() != user) return nullptr;
    return it->second;
}

std::vector<std::shared_ptr<Generation>> Registry::all() const {
    std::vector<std::shared_ptr<Generation>> out;
    out.reserve(by_message_.size());
    for (const auto& [id, g] : by_message_) out.push_back(g);
    return out;
}

}  // namespace chatd::engine
