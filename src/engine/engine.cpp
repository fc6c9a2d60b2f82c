#include "engine/engine.hpp"

#include "core/log.hpp"
#include "core/utf8.hpp"
#include "llm/prompt.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>

namespace chatd::engine {
namespace {

constexpr std::size_t kMaxPendingBytes = 1024 * 1024;

llm::PromptRole prompt_role(store::Role r) {
    switch (r) {
        case store::Role::system:
            return llm::PromptRole::system;
        case store::Role::assistant:
            return llm::PromptRole::assistant;
        case store::Role::user:
            break;
    }
    return llm::PromptRole::user;
}

store::Terminal failure(std::string code, std::string message) {
    return store::Terminal{.status = store::MessageStatus::error,
                           .error = store::MessageError{std::move(code), std::move(message)},
                           .finish_reason = "error"};
}

// Usage over every attempt of one answer (what the vendor bills).
void add_usage(std::optional<store::Usage>& total, const std::optional<llm::Usage>& more) {
    if (!more) return;
    if (!total) total = store::Usage{};
    total->input_tokens += more->input_tokens;
    total->output_tokens += more->output_tokens;
}

}  // namespace

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
      slots_(config.limits),
      lease_tick_(ex),
      orphan_tick_(ex),
      cancel_tick_(ex) {}

net::awaitable<void> Engine::run() {
    co_await persister_.run();
}

Result<GenerationSlots::Slot> Engine::reserve(const UserId& user) {
    if (shutting_down_) return Error::shutting_down;
    return slots_.reserve(user);
}

std::shared_ptr<Generation> Engine::start(const UserId& user, const store::Turn& turn,
                                          GenerationSlots::Slot slot) {
    return launch(user, turn.assistant_message, std::move(slot));
}

net::awaitable<void> Engine::keep_leases() {
    const auto every = config_.lease.ttl / 3;
    while (!stopped_) {
        co_await lease_tick_.wait_until(std::chrono::steady_clock::now() + every);
        if (stopped_) break;
        // Judged: the generations live before the renewal was asked (a turn
        // stored after it is not among its answers yet).
        auto before = live_;
        auto held = co_await store_.renew_leases(config_.lease);
        if (!held) {
            log::warn("could not renew this node's leases: {}", held.error().message());
            continue;
        }
        std::unordered_map<std::string_view, std::int64_t> epochs;
        for (const auto& h : *held) epochs.emplace(h.id.value, h.epoch);
        for (auto& [id, g] : before) {
            if (live(g->id()) != g || g->finishing()) continue;
            auto it = epochs.find(id);
            if (it != epochs.end() && it->second == g->epoch()) continue;
            log::warn("message {}: this node lost its lease (epoch {}); another node goes on",
                      id, g->epoch());
            lose(g);
        }
    }
}

net::awaitable<void> Engine::adopt_orphans() {
    const auto every = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      config_.lease.ttl / 4),
                                  std::chrono::milliseconds(50), std::chrono::milliseconds(1000));
    const bool continuing = config_.continue_orphans && provider_.can_continue();
    while (!shutting_down_) {
        auto limit = std::min(slots_.room(), config_.takeovers_per_scan);
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
                    launch(c.user, std::move(c.message), slots_.adopt(c.user), c.epoch);
                }
            }
        }
        co_await orphan_tick_.wait_until(std::chrono::steady_clock::now() + every);
    }
}

net::awaitable<void> Engine::watch_cancels() {
    while (!shutting_down_) {
        co_await cancel_tick_.wait_until(std::chrono::steady_clock::now() + config_.cancel_poll);
        if (shutting_down_) break;
        auto requested = co_await store_.cancel_requests(config_.lease.node);
        if (!requested) continue;  // the store's trouble shows in commits too
        for (const auto& id : *requested) {
            auto g = live(id);
            if (!g || g->finishing()) continue;  // not started here yet, or ending
            log::info("message {}: cancelled on another node", id.value);
            end_with(g, store::Terminal{.status = store::MessageStatus::cancelled,
                                        .finish_reason = "cancelled"});
        }
    }
}

