#include "engine/feeds.hpp"

#include "core/log.hpp"

#include <boost/asio/co_spawn.hpp>

#include <algorithm>
#include <unordered_set>

namespace chatd::engine {
namespace {

// Drops the entries nobody uses any more, when the map has doubled since the
// last sweep: the maps stay bounded by what is in use, at O(1) amortised.
template <class Map, class Unused>
void sweep(Map& map, std::size_t& sweep_at, Unused unused) {
    if (map.size() < sweep_at) return;
    for (auto it = map.begin(); it != map.end();) it = unused(it->second) ? map.erase(it) : std::next(it);
    sweep_at = std::max<std::size_t>(64, 2 * map.size());
}

}  // namespace

// `from` is where `text` starts in the message. What the follower holds
// already is not appended again; a gap is not bridged.
bool Follower::append_from(std::int64_t from, std::string_view text) {
    const auto have = static_cast<std::int64_t>(message_.content.size());
    if (from > have) return false;
    const auto end = from + static_cast<std::int64_t>(text.size());
    if (end > have) message_.content.append(text.substr(static_cast<std::size_t>(have - from)));
    return true;
}

bool Follower::apply(store::Message tail, std::int64_t from) {
    if (!append_from(from, tail.content)) return false;
    if (tail.status == store::MessageStatus::generating) {
        // A read that found no new chunk has the row's older version and time.
        tail.version = std::max(tail.version, message_.version);
        tail.change_seq = std::max(tail.change_seq, message_.change_seq);
        tail.last_updated = std::max(tail.last_updated, message_.last_updated);
    }
    tail.content = std::move(message_.content);
    message_ = std::move(tail);
    subscribers_.notify();
    return true;
}

bool Follower::take(const store::ChunkNotice& chunk) {
    if (dirty_ || message_.status != store::MessageStatus::generating) return false;
    if (!append_from(chunk.offset, chunk.text)) return false;
    message_.version = std::max(message_.version, chunk.version);
    message_.last_updated = std::max(message_.last_updated, chunk.at);
    subscribers_.notify();
    return true;
}

void Follower::lose() {
    lost_ = true;
    subscribers_.notify();
}

Feeds::Feeds(net::any_io_executor ex, Engine& engine, store::ChatStore& store, FeedsConfig config)
    : ex_(ex),
      engine_(engine),
      store_(store),
      config_(config),
      fetch_wake_(ex),
      listen_pause_(ex),
      fetch_pause_(ex) {}

std::shared_ptr<Follower> Feeds::lookup(const std::string& id) const {
    auto it = followers_.find(id);
    return it == followers_.end() ? nullptr : it->second.lock();
}

net::awaitable<Result<std::shared_ptr<MessageFeed>>> Feeds::open(
    UserId user, MessageId id, std::optional<store::Message> read) {
    if (auto g = engine_.find(user, id)) co_return std::shared_ptr<MessageFeed>(std::move(g));
    auto known = [&](std::shared_ptr<Follower> f) -> Result<std::shared_ptr<MessageFeed>> {
        if (f->user() != user) return Error::not_found;
        return std::shared_ptr<MessageFeed>(std::move(f));
    };
    if (auto f = lookup(id.value)) co_return known(std::move(f));
    Result<store::Message> first = Error::not_found;
    if (read && read->id == id)
        first = std::move(*read);
    else
        first = co_await store_.get_message(user, id);
    if (!first) co_return first.error();
    // It started here while we read.
    if (auto g = engine_.find(user, id)) co_return std::shared_ptr<MessageFeed>(std::move(g));
    auto follower = std::make_shared<Follower>(user, std::move(*first));
    if (follower->message().status != store::MessageStatus::generating)
        co_return std::shared_ptr<MessageFeed>(std::move(follower));  // it changes no more
    if (auto f = lookup(id.value)) co_return known(std::move(f));  // another reader was first
    sweep(followers_, followers_sweep_at_, [](const std::weak_ptr<Follower>& f) { return f.expired(); });
    followers_[id.value] = follower;
    // A commit between the read above and now announced itself to nobody:
    // one read after the follower is known closes that gap.
    follower->dirty_ = true;
    fetch_wake_.notify();
    co_return std::shared_ptr<MessageFeed>(std::move(follower));
}

void Feeds::watch_session(const SessionId& session, std::weak_ptr<Wakeup> w) {
    sweep(sessions_, sessions_sweep_at_, [](Subscribers& s) { return s.prune(); });
    sessions_[session.value].add(std::move(w));
}

net::awaitable<void> Feeds::run() {
    net::co_spawn(ex_, fetch(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    co_await listen();
}

void Feeds::stop() {
    stopped_ = true;
    fetch_wake_.notify();
    listen_pause_.notify();
    fetch_pause_.notify();
}

FeedsStats Feeds::stats() const {
    auto s = stats_;
    s.followers = 0;
    for (const auto& [id, f] : followers_) s.followers += f.expired() ? 0 : 1;
    return s;
}

void Feeds::mark(const store::ChangeNotice& notice) {
    std::unordered_set<std::string_view> sessions;
    for (const auto& s : notice.sessions) sessions.insert(s.value);
    bool any = false;
    auto dirty = [&](Follower& f) {
        f.dirty_ = true;
        any = true;
    };
    if (notice.everything || !sessions.empty()) {
        for (const auto& [id, weak] : followers_)
            if (auto f = weak.lock();
                f && (notice.everything || sessions.contains(f->message().session_id.value)))
                dirty(*f);
    }
    for (const auto& m : notice.messages)
        if (auto f = lookup(m.value)) dirty(*f);
    // Text that came with the notice is applied at once: no read at all.
    for (const auto& c : notice.chunks)
        if (auto f = lookup(c.id.value); f && !f->take(c)) dirty(*f);
    if (any) fetch_wake_.notify();
    // Session streams look for a new message themselves.
    if (notice.everything) {
        for (auto& [id, subscribers] : sessions_) subscribers.notify();
    } else {
        for (const auto& s : notice.sessions)
            if (auto it = sessions_.find(s.value); it != sessions_.end()) it->second.notify();
    }
}

net::awaitable<void> Feeds::listen() {
    auto listener = store_.listen(ex_);
    bool down = false;
    while (!stopped_) {
        // The deadline only bounds how late a stop() is noticed.
        auto notice = co_await listener->next(std::chrono::steady_clock::now() + config_.retry);
        if (stopped_) break;
        if (!notice) {
            if (!down) log::warn("change notices stopped: {}; followers read the store every {} ms "
                                 "until they are back",
                                 notice.error().message(), config_.retry.count());
            down = true;
            mark(store::ChangeNotice{.everything = true});
            co_await listen_pause_.wait_until(std::chrono::steady_clock::now() + config_.retry);
            continue;
        }
        if (down) log::info("change notices are back");
        down = false;
        if (notice->empty()) continue;
        ++stats_.notices;
        mark(*notice);
    }
}

net::awaitable<void> Feeds::fetch() {
    while (!stopped_) {
        co_await fetch_wake_.wait();
        if (stopped_) break;
        std::vector<store::ReadPosition> at;
        std::erase_if(followers_, [&](auto& entry) {
            auto f = entry.second.lock();
            if (!f) return true;
            if (f->dirty_) {
                f->dirty_ = false;
                at.push_back({f->message().id, static_cast<std::int64_t>(f->message().content.size())});
            }
            return false;
        });
        if (at.empty()) continue;
        ++stats_.tail_reads;
        auto tails = co_await store_.read_tails(at);
        if (!tails) {
            // Read again after a pause: what they missed is still stored.
            log::warn("could not read {} followed messages: {}", at.size(), tails.error().message());
            for (const auto& p : at)
                if (auto f = lookup(p.id.value)) f->dirty_ = true;
            co_await fetch_pause_.wait_until(std::chrono::steady_clock::now() + config_.retry);
            fetch_wake_.notify();
            continue;
        }
        std::unordered_map<std::string_view, std::int64_t> asked;
        for (const auto& p : at) asked.emplace(p.id.value, p.offset);
        std::unordered_set<std::string> found;
        for (auto& tail : *tails) {
            auto f = lookup(tail.id.value);
            found.insert(tail.id.value);
            if (!f) continue;
            bool ended = tail.status != store::MessageStatus::generating;
            auto id = tail.id.value;
            // A follower made again meanwhile (its readers left and came
            // back) may hold more or less than this read started from.
            if (!f->apply(std::move(tail), asked[id])) {
                f->dirty_ = true;
                fetch_wake_.notify();
                continue;
            }
            if (ended) followers_.erase(id);  // it changes no more
        }
        for (const auto& p : at) {
            if (found.contains(p.id.value)) continue;
            // Deleted (its session was): readers find it gone.
            if (auto f = lookup(p.id.value)) {
                followers_.erase(p.id.value);
                f->lose();
            }
        }
    }
}

}  // namespace chatd::engine
