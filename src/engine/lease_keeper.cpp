#include "engine/lease_keeper.hpp"

#include "core/log.hpp"
#include "engine/engine.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_map>

namespace chatd::engine {

LeaseKeeper::LeaseKeeper(net::any_io_executor ex, Engine& engine, store::ChatStore& store,
                         const EngineConfig& config)
    : engine_(engine),
      store_(store),
      config_(config),
      lease_tick_(ex),
      orphan_tick_(ex),
      cancel_tick_(ex),
      renewed_(ex) {}

net::awaitable<Result<std::size_t>> LeaseKeeper::release_previous() {
    return store_.release_stale_leases(config_.lease.node);
}

void LeaseKeeper::shutting_down() {
    orphan_tick_.notify();
    cancel_tick_.notify();
}

net::awaitable<void> LeaseKeeper::stop_renewing() {
    renewals_stopped_ = true;
    lease_tick_.notify();
    while (renewing_) co_await renewed_.wait();
}

net::awaitable<void> LeaseKeeper::keep_leases() {
    const auto every = config_.lease.ttl / 3;
    while (!renewals_stopped_) {
        co_await lease_tick_.wait_until(std::chrono::steady_clock::now() + every);
        if (renewals_stopped_) break;
        // Judged: the generations live before the renewal was asked (a turn
        // stored after it is not among its answers yet).
        auto before = engine_.registry_.all();
        renewing_ = true;
        auto held = co_await store_.renew_leases(config_.lease);
        renewing_ = false;
        renewed_.notify();
        if (!held) {
            log::warn("could not renew this node's leases: {}", held.error().message());
            continue;
        }
        std::unordered_map<std::string_view, std::int64_t> epochs;
        for (const auto& h : *held) epochs.emplace(h.id.value, h.epoch);
        for (auto& g : before) {
            if (engine_.registry_.live(g->id()) != g || g->finishing()) continue;
            auto it = epochs.find(g->id().value);
            if (it != epochs.end() && it->second == g->epoch()) continue;
            log::warn("message {}: this node lost its lease (epoch {}); another node goes on",
                      g->id().value, g->epoch());
            engine_.lose(g);
        }
    }
}

net::awaitable<void> LeaseKeeper::adopt_orphans() {
    const auto every = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      config_.lease.ttl / 4),
                                  std::chrono::milliseconds(50), std::chrono::milliseconds(1000));
    const bool continuing = config_.continue_orphans && engine_.provider_.can_continue();
    while (!engine_.shutting_down_) {
        auto limit = std::min(engine_.slots_.room(), config_.takeovers_per_scan);
        if (limit > 0) {
            auto claims = co_await store_.claim_orphans(
                config_.lease,
                store::ClaimLimits{.limit = limit,
                                   .max_recoveries = continuing ? config_.max_recoveries : 0});
            if (!claims) {
                log::warn("could not look for orphaned answers: {}", claims.error().message());
            } else {
                if (!claims->ended.empty())
                    log::warn("ended {} orphaned answers as interrupted, with what was stored",
                              claims->ended.size());
                for (auto& c : claims->continued) {
                    log::info("taking over message {} after {} bytes (lease epoch {})",
                              c.message.id.value, c.message.content.size(), c.epoch);
                    engine_.launch(c.user, std::move(c.message), engine_.slots_.adopt(c.user), c.epoch);
                }
            }
        }
        co_await orphan_tick_.wait_until(std::chrono::steady_clock::now() + every);
    }
}

net::awaitable<void> LeaseKeeper::watch_cancels() {
    while (!engine_.shutting_down_) {
        co_await cancel_tick_.wait_until(std::chrono::steady_clock::now() + config_.cancel_poll);
        if (engine_.shutting_down_) break;
        auto requested = co_await store_.cancel_requests(config_.lease.node);
        if (!requested) continue;  // the store's trouble shows in commits too
        for (const auto& id : *requested) {
            auto g = engine_.registry_.live(id);
            if (!g || g->finishing()) continue;  // not started here yet, or ending
            log::info("message {}: cancelled on another node", id.value);
            engine_.driver_.end(g, store::Terminal{.status = store::MessageStatus::cancelled,
                                        .finish_reason = "cancelled"});
        }
    }
}

}  // namespace chatd::engine
