#include "engine/conversations.hpp"

#include "core/hash.hpp"

namespace chatd::engine {
namespace {

// Idempotency: a send is "the same" when it targets the same session with the
// same content.
std::string fingerprint(const SessionId& session, std::string_view content) {
    return session.value + ":" + std::to_string(content.size()) + ":" +
           std::to_string(fnv1a(content));
}

}  // namespace

Conversations::Conversations(Engine& engine, store::ChatStore& store, ConversationPolicy policy)
    : engine_(engine),
      store_(store),
      policy_(std::move(policy)),
      allowed_models_(std::make_shared<const std::vector<std::string>>(
          policy_.allowed_models.empty() ? std::vector<std::string>{policy_.default_model}
                                         : policy_.allowed_models)) {}

bool Conversations::model_allowed(std::string_view model) const {
    return store::allows(allowed_models_, model);
}

net::awaitable<Result<store::Session>> Conversations::create_session(UserId user,
                                                                     SessionDraft draft) {
    if (draft.model && !model_allowed(*draft.model)) co_return Error::model_not_allowed;
    // Arguments of co_awaited calls are named objects: GCC 12 destroys braced
    // temporaries inside co_await expressions at the wrong address.
    store::NewSession fields{.title = std::move(draft.title).value_or("New chat"),
                             .system_prompt = std::move(draft.system_prompt).value_or(""),
                             .model = std::move(draft.model).value_or(policy_.default_model),
                             .max_per_user = policy_.max_sessions_per_user};
    co_return co_await store_.create_session(std::move(user), std::move(fields));
}

net::awaitable<Result<store::Session>> Conversations::chat(UserId user, std::string chat_id,
                                                           bool create, std::string title) {
    if (is_well_formed_id(chat_id, "ses_")) {
        SessionId id{chat_id};
        auto found = co_await store_.get_session(user, id);
        if (found || found.error() != Error::not_found) co_return found;
    }
    if (!create) co_return co_await store_.find_chat(std::move(user), std::move(chat_id));
    store::NewSession fields{.title = title.empty() ? std::string("New chat") : std::move(title),
                             .model = policy_.default_model,
                             .max_per_user = policy_.max_sessions_per_user,
                             .chat_id = std::move(chat_id)};
    co_return co_await store_.create_session(std::move(user), std::move(fields));
}

net::awaitable<Result<store::Session>> Conversations::update_session(UserId user,
                                                                     SessionId session,
                                                                     SessionDraft draft) {
    if (draft.model && !model_allowed(*draft.model)) co_return Error::model_not_allowed;
    co_return co_await store_.update_session(std::move(user), std::move(session),
                                             std::move(draft));
}

net::awaitable<Result<void>> Conversations::delete_session(UserId user, SessionId session) {
    auto found = co_await store_.get_session(user, session);
    if (!found) co_return found.error();
    if (auto active = engine_.active_in(user, session))
        (void)co_await engine_.cancel(user, active->id());
    co_return co_await store_.delete_session(std::move(user), std::move(session));
}

net::awaitable<Result<store::TurnOutcome>> Conversations::send(UserId user, SessionId session,
                                                               Prompt prompt) {
    if (!engine_.accepting()) co_return Error::shutting_down;
    auto fp = fingerprint(session, prompt.content);
    // The turn reads the session itself (its model, checked against the
    // models allowed, and its system prompt for the answer): no read of its
    // own before it, and no change to the session between the two.
    store::NewTurn turn{.content = std::move(prompt.content),
                        .allowed_models = allowed_models_,
                        .idempotency_key = std::move(prompt.idempotency_key),
                        .request_fingerprint = std::move(fp),
                        .lease = engine_.lease()};
    auto slot = engine_.reserve(user);
    if (!slot) {
        // An unknown session and a model allowed once but not any more (the
        // operator pays) come before the limit; a retry of a send that was
        // made gets its turn back, whatever the limits and the models allowed
        // are now: it starts nothing.
        auto found = co_await store_.get_session(user, session);
        if (!found) co_return found.error();
        const boost::system::error_code refusal =
            model_allowed(found->model) ? slot.error() : make_error_code(Error::model_not_allowed);
        if (turn.idempotency_key) {
            turn.replay_only = true;
            auto replay = co_await store_.begin_turn(user, session, std::move(turn));
            if (replay && replay->turn) co_return replay;
        }
        co_return refusal;
    }
    auto outcome = co_await store_.begin_turn(user, session, std::move(turn));
    if (!outcome) co_return outcome.error();
    if (outcome->turn && !outcome->turn->replayed)
        engine_.start(user, *outcome->turn, std::move(*slot), std::move(prompt.request_id),
                      std::move(outcome->turn->system_prompt));
    co_return outcome;
}

net::awaitable<Result<SessionActivity>> Conversations::activity(UserId user, SessionId session) {
    SessionActivity activity;
    // A live answer of this user's session answers alone (the engine's lookup
    // is scoped by the user): no history read on the page-refresh path.
    if (auto g = engine_.active_in(user, session)) {
        activity.generating = activity.newest = g->id();
        activity.last_updated = g->message().last_updated;
        co_return activity;
    }
    // Another process's answer, or one this process has not resumed yet. A
    // session's generating message is its newest (no turn starts while one
    // generates), and older messages never change once ended: the newest
    // message alone answers, not the whole history.
    auto newest = co_await store_.list_messages_page(user, session, std::nullopt, 1);
    if (!newest) co_return newest.error();
    if (newest->messages.empty()) co_return activity;
    const auto& m = newest->messages.back();
    if (m.status == store::MessageStatus::generating) activity.generating = m.id;
    activity.newest = m.id;
    activity.last_updated = m.last_updated;
    co_return activity;
}

net::awaitable<Result<store::Message>> Conversations::cancel(UserId user, MessageId id) {
    if (!is_well_formed_id(id.value, "msg_")) co_return Error::not_found;
    co_return co_await engine_.cancel(std::move(user), std::move(id));
}

net::awaitable<Result<store::Message>> Conversations::find_message(UserId user, MessageId id) {
    if (!is_well_formed_id(id.value, "msg_")) co_return Error::not_found;
    if (auto g = engine_.find(user, id)) co_return g->message();
    co_return co_await store_.get_message(std::move(user), std::move(id));
}

net::awaitable<Result<StreamStart>> Conversations::stream_start(UserId user, MessageId id,
                                                                std::optional<Cursor> cursor) {
    auto m = co_await find_message(user, id);
    if (!m) co_return m.error();
    if (!cursor) co_return StreamStart{.at = Cursor{std::move(id)}, .message = std::move(*m)};
    if (cursor->message != id) {
        // A cursor of a missing or foreign message is as unknown as one.
        auto other = co_await find_message(user, cursor->message);
        if (!other) co_return other.error();
        co_return Error::cursor_mismatch;
    }
    if (auto ok = check_cursor(*cursor, m->content, m->reasoning); !ok) co_return ok.error();
    co_return StreamStart{.at = std::move(*cursor), .message = std::move(*m)};
}

net::awaitable<Result<SessionStreamStart>> Conversations::session_stream_start(
    UserId user, SessionId session, std::optional<Cursor> cursor) {
    if (cursor) {
        auto found = co_await store_.get_session(user, session);
        if (!found) co_return found.error();
        auto m = co_await find_message(user, cursor->message);
        if (!m) co_return m.error();
        if (m->session_id != session) co_return Error::cursor_mismatch;
        if (auto ok = check_cursor(*cursor, m->content, m->reasoning); !ok) co_return ok.error();
        co_return SessionStreamStart{.first = cursor, .after = cursor->message};
    }
    auto activity = co_await this->activity(std::move(user), std::move(session));
    if (!activity) co_return activity.error();
    SessionStreamStart start{.after = std::move(activity->newest)};
    if (activity->generating) start.first = Cursor{std::move(*activity->generating)};
    co_return start;
}

}  // namespace chatd::engine
