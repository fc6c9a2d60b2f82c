#include "engine/engine.hpp"

#include "core/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>

namespace chatd::engine {
Engine::Engine(net::any_io_executor ex, store::ChatStore& store, llm::Provider& provider,
               EngineConfig config)
    : ex_(ex),
      store_(store),
      provider_(provider),
      config_(config),
      persister_(
          ex, store, config.persister, [this](const std::shared_ptr<Generation>& g) { on_ended(g); },
          [this](const std::shared_ptr<Generation>& g, const store::MessageWrite& w,
                 boost::system::error_code error) { on_refused(g, w, error); },
          [this] { on_store_outage(); }),
      slots_(config_.limits),
      driver_(ex, store, provider, persister_, config_),
      leases_(ex, *this, store, config_) {}

net::awaitable<void> Engine::run() {
    co_await persister_.run();
}

Result<GenerationSlots::Slot> Engine::reserve(const UserId& user) {
    if (shutting_down_) return Error::shutting_down;
    return slots_.reserve(user);
}

std::shared_ptr<Generation> Engine::start(const UserId& user, const store::Turn& turn,
                                          GenerationSlots::Slot slot, std::string request_id,
                                          std::optional<std::string> system_prompt) {
    return launch(user, turn.assistant_message, std::move(slot), 1, std::move(request_id),
                  std::move(system_prompt));
}

std::shared_ptr<Generation> Engine::launch(const UserId& user, store::Message message,
                                           GenerationSlots::Slot slot, std::int64_t epoch,
                                           std::string request_id,
                                           std::optional<std::string> system_prompt) {
    auto g = std::make_shared<Generation>(std::move(message), user, std::move(slot), epoch);
    g->set_request_id(std::move(request_id));
    if (system_prompt) g->set_system_prompt(std::move(*system_prompt));
    if (shutting_down_) {
        // Stored while the shutdown began: it stays generating, for another
        // node or the next start to continue or close (I5).
        log::info(g->log_context(), "message {} arrived during shutdown; left for the next start",
                  g->id().value);
        g->suspend();
        return g;
    }
    registry_.add(g);
    net::co_spawn(ex_, driver_.drive(g), [this, g](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error(g->log_context(), "generation {} crashed: {}", g->id().value, ex.what());
        }
        // Its message must not stay generating (and its session blocked).
        driver_.end(g, failure("internal_error", "the server failed while generating this answer"));
    });
    return g;
}

void Engine::lose(const std::shared_ptr<Generation>& g) {
    if (g->moved()) return;
    if (auto* stream = g->stream()) stream->cancel();
    g->move_away();
    on_ended(g);
}

void Engine::on_ended(const std::shared_ptr<Generation>& g) {
    g->release_slot();
    registry_.remove(g);
}

void Engine::on_refused(const std::shared_ptr<Generation>& g, const store::MessageWrite& w,
                        boost::system::error_code error) {
    if (error == Error::lease_lost) {
        log::warn("message {}: another node has taken it over (this node's lease epoch {} is "
                  "stale); its writes stop here",
                  g->id().value, g->epoch());
        lose(g);
        return;
    }
    if (auto* stream = g->stream()) stream->cancel();
    if (error == Error::store_failure && (!w.text.empty() || !w.reasoning.empty())) {
        // Text the store cannot take (too large, out of order): the answer
        // ends here, with what is stored.
        g->end_after_committed(
            failure("store_failure", "the store refused this answer's text; it ends with what was stored"));
        persister_.mark_dirty(g);
        return;
    }
    net::co_spawn(ex_, adopt_stored_end(g), [id = g->id().value](std::exception_ptr e) {
        if (e) log::error("message {}: could not read how it ended", id);
    });
}

void Engine::on_store_outage() {
    std::size_t ended = 0;
    for (auto& g : registry_.all()) {
        if (g->finishing()) continue;
        if (auto* stream = g->stream()) stream->cancel();
        // What was not stored was never shown to anyone (I1): it goes, and
        // the answer's memory with it.
        g->end_after_committed(failure(
            "store_unavailable", "the store was unavailable for too long; the answer ends with "
                                 "what was stored"));
        persister_.mark_dirty(g);
        ++ended;
    }
    if (ended > 0)
        log::error("commits have failed for {} ms: ended {} live answers with what was stored",
                   config_.persister.outage_timeout.count(), ended);
}

