#pragma once
// Readers' one view of messages, wherever they run (DESIGN §7, "Any node
// serves any stream"). A message this node runs is read from its Generation.
// Any other is read through a Follower: one per message per node, shared by
// every local reader. It takes the text a change notice (ChatStore::listen)
// carries, and reads only the chunks committed after what it holds when a
// notice names the message without its text (or the text does not follow on
// from what it holds). One read serves every follower named since the last
// one; nothing polls. Session streams are woken by the same notices when
// a message starts in their session, on any node.
//
// Runs on the I/O thread: run() until stop().
#include "core/error.hpp"
#include "core/wakeup.hpp"
#include "engine/engine.hpp"
#include "engine/message_feed.hpp"
#include "store/chat_store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace chatd::engine {

// A message another node runs (or none does, until one takes it over), as
// committed: what this node's readers of it see.
class Follower final : public MessageFeed {
public:
    Follower(UserId user, store::Message first) : user_(std::move(user)), message_(std::move(first)) {}

    const store::Message& message() const override { return message_; }
    void subscribe(std::weak_ptr<Wakeup> w) override { subscribers_.add(std::move(w)); }
    bool stale() const override { return lost_; }
    const UserId& user() const { return user_; }

private:
    friend class Feeds;
    // The message as stored, its content the bytes from `from` on
    // (read_tails). False, and nothing changes, when `from` is past what
    // the follower holds.
    bool apply(store::Message tail, std::int64_t from);
    // Text a notice carried; false when it does not follow on from what the
    // follower holds (or a read is due anyway): read the store then.
    bool take(const store::ChunkNotice& chunk);
    bool append_from(std::int64_t from, std::string_view text);
    // Deleted, or no longer followed: readers open a new feed.
    void lose();

    UserId user_;
    store::Message message_;
    Subscribers subscribers_;
    bool lost_ = false;
    bool dirty_ = false;  // a notice named it since its last read
};

struct FeedsConfig {
    // While the store's notices are down (its connection lost), followers
    // read the store this often, and listening is tried again.
    std::chrono::milliseconds retry{1000};
};

struct FeedsStats {
    std::uint64_t notices = 0;     // notices that named something
    std::uint64_t tail_reads = 0;  // read_tails calls, each for every follower named
    std::size_t followers = 0;     // messages followed now
};

class Feeds {
public:
    Feeds(net::any_io_executor ex, Engine& engine, store::ChatStore& store,
          FeedsConfig config = {});

    // The message `id` of `user` as a feed: its Generation when this node
    // runs it, else the node's Follower of it (one ended already is read
    // once). not_found for unknown or foreign ids (I6). `read`: the message
    // as the caller has just read it for `user`; it stands in for the
    // store's read (a follower of a live one reads the store once more,
    // as any new follower does).
    net::awaitable<Result<std::shared_ptr<MessageFeed>>> open(
        UserId user, MessageId id, std::optional<store::Message> read = std::nullopt);
    // Session streams: `w` is woken when a message starts in `session` (or
    // the session is deleted), on any node.
    void watch_session(const SessionId& session, std::weak_ptr<Wakeup> w);
    // The generation this node runs in `user`'s session, if any.
    std::shared_ptr<Generation> active_in(const UserId& user, const SessionId& session) const {
        return engine_.active_in(user, session);
    }

    // Listens to the store's notices and keeps the followers current, until
    // stop().
    net::awaitable<void> run();
    void stop();

    FeedsStats stats() const;

private:
    net::awaitable<void> listen();
    net::awaitable<void> fetch();
    // Marks the followers a notice names; wakes fetch() and session streams.
    void mark(const store::ChangeNotice& notice);
    std::shared_ptr<Follower> lookup(const std::string& id) const;

    net::any_io_executor ex_;
    Engine& engine_;
    store::ChatStore& store_;
    FeedsConfig config_;
    std::unordered_map<std::string, std::weak_ptr<Follower>> followers_;  // by message id
    std::unordered_map<std::string, Subscribers> sessions_;              // by session id
    Wakeup fetch_wake_;
    // One each: a Wakeup has one waiter, and both loops pause while the
    // store is out.
    Wakeup listen_pause_;
    Wakeup fetch_pause_;
    std::size_t followers_sweep_at_ = 64;
    std::size_t sessions_sweep_at_ = 64;
    bool stopped_ = false;
    FeedsStats stats_;
};

}  // namespace chatd::engine
