#include "engine/driver.hpp"

#include "core/log.hpp"
#include "core/utf8.hpp"
#include "llm/prompt.hpp"

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

// Usage over every attempt of one answer (what the vendor bills).
void add_usage(std::optional<store::Usage>& total, const std::optional<llm::Usage>& more) {
    if (!more) return;
    if (!total) total = store::Usage{};
    total->input_tokens += more->input_tokens;
    total->output_tokens += more->output_tokens;
}

}  // namespace

store::Terminal failure(std::string code, std::string message) {
    return store::Terminal{.status = store::MessageStatus::error,
                           .error = store::MessageError{std::move(code), std::move(message)},
                           .finish_reason = "error"};
}

Driver::Driver(net::any_io_executor ex, store::ChatStore& store, llm::Provider& provider,
               Persister& persister, const EngineConfig& config)
    : ex_(std::move(ex)), store_(store), provider_(provider), persister_(persister), config_(config) {}

void Driver::end(const std::shared_ptr<Generation>& g, store::Terminal terminal) {
    if (g->finishing()) return;
    log::info(g->log_context(), "message {} ends {} after {} bytes", g->id().value,
              store::to_string(terminal.status), g->produced_bytes());
    if (config_.metrics) {
        auto usage = terminal.usage.value_or(store::Usage{});
        config_.metrics->generation_ended(store::to_string(terminal.status),
                                          terminal.error ? terminal.error->code : "",
                                          usage.input_tokens, usage.output_tokens);
    }
    if (auto* stream = g->stream()) stream->cancel();
    g->finish(std::move(terminal));
    persister_.mark_dirty(g);
}

net::awaitable<Result<llm::GenerationRequest>> Driver::build_request(const Generation& g) {
    std::string system_prompt;
    if (g.system_prompt()) {
        system_prompt = *g.system_prompt();
    } else {
        auto session = co_await store_.get_session(g.user(), g.session_id());
        if (!session) co_return session.error();
        system_prompt = std::move(session->system_prompt);
    }
    auto history = co_await store_.list_messages(g.user(), g.session_id());
    if (!history) co_return history.error();
    llm::GenerationRequest request{.model = g.message().model, .request_id = g.request_id()};
    if (!system_prompt.empty())
        request.prompt.push_back({llm::PromptRole::system, std::move(system_prompt)});
    for (auto& m : *history) {
        if (m.id == g.id()) break;  // history is what came before this answer
        if (m.content.empty()) continue;
        request.prompt.push_back({prompt_role(m.role), std::move(m.content)});
    }
    llm::fit_prompt(request.prompt, config_.prompt_budget_bytes);
    request.partial = g.committed();
    request.partial_reasoning = g.message().reasoning;
    co_return request;
}

net::awaitable<void> Driver::drive(std::shared_ptr<Generation> g) {
    log::info(g->log_context(), "message {} generating (model {}, session {})", g->id().value,
              g->message().model, g->session_id().value);
    const auto started = std::chrono::steady_clock::now();
    auto committed = std::make_shared<Wakeup>(ex_);
    g->subscribe(committed);
    std::optional<store::Usage> usage;
    for (int continuation = 0;; ++continuation) {
        auto request = co_await build_request(*g);
        if (!request) {
            end(g, failure("store_failure", "could not read the conversation history"));
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
        auto last = co_await relay(g, *stream, *committed, started);
        if (!last) co_return;
        add_usage(usage, last->usage);
        if (last->kind == llm::StreamEvent::Kind::done) {
            end(g, store::Terminal{.status = store::MessageStatus::completed,
                                        .finish_reason = last->finish_reason,
                                        .usage = usage});
            co_return;
        }
        // Before the first token the provider has already retried; after it,
        // a partial answer is continued where the provider can.
        // (Reasoning alone is progress too: the next attempt gets it as
        // partial_reasoning, which a vendor's model cannot continue, so it
        // thinks afresh and that is appended to what is stored.)
        bool continuable = last->transient &&
                           g->produced_bytes() + g->produced_reasoning_bytes() > 0 &&
                           provider_.can_continue() &&
                           continuation < config_.continue_attempts;
        if (!continuable) {
            log::warn(g->log_context(), "message {} failed after {} bytes: {} ({})", g->id().value,
                      g->produced_bytes(), last->error_code, last->error_message);
            auto terminal = failure(std::move(last->error_code), std::move(last->error_message));
            terminal.usage = usage;
            end(g, std::move(terminal));
            co_return;
        }
        log::warn(g->log_context(),
                  "message {}: {} ({}); continuing its partial answer (continuation {} of {})",
                  g->id().value, last->error_code, last->error_message, continuation + 1,
                  config_.continue_attempts);
        // The continuation starts from what the store holds, so it is exactly
        // what any client has seen or will see (I1).
        while (!g->settled() && !g->finishing()) co_await committed->wait();
        if (g->finishing()) co_return;
    }
}

net::awaitable<std::optional<llm::StreamEvent>> Driver::relay(
    const std::shared_ptr<Generation>& g, llm::ProviderStream& stream, Wakeup& committed,
    std::chrono::steady_clock::time_point started) {
    for (;;) {
        auto event = co_await stream.next();
        if (g->finishing()) co_return std::nullopt;  // cancelled or shut down
        const bool reasoning = event.kind == llm::StreamEvent::Kind::reasoning;
        if (event.kind != llm::StreamEvent::Kind::text && !reasoning) co_return event;
        const auto produced = g->produced_bytes() + g->produced_reasoning_bytes();
        if (config_.metrics && produced == 0 && !event.text.empty())
            config_.metrics->first_token(std::chrono::steady_clock::now() - started);
        auto append = [&](std::string text) {
            if (reasoning)
                g->append_reasoning(std::move(text));
            else
                g->append(std::move(text));
        };
        // A runaway upstream ends at the answer limit (its reasoning
        // included), as a model at its token limit does (the stream is
        // closed when it goes out of scope).
        if (produced + event.text.size() > config_.max_answer_bytes) {
            event.text.resize(utf8_floor(event.text, config_.max_answer_bytes - produced));
            append(std::move(event.text));
            persister_.mark_dirty(g);
            log::warn(g->log_context(), "message {}: answer reached --max-answer-bytes; ended as length",
                      g->id().value);
            co_return llm::StreamEvent{.kind = llm::StreamEvent::Kind::done,
                                       .finish_reason = "length"};
        }
        append(std::move(event.text));
        persister_.mark_dirty(g);
        // Backpressure: while the store lags, stop reading the provider
        // rather than hold unbounded uncommitted text (I7); text inside a
        // commit in flight counts as much as text waiting for one.
        while (g->uncommitted_bytes() > kMaxPendingBytes && !g->finishing())
            co_await committed.wait();
    }
}

}  // namespace chatd::engine
