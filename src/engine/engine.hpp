#pragma once
// The generation engine: owns every live generation (the registry) and drives
// each one from its provider into the persister. Generations belong to the engine, not to the HTTP request
// that started them (I3). Everything here runs on the I/O thread.
#include "core/error.hpp"
#include "core/wakeup.hpp"
#include "engine/generation.hpp"
#include "engine/generation_slots.hpp"
#include "engine/persister.hpp"
#include "llm/provider.hpp"
#include "store/chat_store.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

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
};

// What a graceful stop does with live generations.
enum class Shutdown {
    // Commit what they have and leave them generating, for the next start
    // to continue (a restart loses nothing that a kill -9 would not).
    hand_over,
    // End them as error/interrupted with their content (for providers that
    // cannot continue a partial answer).
    end_interrupted,
};

class Engine {
public:
    Engine(net::any_io_executor ex, store::ChatStore& store, llm::Provider& provider,
           EngineConfig config);

    // Runs the persister until shutdown() has drained it.
    net::awaitable<void> run();

    // A place for one more generation of `user`, to take before its turn is
    // stored: overloaded (server full) or too_many_generations (user full).
    Result<GenerationSlots::Slot> reserve(const UserId& user);
    // Registers and starts the generation of a freshly created turn.
    std::shared_ptr<Generation> start(const UserId& user, const store::Turn& turn,
                                      GenerationSlots::Slot slot);
    // The lease a new turn's answer starts under.
    const store::LeaseTerms& lease() const { return config_.lease; }
    // Renews this node's leases every ttl/3 until shutdown() ends; a live
    // generation whose lease another node took (this node stalled past it)
    // stops at once and writes nothing more (the store fences it anyway).
    net::awaitable<void> keep_leases();
    // Start-up, before any send: the leases this node's id held belong to its
    // previous process and are released, to be taken over at once (and at
    // the usual pace) instead of a lease later. Before adopt_orphans().
    net::awaitable<Result<std::size_t>> release_previous_leases() {
        return store_.release_stale_leases(config_.lease.node);
    }
    // Takes over orphans until shutdown: at once, then every ttl/4 (at most
    // 1 s), at most takeovers_per_scan at a time and as room allows. See
    // EngineConfig::continue_orphans.
    net::awaitable<void> adopt_orphans();
    // Until shutdown, every cancel_poll: stops the answers this node runs
    // whose cancel was requested on another node (ChatStore::request_cancel).
    net::awaitable<void> watch_cancels();
    // The live generation of `user`'s message, if this engine runs it; another
    // user's generation is not found, as in the store (I6).
    std::shared_ptr<Generation> find(const UserId& user, const MessageId& id) const;
    // The live generation in `user`'s session, if any.
    std::shared_ptr<Generation> active_in(const UserId& user, const SessionId& session) const;

    // Cancels a generation and returns the message once its end is committed
    // (I4), whichever node runs it: one another node runs is marked in the
    // store for its owner to stop. not_found for unknown or foreign ids;
    // not_generating for messages that are not generating (a cancelled one
    // is returned as it is); store_failure when the end is not stored within
    // cancel_timeout (it is stored later, by the owner or a node taking over).
    net::awaitable<Result<store::Message>> cancel(UserId user, MessageId id);

    // Graceful stop: no new generation starts; each live one stops reading
    // its provider and is handed over or ended (see Shutdown), within
    // EngineConfig::shutdown_timeout however the store behaves; then the
    // persister stops. A turn stored while this runs is left generating, for
    // the next start.
    net::awaitable<void> shutdown(Shutdown mode);
    bool accepting() const { return !shutting_down_; }
    // False from a failed commit until a commit succeeds again.
    bool commits_succeed() const { return persister_.commits_succeed(); }
    const PersisterStats& persister_stats() const { return persister_.stats(); }

private:
    std::shared_ptr<Generation> launch(const UserId& user, store::Message message,
                                       GenerationSlots::Slot slot, std::int64_t epoch = 1);
    // `g`'s lease went to another node: it stops and leaves the registry.
    void lose(const std::shared_ptr<Generation>& g);
    // Any user's live generation: for the engine's own bookkeeping only.
    std::shared_ptr<Generation> live(const MessageId& id) const;
    net::awaitable<void> drive(std::shared_ptr<Generation> g);
    // Relays one provider stream into `g`; returns its last event (done or
    // failed), or nothing when `g` was finished from outside meanwhile.
    net::awaitable<std::optional<llm::StreamEvent>> relay(const std::shared_ptr<Generation>& g,
                                                          llm::ProviderStream& stream,
                                                          Wakeup& committed);
    net::awaitable<Result<llm::GenerationRequest>> build_request(const Generation& g);
    void end_with(const std::shared_ptr<Generation>& g, store::Terminal terminal);
    void on_ended(const std::shared_ptr<Generation>& g);
    void on_refused(const std::shared_ptr<Generation>& g, const store::MessageWrite& w,
                    boost::system::error_code error);
    // Commits have failed for PersisterConfig::outage_timeout: every live
    // answer stops and ends with what is stored, once the store takes it.
    void on_store_outage();
    // Ends `g` as the store has it, when the store will not take its end.
    net::awaitable<void> adopt_stored_end(std::shared_ptr<Generation> g);
    // True when `g` ended (or, for settled, has every byte stored) by `deadline`.
    net::awaitable<bool> wait_ended(const std::shared_ptr<Generation>& g,
                                    std::chrono::steady_clock::time_point deadline);
    net::awaitable<bool> wait_settled(const std::shared_ptr<Generation>& g,
                                      std::chrono::steady_clock::time_point deadline);

    net::any_io_executor ex_;
    store::ChatStore& store_;
    llm::Provider& provider_;
    EngineConfig config_;
    Persister persister_;
    std::unordered_map<std::string, std::shared_ptr<Generation>> live_;        // by message id
    std::unordered_map<std::string, std::shared_ptr<Generation>> by_session_;  // by session id
    GenerationSlots slots_;
    Wakeup lease_tick_;   // keep_leases() waits on it
    Wakeup orphan_tick_;  // adopt_orphans() waits on it
    Wakeup cancel_tick_;  // watch_cancels() waits on it
    bool shutting_down_ = false;
    bool stopped_ = false;  // shutdown() is over
};

}  // namespace chatd::engine