net::awaitable<void> Engine::adopt_stored_end(std::shared_ptr<Generation> g) {
    auto stored = co_await store_.get_message(g->user(), g->id());
    if (stored && stored->status != store::MessageStatus::generating) {
        g->adopt_end(std::move(*stored));
    } else {
        log::error("message {}: the store refuses its end; it stays generating there until the "
                   "next start closes it",
                   g->id().value);
        auto end = g->message();
        end.status = store::MessageStatus::error;
        end.is_streaming = false;
        end.error = store::MessageError{"store_failure", "the store refused this answer's end"};
        end.finish_reason = "error";
        g->adopt_end(std::move(end));
    }
    on_ended(g);
}

net::awaitable<bool> Engine::wait_ended(const std::shared_ptr<Generation>& g,
                                        std::chrono::steady_clock::time_point deadline) {
    auto w = std::make_shared<Wakeup>(ex_);
    g->subscribe(w);
    while (!g->ended() && std::chrono::steady_clock::now() < deadline) co_await w->wait_until(deadline);
    co_return g->ended();
}

net::awaitable<bool> Engine::wait_settled(const std::shared_ptr<Generation>& g,
                                          std::chrono::steady_clock::time_point deadline) {
    auto w = std::make_shared<Wakeup>(ex_);
    g->subscribe(w);
    while (!g->settled() && std::chrono::steady_clock::now() < deadline)
        co_await w->wait_until(deadline);
    co_return g->settled();
}

net::awaitable<Result<store::Message>> Engine::cancel(UserId user, MessageId id) {
    auto g = find(user, id);
    if (!g) {
        // Not run here (another node runs it, or its send is registering it
        // here right now): its owner stops it once the store says so.
        auto requested = co_await store_.request_cancel(user, id);
        if (!requested) {
            if (requested.error() != Error::not_generating) co_return requested.error();
            auto stored = co_await store_.get_message(user, id);
            if (!stored || stored->status != store::MessageStatus::cancelled)
                co_return Error::not_generating;
            co_return std::move(*stored);
        }
        const auto deadline = std::chrono::steady_clock::now() + config_.cancel_timeout;
        net::steady_timer timer(ex_);
        while (!(g = find(user, id))) {
            auto stored = co_await store_.get_message(user, id);
            if (!stored) co_return stored.error();
            if (stored->status == store::MessageStatus::cancelled) co_return std::move(*stored);
            if (stored->status != store::MessageStatus::generating) co_return Error::not_generating;
            if (std::chrono::steady_clock::now() >= deadline) co_return Error::store_failure;
            timer.expires_after(config_.cancel_poll / 5);
            co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        }
    }
    driver_.end(g, store::Terminal{.status = store::MessageStatus::cancelled,
                                   .finish_reason = "cancelled"});
    // The upstream is stopped already; only storing the end can lag.
    if (!co_await wait_ended(g, std::chrono::steady_clock::now() + config_.cancel_timeout))
        co_return Error::store_failure;
    if (g->message().status != store::MessageStatus::cancelled) co_return Error::not_generating;
    co_return g->message();
}

net::awaitable<void> Engine::shutdown(Shutdown mode) {
    shutting_down_ = true;
    leases_.shutting_down();  // adopts no more
    persister_.stop_pacing();
    const auto deadline = std::chrono::steady_clock::now() + config_.shutdown_timeout;
    auto live = registry_.all();
    for (auto& g : live) {
        if (mode == Shutdown::hand_over) {
            if (auto* stream = g->stream()) stream->cancel();
            g->suspend();
            continue;
        }
        auto terminal =
            failure("interrupted", "the server stopped while this message was generating");
        terminal.finish_reason = "interrupted";
        driver_.end(g, std::move(terminal));
    }
    std::size_t unfinished = 0;
    for (auto& g : live) {
        bool done = mode == Shutdown::hand_over ? co_await wait_settled(g, deadline)
                                                : co_await wait_ended(g, deadline);
        if (!done) ++unfinished;
    }
    if (unfinished > 0)
        log::warn("shutdown: {} of {} live answers not fully stored within {} ms; their "
                  "unstored text was never shown to anyone, and the next start goes on from "
                  "what is stored",
                  unfinished, live.size(), config_.shutdown_timeout.count());
    co_await leases_.stop_renewing();
    if (mode == Shutdown::hand_over) {
        // Their leases expire now: another node (or the next start) takes
        // them over at its next scan, not a lease later.
        auto released = co_await store_.release_leases(config_.lease.node, {});
        if (!released)
            log::warn("shutdown: could not release this node's leases ({}); they expire in {} ms",
                      released.error().message(), config_.lease.ttl.count());
        else if (!live.empty())
            log::info("shutdown: {} live answers stored and handed over", live.size());
    }
    persister_.stop();
}

}  // namespace chatd::engine