std::shared_ptr<Generation> Engine::launch(const UserId& user, store::Message message,
                                           GenerationSlots::Slot slot, std::int64_t epoch) {
    auto g = std::make_shared<Generation>(std::move(message), user, std::move(slot), epoch);
    if (shutting_down_) {
        // Stored while the shutdown began: it stays generating, for another
        // node or the next start to continue or close (I5).
        log::info("message {} arrived during shutdown; left for the next start", g->id().value);
        g->suspend();
        return g;
    }
    live_[g->id().value] = g;
    by_session_[g->session_id().value] = g;
    net::co_spawn(ex_, drive(g), [this, g](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error("generation {} crashed: {}", g->id().value, ex.what());
        }
        // Its message must not stay generating (and its session blocked).
        end_with(g, failure("internal_error", "the server failed while generating this answer"));
    });
    return g;
}

std::shared_ptr<Generation> Engine::live(const MessageId& id) const {
    auto it = live_.find(id.value);
    return it == live_.end() ? nullptr : it->second;
}

std::shared_ptr<Generation> Engine::find(const UserId& user, const MessageId& id) const {
    auto g = live(id);
    return g && g->user() == user ? g : nullptr;
}

std::shared_ptr<Generation> Engine::active_in(const UserId& user, const SessionId& session) const {
    auto it = by_session_.find(session.value);
    if (it == by_session_.end() || it->second->user() != user) return nullptr;
    return it->second;
}


net::awaitable<Result<llm::GenerationRequest>> Engine::build_request(const Generation& g) {
    auto session = co_await store_.get_session(g.user(), g.session_id());
    if (!session) co_return session.error();
    auto history = co_await store_.list_messages(g.user(), g.session_id());
    if (!history) co_return history.error();
    llm::GenerationRequest request{.model = g.message().model};
    if (!session->system_prompt.empty())
        request.prompt.push_back({llm::PromptRole::system, session->system_prompt});
    for (auto& m : *history) {
        if (m.id == g.id()) break;  // history is what came before this answer
        if (m.content.empty()) continue;
        request.prompt.push_back({prompt_role(m.role), std::move(m.content)});
    }
    llm::fit_prompt(request.prompt, config_.prompt_budget_bytes);
    request.partial = g.committed();
    co_return request;
}

net::awaitable<void> Engine::drive(std::shared_ptr<Generation> g) {
    auto committed = std::make_shared<Wakeup>(ex_);
    g->subscribe(committed);
    std::optional<store::Usage> usage;
    for (int continuation = 0;; ++continuation) {
        auto request = co_await build_request(*g);
        if (!request) {
            end_with(g, failure("store_failure", "could not read the conversation history"));
            co_return;
        }
        if (g->finishing()) co_return;  // cancelled while the history loaded
        auto stream = provider_.start(ex_, std::move(*request));
        // Attached while this frame owns the stream, also when relay throws.
        struct Attached {
            Generation& g;
            ~Attached() { g.attach_stream(nullptr); }
        } attached{*g};
        g->attach_stream(stream.get());
        auto last = co_await relay(g, *stream, *committed);
        if (!last) co_return;
        add_usage(usage, last->usage);
        if (last->kind == llm::StreamEvent::Kind::done) {
            end_with(g, store::Terminal{.status = store::MessageStatus::completed,
                                        .finish_reason = last->finish_reason,
                                        .usage = usage});
            co_return;
        }
        // Before the first token the provider has already retried; after it,
        // a partial answer is continued where the provider can.
        bool continuable = last->transient && g->produced_bytes() > 0 && provider_.can_continue() &&
                           continuation < config_.continue_attempts;
        if (!continuable) {
            log::warn("message {} failed after {} bytes: {} ({})", g->id().value,
                      g->produced_bytes(), last->error_code, last->error_message);
            auto terminal = failure(std::move(last->error_code), std::move(last->error_message));
            terminal.usage = usage;
            end_with(g, std::move(terminal));
            co_return;
        }
        log::warn("message {}: {} ({}); continuing its partial answer (continuation {} of {})",
                  g->id().value, last->error_code, last->error_message, continuation + 1,
                  config_.continue_attempts);
        // The continuation starts from what the store holds, so it is exactly
        // what any client has seen or will see (I1).
        while (!g->settled() && !g->finishing()) co_await committed->wait();
        if (g->finishing()) co_return;
    }
}

