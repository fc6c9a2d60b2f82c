#pragma once
// The generations this node runs, by message and by session: where a
// message's live text is, and whether a session has an answer running here.
// Lives on the I/O thread.
#include "engine/generation.hpp"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace chatd::engine {

class Registry {
public:
    void add(const std::shared_ptr<Generation>& g);
    // `g` leaves, unless another generation of its message or session took
    // its place meanwhile.
    void remove(const std::shared_ptr<Generation>& g);

    // Any user's generation of message `id`: for the engine's own use only.
    std::shared_ptr<Generation> live(const MessageId& id) const;
    // `user`'s generation of message `id`; another user's is not found (I6).
    std::shared_ptr<Generation> find(const UserId& user, const MessageId& id) const;
    // The generation in `user`'s session, if any.
    std::shared_ptr<Generation> active_in(const UserId& user, const SessionId& session) const;
    // Every generation, as a copy: callers may end them while they go through it.
    std::vector<std::shared_ptr<Generation>> all() const;
    std::size_t size() const { return by_message_.size(); }

private:
    std::unordered_map<std::string, std::shared_ptr<Generation>> by_message_;
    std::unordered_map<std::string, std::shared_ptr<Generation>> by_session_;
};

}  // namespace chatd::engine
