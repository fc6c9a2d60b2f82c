#pragma once
// The generation engine: owns the generations this node runs (I3: they belong
// to the engine, not to the request that started them) and their lifecycle:
// start, cancel, loss to another node, store trouble, shutdown. Its parts,
// each named for its role:
// - Registry: the live generations, by message and by session;
// - Driver: one generation from its provider into the persister;
// - Persister: group commits, durable before visible;
// - LeaseKeeper: leases, takeovers and cancels across nodes (DESIGN §7).
// Readers see generations through engine/feeds.hpp. Everything here runs on
// the I/O thread.
#include "core/error.hpp"
#include "core/wakeup.hpp"
#include "engine/driver.hpp"
#include "engine/engine_config.hpp"
#include "engine/generation.hpp"
#include "engine/generation_slots.hpp"
#include "engine/lease_keeper.hpp"
#include "engine/persister.hpp"
#include "engine/registry.hpp"
#include "llm/provider.hpp"
#include "store/chat_store.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

namespace chatd::engine {

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
    // Registers and starts the generation of a freshly created turn;
    // `request_id` (the request that sent it) goes on its log lines;
    // `system_prompt`: its session's, as the send read it.
    std::shared_ptr<Generation> start(const UserId& user, const store::Turn& turn,
                                      GenerationSlots::Slot slot, std::string request_id = {},
                                      std::optional<std::string> system_prompt = std::nullopt);
    // The lease a new turn's answer starts under.
    const store::LeaseTerms& lease() const { return config_.lease; }
    // Renews this node's leases every ttl/3 until shutdown() ends; a live
    // generation whose lease another node took (this node stalled past it)
    // stops at once and writes nothing more (the store fences it anyway).
    net::awaitable<void> keep_leases() { return leases_.keep_leases(); }
    // Start-up, before any send: the leases this node's id held belong to its
    // previous process and are released, to be taken over at once (and at
    // the usual pace) instead of a lease later. Before adopt_orphans().
    net::awaitable<Result<std::size_t>> release_previous_leases() {
        return leases_.release_previous();
    }
    // Takes over orphans until shutdown: at once, then every ttl/4 (at most
    // 1 s), at most takeovers_per_scan at a time and as room allows. See
    // EngineConfig::continue_orphans.
    net::awaitable<void> adopt_orphans() { return leases_.adopt_orphans(); }
    // Until shutdown, every cancel_poll: stops the answers this node runs
    // whose cancel was requested on another node (ChatStore::request_cancel).
    net::awaitable<void> watch_cancels() { return leases_.watch_cancels(); }
    // The live generation of `user`'s message, if this engine runs it; another
    // user's generation is not found, as in the store (I6).
    std::shared_ptr<Generation> find(const UserId& user, const MessageId& id) const {
        return registry_.find(user, id);
    }
    // The live generation in `user`'s session, if any.
    std::shared_ptr<Generation> active_in(const UserId& user, const SessionId& session) const {
        return registry_.active_in(user, session);
    }

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
    // Answers this node is generating now.
    std::size_t live_count() const { return registry_.size(); }
    // False from a failed commit until a commit succeeds again.
    bool commits_succeed() const { return persister_.commits_succeed(); }
    const PersisterStats& persister_stats() const { return persister_.stats(); }

private:
    friend class LeaseKeeper;

    std::shared_ptr<Generation> launch(const UserId& user, store::Message message,
                                       GenerationSlots::Slot slot, std::int64_t epoch = 1,
                                       std::string request_id = {},
                                       std::optional<std::string> system_prompt = std::nullopt);
    // `g`'s lease went to another node: it stops and leaves the registry.
    void lose(const std::shared_ptr<Generation>& g);
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
    const EngineConfig config_;
    Persister persister_;
    Registry registry_;
    GenerationSlots slots_;
    Driver driver_;
    LeaseKeeper leases_;
    bool shutting_down_ = false;
};

}  // namespace chatd::engine
