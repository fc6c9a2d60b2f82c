#pragma once
// What a reader sees of an assistant message that may still change, whichever
// node runs it (DESIGN §7): on this node, its Generation; on another, a
// Follower that reads what the owner commits (engine/feeds.hpp). A stream
// reads message() and waits to be woken; it never asks where the text comes
// from. Lives on the I/O thread.
#include "core/wakeup.hpp"
#include "store/model.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace chatd::engine {

class MessageFeed {
public:
    virtual ~MessageFeed() = default;
    // The message as committed: every committed byte of its content, its
    // status and version.
    virtual const store::Message& message() const = 0;
    // Wakes `w` on every change of message(), until `w` expires.
    virtual void subscribe(std::weak_ptr<Wakeup> w) = 0;
    // This feed no longer follows the message (it went on elsewhere, or was
    // deleted): open a new one to go on reading it.
    virtual bool stale() const = 0;
};

// The readers a feed wakes. It never owns them: a reader that is gone is
// dropped at the next wake-up.
class Subscribers {
public:
    void add(std::weak_ptr<Wakeup> w) {
        prune();
        list_.push_back(std::move(w));
    }
    void notify() {
        std::erase_if(list_, [](const std::weak_ptr<Wakeup>& w) {
            auto s = w.lock();
            if (s) s->notify();
            return !s;
        });
    }

    // Drops the readers that are gone; true when none is left.
    bool prune() {
        std::erase_if(list_, [](const std::weak_ptr<Wakeup>& x) { return x.expired(); });
        return list_.empty();
    }

private:
    std::vector<std::weak_ptr<Wakeup>> list_;
};

}  // namespace chatd::engine
