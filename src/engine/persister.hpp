#pragma once
// The group-commit persister (DESIGN §5): one loop for every generation. While
// one commit is in flight the next batch gathers. Commits are paced: one starts
// at most every `commit_interval`, and at once when none started within the
// last interval or when `commit_at_writes` generations have text waiting. So
// a lone stream's token is committed as soon as it comes, while under load
// commits scale with time (at most 1 s / interval of them) and batches grow
// with the load instead of commits, until a batch is large enough to carry
// a commit's fixed cost on its own. Text becomes visible
// (Generation::committed) only after its commit returns (I1). Runs on the I/O
// thread.
#include "core/metrics.hpp"
#include "core/wakeup.hpp"
#include "engine/generation.hpp"
#include "store/chat_store.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace chatd::engine {

struct PersisterConfig {
    CommitMode mode = CommitMode::group;
    // Group mode: the least time from one commit's start to the next's,
    // unless the next one's batch is full (commit_at_writes).
    std::chrono::milliseconds commit_interval{5};
    // Group mode: a commit starts before its interval is up once this many
    // generations have text waiting (0: never). A batch that large shares a
    // commit's fixed cost among enough tokens that waiting longer saves
    // little, and every one of them waits less (1,000 streams at 50 tokens/s
    // reach 128 in under 3 ms).
    std::size_t commit_at_writes = 128;
    // Commits failing without a success for this long is an outage: the
    // outage handler runs (after each failed retry while it lasts).
    std::chrono::milliseconds outage_timeout{60000};
    // Where commits are counted (null: nowhere).
    Metrics* metrics = nullptr;
};

struct PersisterStats {
    std::uint64_t commits = 0;
    std::uint64_t failed_commits = 0;
    std::uint64_t refused_writes = 0;
    std::uint64_t writes = 0;
    std::uint64_t bytes = 0;
};

class Persister {
public:
    using EndedHandler = std::function<void(const std::shared_ptr<Generation>&)>;
    // The store refused `w`, one write of `g` (the error says why); the other
    // writes of the commit are stored.
    using RefusedHandler = std::function<void(const std::shared_ptr<Generation>& g,
                                              const store::MessageWrite& w,
                                              boost::system::error_code error)>;
    using OutageHandler = std::function<void()>;

    Persister(net::any_io_executor ex, store::ChatStore& store, PersisterConfig config,
              EndedHandler on_ended, RefusedHandler on_refused, OutageHandler on_outage);

    // Queues `g` for the next batch (once, however often it is called).
    void mark_dirty(const std::shared_ptr<Generation>& g);
    // Runs until stop(), then until every queued write is committed or a
    // commit fails (the store is failing: nothing more is retried).
    net::awaitable<void> run();
    void stop();
    // From now on commits follow each other without pacing (a shutdown stores
    // what is pending at once).
    void stop_pacing();
    const PersisterStats& stats() const { return stats_; }
    // False from a failed commit until a commit succeeds again.
    bool commits_succeed() const { return backoff_.count() == 0; }

private:
    // Waits until the next commit may start (group mode), or stop_pacing().
    net::awaitable<void> pace();
    // A commit's writes, each with the generation it was taken from (same
    // index): the store reads them in place.
    struct Taken {
        std::vector<std::shared_ptr<Generation>> generations;
        store::Batch batch;

        void add(std::shared_ptr<Generation> g, CommitMode mode);
    };
    // Each returns false when a commit failed (its writes are queued again).
    net::awaitable<bool> commit_group();
    net::awaitable<bool> commit_one_chunk();
    net::awaitable<bool> commit(Taken& taken);

    net::any_io_executor ex_;
    store::ChatStore& store_;
    PersisterConfig config_;
    EndedHandler on_ended_;
    RefusedHandler on_refused_;
    OutageHandler on_outage_;
    // The first failure of the current run of failed commits.
    std::optional<std::chrono::steady_clock::time_point> failing_since_;
    std::deque<std::shared_ptr<Generation>> dirty_;
    Wakeup wake_;
    net::steady_timer pace_timer_;
    std::chrono::steady_clock::time_point last_start_{};
    bool stopping_ = false;
    bool paced_ = true;
    std::chrono::milliseconds backoff_{0};
    PersisterStats stats_;
};

}  // namespace chatd::engine
