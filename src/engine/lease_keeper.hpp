#pragma once
// This node's share of DESIGN §7's ownership: it keeps the node's leases
// renewed and stops a generation whose lease another node took, takes over
// orphans (answers whose node died, stalled past its lease or handed them
// over) at a bounded pace, and brings cancels asked on other nodes to the
// answers this node runs. The engine owns it; its loops end with the
// engine's shutdown. Lives on the I/O thread.
#include "core/error.hpp"
#include "core/wakeup.hpp"
#include "engine/engine_config.hpp"
#include "store/chat_store.hpp"

#include <cstddef>

namespace chatd::engine {

class Engine;

class LeaseKeeper {
public:
    LeaseKeeper(net::any_io_executor ex, Engine& engine, store::ChatStore& store,
                const EngineConfig& config);

    // Start-up, before any send: the leases this node's id held belong to its
    // previous process and are released, to be taken over at once.
    net::awaitable<Result<std::size_t>> release_previous();
    // Renews the node's leases every ttl/3 until stop_renewing(); a
    // generation missing from the renewal's answer is lost to another node.
    net::awaitable<void> keep_leases();
    // Takes over orphans until shutdown: at once, then every ttl/4 (at most
    // 1 s), at most takeovers_per_scan at a time and as room allows.
    net::awaitable<void> adopt_orphans();
    // Until shutdown, every cancel_poll: stops the answers this node runs
    // whose cancel was requested on another node.
    net::awaitable<void> watch_cancels();
    // Shutdown began: the scans for orphans and cancels end now.
    void shutting_down();
    // The end of a shutdown: renews no more, once a renewal in flight is
    // over, so that it cannot extend the leases the engine releases next.
    net::awaitable<void> stop_renewing();

private:
    Engine& engine_;
    store::ChatStore& store_;
    const EngineConfig& config_;
    Wakeup lease_tick_;
    Wakeup orphan_tick_;
    Wakeup cancel_tick_;
    Wakeup renewed_;  // a renewal came back
    bool renewing_ = false;
    bool renewals_stopped_ = false;
};

}  // namespace chatd::engine
