#pragma once
// How the engine runs generations, keeps leases and stops: one struct shared
// by the engine's parts (driver, lease keeper), set from the command line.
#include "engine/generation_slots.hpp"
#include "engine/persister.hpp"
#include "store/model.hpp"

#include <chrono>
#include <cstddef>

namespace chatd::engine {

struct EngineConfig {
    PersisterConfig persister;
    // After a transient failure past the first token, a provider that can
    // continue a partial answer is asked to: this many times at most per
    // answer, whatever the number of failures.
    int continue_attempts = 2;
    // Content bytes of the prompt; the oldest turns are dropped to fit.
    std::size_t prompt_budget_bytes = 512 * 1024;
    // Longest answer; one that reaches it ends as completed/length.
    std::size_t max_answer_bytes = 4 * 1024 * 1024;
    GenerationLimits limits;
    // A cancel stops the upstream at once and waits this long for its end to
    // be stored; past it (the store is failing) it answers store_failure,
    // and the end is stored when the store takes it.
    std::chrono::milliseconds cancel_timeout{5000};
    // Shutdown waits this long for live generations' text to be stored.
    std::chrono::milliseconds shutdown_timeout{10000};
    // This node's leases (DESIGN §7): its id, unique among the nodes of one
    // store, and how long a lease lasts unrenewed. keep_leases() renews them
    // every ttl/3.
    store::LeaseTerms lease;
    // Orphans (generations whose node died, stalled past its lease, or handed
    // them over): continued after their stored content when the provider can,
    // else ended error/interrupted with it.
    bool continue_orphans = true;
    // Takeovers one answer gets before it ends error/interrupted instead (an
    // answer that keeps killing its node is not retried forever).
    int max_recoveries = 3;
    // At most this many orphans taken per scan (scans are ttl/4 apart, at
    // most 1 s): a crash with many live answers does not stampede the
    // provider, and the other nodes share the work.
    std::size_t takeovers_per_scan = 16;
    // How often the node reads the cancels other nodes requested of the
    // answers it runs (and a cancel made there looks for their end).
    std::chrono::milliseconds cancel_poll{250};
    // Where answers, tokens and first tokens are counted (null: nowhere).
    Metrics* metrics = nullptr;
};

}  // namespace chatd::engine
