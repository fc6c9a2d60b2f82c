#include "engine/persister.hpp"

#include "core/log.hpp"

#include <boost/asio/steady_timer.hpp>

namespace chatd::engine {
namespace {

constexpr std::chrono::milliseconds kMinBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

net::awaitable<void> sleep_for(net::any_io_executor ex, std::chrono::milliseconds d) {
    net::steady_timer timer(ex, d);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
}

}  // namespace

Persister::Persister(net::any_io_executor ex, store::ChatStore& store, PersisterConfig config,
                     EndedHandler on_ended, RefusedHandler on_refused,
                     OutageHandler on_outage)
    : ex_(ex),
      store_(store),
      config_(config),
      on_ended_(std::move(on_ended)),
      on_refused_(std::move(on_refused)),
      on_outage_(std::move(on_outage)),
      wake_(ex),
      pace_timer_(ex) {}

void Persister::mark_dirty(const std::shared_ptr<Generation>& g) {
    if (g->queued_for_commit) return;
    g->queued_for_commit = true;
    dirty_.push_back(g);
    wake_.notify();
    if (dirty_.size() == config_.commit_at_writes) pace_timer_.cancel();  // a full batch
}

void Persister::stop() {
    stopping_ = true;
    wake_.notify();
    stop_pacing();
}

void Persister::stop_pacing() {
    paced_ = false;
    pace_timer_.cancel();  // what is pending is committed at once
}

net::awaitable<void> Persister::run() {
    for (;;) {
        while (dirty_.empty()) {
            if (stopping_) co_return;
            co_await wake_.wait();
        }
        co_await pace();
        bool stored = config_.mode == CommitMode::group ? co_await commit_group()
                                                        : co_await commit_one_chunk();
        if (!stored && stopping_) {
            // The engine's shutdown waited for the store already.
            log::warn("stopping without storing the text of {} generations: the store fails",
                      dirty_.size());
            co_return;
        }
    }
}

net::awaitable<void> Persister::pace() {
    if (config_.mode != CommitMode::group) co_return;
    const auto due = last_start_ + config_.commit_interval;
    const bool full = config_.commit_at_writes > 0 && dirty_.size() >= config_.commit_at_writes;
    if (paced_ && !full && std::chrono::steady_clock::now() < due) {
        pace_timer_.expires_at(due);
        co_await pace_timer_.async_wait(net::as_tuple(net::use_awaitable));
    }
    last_start_ = std::chrono::steady_clock::now();
}

void Persister::Taken::add(std::shared_ptr<Generation> g, CommitMode mode) {
    batch.writes.push_back(g->take(mode));
    generations.push_back(std::move(g));
}

net::awaitable<bool> Persister::commit_group() {
    Taken taken;
    taken.generations.reserve(dirty_.size());
    taken.batch.writes.reserve(dirty_.size());
    for (auto& g : dirty_) {
        g->queued_for_commit = false;
        if (g->has_pending()) taken.add(std::move(g), CommitMode::group);
    }
    dirty_.clear();
    co_return co_await commit(taken);
}

// The baseline: each token of each generation is its own commit, generations
// taking turns.
net::awaitable<bool> Persister::commit_one_chunk() {
    auto g = std::move(dirty_.front());
    dirty_.pop_front();
    g->queued_for_commit = false;
    if (!g->has_pending()) co_return true;
    Taken taken;
    taken.add(g, CommitMode::per_chunk);
    bool stored = co_await commit(taken);
    if (stored && g->has_pending()) mark_dirty(g);
    co_return stored;
}

net::awaitable<bool> Persister::commit(Taken& taken) {
    auto& writes = taken.batch.writes;
    if (writes.empty()) co_return true;
    const auto at = now_millis();
    taken.batch.at = at;
    std::uint64_t bytes = 0;
    for (const auto& w : writes) bytes += w.text.size() + w.reasoning.size();
    const auto started = std::chrono::steady_clock::now();
    auto result = co_await store_.commit(taken.batch);
    if (result && result->writes.size() != writes.size()) {
        log::error("store answered {} write results for {} writes", result->writes.size(),
                   writes.size());
        result = Error::store_failure;
    }
    if (config_.metrics)
        config_.metrics->commit(std::chrono::steady_clock::now() - started, writes.size(),
                                bool(result));
    if (!result) {
        ++stats_.failed_commits;
        backoff_ = std::min(kMaxBackoff, std::max(kMinBackoff, backoff_ * 2));
        log::warn("commit of {} writes failed ({}); retrying in {} ms", writes.size(),
                  result.error().message(), backoff_.count());
        for (std::size_t i = 0; i < writes.size(); ++i) {
            const auto& g = taken.generations[i];
            g->restore(std::move(writes[i]));
            mark_dirty(g);
        }
        const auto now = std::chrono::steady_clock::now();
        if (!failing_since_) failing_since_ = now;
        // Nothing of this batch is in flight any more: the handler may drop it.
        if (now - *failing_since_ >= config_.outage_timeout && on_outage_) on_outage_();
        if (!stopping_) co_await sleep_for(ex_, backoff_);
        co_return false;
    }
    failing_since_.reset();
    backoff_ = std::chrono::milliseconds{0};
    ++stats_.commits;
    stats_.writes += writes.size();
    stats_.bytes += bytes;
    for (std::size_t i = 0; i < writes.size(); ++i) {
        const auto& g = taken.generations[i];
        const auto& w = writes[i];
        const auto& written = result->writes[i];
        if (written.error) {
            ++stats_.refused_writes;
            if (written.error != Error::lease_lost)  // expected after a takeover; the engine says so
                log::error("the store refused a write of message {} at byte {} ({} bytes{}): {}",
                           g->id().value, w.offset, w.text.size(), w.terminal ? ", its end" : "",
                           written.error.message());
            on_refused_(g, w, written.error);
            continue;
        }
        g->committed(w, at, written.version);
        if (g->ended()) on_ended_(g);
    }
    co_return true;
}

}  // namespace chatd::engine
