#pragma once
// What a user does with their chats: the operations behind the API, each with
// the policy that guards it (the models a session may name, how many sessions
// a user keeps, the generation limits, one answer per session at a time,
// cursors that belong to what they resume). An HTTP handler parses its
// request, calls one of these, and maps the result. Every call acts for one
// user and finds nothing of another's: a foreign id is not_found, exactly as
// a missing one (I6). Runs on the I/O thread.
#include "engine/cursor.hpp"
#include "engine/engine.hpp"
#include "store/chat_store.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::engine {

struct ConversationPolicy {
    std::string default_model = "simulated";
    // Models a session may name; empty: only default_model. The operator's
    // key pays for every token, so a client cannot pick another.
    std::vector<std::string> allowed_models;
    std::size_t max_sessions_per_user = 10000;
};

// A session as a request describes it: what is set; the rest takes the
// defaults (create) or stays as it is (update).
using SessionDraft = store::SessionPatch;

// One user message to answer.
struct Prompt {
    std::string content;
    std::optional<std::string> idempotency_key;
    std::string request_id;  // the request sending it, for its answer's log lines
};

// Whether a session has an answer generating, and when it last changed.
struct SessionActivity {
    std::optional<MessageId> generating;
    // Both none for a session without messages.
    std::optional<MessageId> newest;  // the generating one, when one is
    std::optional<UnixMillis> last_updated;
};

// Where a message's stream starts, and the message as it was read to check
// the start.
struct StreamStart {
    Cursor at;
    store::Message message;
};

class Conversations {
public:
    Conversations(Engine& engine, store::ChatStore& store, ConversationPolicy policy);

    bool model_allowed(std::string_view model) const;

    // model_not_allowed, too_many_sessions, or the new session.
    [[nodiscard]] net::awaitable<Result<store::Session>> create_session(UserId user,
                                                                        SessionDraft draft);
    // A client's chat (the AI SDK's chat id): the user's session of that id
    // (a chatd session id, or a chat id the client chose). With `create`,
    // a chat id the user has no session for makes one, titled `title`, with
    // the defaults; otherwise not_found. Another user's session is never
    // found: their chat of the same id is another session.
    [[nodiscard]] net::awaitable<Result<store::Session>> chat(UserId user, std::string chat_id,
                                                              bool create, std::string title = {});
    // Changes what `draft` sets: title, system prompt, model (model_not_allowed
    // outside the policy). The next answer uses the new model and prompt.
    [[nodiscard]] net::awaitable<Result<store::Session>> update_session(UserId user,
                                                                        SessionId session,
                                                                        SessionDraft draft);
    // Cancels the session's live answer (its end committed), then deletes it
    // with its messages.
    [[nodiscard]] net::awaitable<Result<void>> delete_session(UserId user, SessionId session);

    // Stores the turn (user message and empty assistant message) and starts
    // its answer. A place for the generation is reserved before anything is
    // stored, so the limits hold however many sends race and a refused send
    // stores nothing. When the session already has an answer generating, the
    // outcome names it instead of a turn. A send with the Idempotency-Key of
    // an earlier one returns that turn and starts nothing, even when the
    // limits or the allowed models would refuse a new send now.
    [[nodiscard]] net::awaitable<Result<store::TurnOutcome>> send(UserId user, SessionId session,
                                                                  Prompt prompt);

    [[nodiscard]] net::awaitable<Result<SessionActivity>> activity(UserId user, SessionId session);

    // Cancels a generating message and returns it once its end is committed
    // (I4); not_generating for a message that is not generating.
    [[nodiscard]] net::awaitable<Result<store::Message>> cancel(UserId user, MessageId id);

    // The live message (from the engine's memory) or the stored one.
    [[nodiscard]] net::awaitable<Result<store::Message>> find_message(UserId user, MessageId id);

    // Where a stream of message `id` starts: its beginning, or `cursor` when
    // the cursor is of that message and within its committed content and
    // reasoning; with the message as read to check it, which the stream's
    // feed starts from (one store read for a stored message, not two).
    // not_found for the message, or a cursor of a missing or foreign one;
    // cursor_mismatch for a cursor of another of the user's messages;
    // cursor_out_of_range past the committed content.
    [[nodiscard]] net::awaitable<Result<StreamStart>> stream_start(UserId user, MessageId id,
                                                                   std::optional<Cursor> cursor);
    // Where a stream of `session` starts: the session is the user's, and a
    // cursor (if any) is of one of its messages, within its content. Without
    // one, it starts with the message generating now, on any node, and goes
    // on after the session's newest message: read before the stream's head
    // goes out, so that every send accepted after it is carried (its
    // message's id is newer: a session's turns are one at a time).
    [[nodiscard]] net::awaitable<Result<SessionStreamStart>> session_stream_start(
        UserId user, SessionId session, std::optional<Cursor> cursor);

private:
    Engine& engine_;
    store::ChatStore& store_;
    ConversationPolicy policy_;
    // What a turn may start with (policy_'s rule as a list), shared by every send.
    store::ModelList allowed_models_;
};

}  // namespace chatd::engine