net::awaitable<std::optional<llm::StreamEvent>> Engine::relay(const std::shared_ptr<Generation>& g,
                                                              llm::ProviderStream& stream,
                                                              Wakeup& committed) {
    for (;;) {
        auto event = co_await stream.next();
        if (g->finishing()) co_return std::nullopt;  // cancelled or shut down
        if (event.kind != llm::StreamEvent::Kind::text) co_return event;
        // A runaway upstream ends at the answer limit, as a model at its
        // token limit does (the stream is closed when it goes out of scope).
        if (g->produced_bytes() + event.text.size() > config_.max_answer_bytes) {
            event.text.resize(
                utf8_floor(event.text, config_.max_answer_bytes - g->produced_bytes()));
            g->append(std::move(event.text));
            persister_.mark_dirty(g);
            log::warn("message {}: answer reached --max-answer-bytes; ended as length",
                      g->id().value);
            co_return llm::StreamEvent{.kind = llm::StreamEvent::Kind::done,
                                       .finish_reason = "length"};
        }
        g->append(std::move(event.text));
        persister_.mark_dirty(g);
        // Backpressure: while the store lags, stop reading the provider
        // rather than hold unbounded uncommitted text (I7); text inside a
        // commit in flight counts as much as text waiting for one.
        while (g->uncommitted_bytes() > kMaxPendingBytes && !g->finishing())
            co_await committed.wait();
    }
}

void Engine::end_with(const std::shared_ptr<Generation>& g, store::Terminal terminal) {
    if (g->finishing()) return;
    if (auto* stream = g->stream()) stream->cancel();
    g->finish(std::move(terminal));
    persister_.mark_dirty(g);
}

void Engine::lose(const std::shared_ptr<Generation>& g) {
    if (g->moved()) return;
    if (auto* stream = g->stream()) stream->cancel();
    g->move_away();
    on_ended(g);
}

void Engine::on_ended(const std::shared_ptr<Generation>& g) {
    g->release_slot();
    live_.erase(g->id().value);
    if (auto it = by_session_.find(g->session_id().value);
        it != by_session_.end() && it->second == g)
        by_session_.erase(it);
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
    if (error == Error::store_failure && !w.text.empty()) {
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
    for (auto& [id, g] : live_) {
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
    end_with(g, store::Terminal{.status = store::MessageStatus::cancelled,
                                .finish_reason = "cancelled"});
    // The upstream is stopped already; only storing the end can lag.
    if (!co_await wait_ended(g, std::chrono::steady_clock::now() + config_.cancel_timeout))
        co_return Error::store_failure;
    if (g->message().status != store::MessageStatus::cancelled) co_return Error::not_generating;
    co_return g->message();
}

net::awaitable<void> Engine::shutdown(Shutdown mode) {
    shutting_down_ = true;
    orphan_tick_.notify();  // adopts no more
    cancel_tick_.notify();
    persister_.stop_pacing();
    const auto deadline = std::chrono::steady_clock::now() + config_.shutdown_timeout;
    auto live = live_;
    for (auto& [id, g] : live) {
        if (mode == Shutdown::hand_over) {
            if (auto* stream = g->stream()) stream->cancel();
            g->suspend();
            continue;
        }
        auto terminal =
            failure("interrupted", "the server stopped while this message was generating");
        terminal.finish_reason = "interrupted";
        end_with(g, std::move(terminal));
    }
    std::size_t unfinished = 0;
    for (auto& [id, g] : live) {
        bool done = mode == Shutdown::hand_over ? co_await wait_settled(g, deadline)
                                                : co_await wait_ended(g, deadline);
        if (!done) ++unfinished;
    }
    if (unfinished > 0)
        log::warn("shutdown: {} of {} live answers not fully stored within {} ms; their "
                  "unstored text was never shown to anyone, and the next start goes on from "
                  "what is stored",
                  unfinished, live.size(), config_.shutdown_timeout.count());
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
    stopped_ = true;
    lease_tick_.notify();
    persister_.stop();
}

}  // namespace chatd::engine
