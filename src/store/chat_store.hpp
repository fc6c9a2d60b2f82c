#pragma once
// ChatStore: the seam every backend (SQLite now, PostgreSQL next) and every
// fault-injecting decorator implements. All calls are coroutines that may be
// awaited from the I/O thread; a backend never blocks the caller's executor.
// Every query is scoped by user: another user's id is not_found (I6).
#include "core/error.hpp"
#include "store/model.hpp"

#include <boost/asio/awaitable.hpp>

namespace chatd::store {

namespace net = boost::asio;

class ChatStore {
public:
    virtual ~ChatStore() = default;

    virtual net::awaitable<Result<Session>> create_session(UserId user, NewSession s) = 0;
    virtual net::awaitable<Result<Session>> get_session(UserId user, SessionId id) = 0;
    // Newest first; `before` is the last id of the previous page.
    virtual net::awaitable<Result<SessionPage>> list_sessions(UserId user, std::size_t limit,
                                                              std::optional<SessionId> before) = 0;
    // Changes what `patch` sets (last_updated too); the session as it is now.
    virtual net::awaitable<Result<Session>> update_session(UserId user, SessionId id,
                                                           SessionPatch patch) = 0;
    virtual net::awaitable<Result<void>> delete_session(UserId user, SessionId id) = 0;

    // Whole history, oldest first, with committed content.
    virtual net::awaitable<Result<std::vector<Message>>> list_messages(UserId user,
                                                                       SessionId id) = 0;
    // The newest `limit` messages before `before` (or the newest at all), as
    // a page oldest first.
    virtual net::awaitable<Result<MessagePage>> list_messages_page(UserId user, SessionId id,
                                                                   std::optional<MessageId> before,
                                                                   std::size_t limit) = 0;
    virtual net::awaitable<Result<Message>> get_message(UserId user, MessageId id) = 0;
    // The first assistant message of the session created after `after` (or the
    // first at all), oldest first; nullopt when there is none yet.
    virtual net::awaitable<Result<std::optional<Message>>> next_assistant_message(
        UserId user, SessionId session, std::optional<MessageId> after) = 0;
    // Messages changed after `since`, in id order; with `since.limit`, the
    // oldest changes first and `next_seq` where the rest begin.
    virtual net::awaitable<Result<Changes>> changed_since(UserId user, SessionId session,
                                                          Since since) = 0;

    // Creates a user turn, or replays the one an earlier send with the same
    // idempotency key made. Errors: not_found (session), idempotency_key_reused.
    // When a message of the session is generating, nothing is written and the
    // outcome names it in `active_message`: the database itself holds one
    // generating message per session (a partial unique index), so this holds
    // for several writers too. With `replay_only`, an empty
    // outcome when the key made nothing yet.
    virtual net::awaitable<Result<TurnOutcome>> begin_turn(UserId user, SessionId session,
                                                           NewTurn turn) = 0;

    // Group commit: all writes in one transaction.
    virtual net::awaitable<Result<void>> commit(Batch batch) = 0;

    // Start-up: the messages a dead process left `generating`, oldest first,
    // with their committed chunks as content (to be continued).
    virtual net::awaitable<Result<std::vector<OwnedMessage>>> list_generating() = 0;

    // Start-up: every message left `generating` by a dead process becomes
    // `error`/`interrupted` with its committed chunks as content (I5).
    virtual net::awaitable<Result<std::size_t>> close_interrupted() = 0;

    // Store reachable and writable (`/readyz`).
    virtual net::awaitable<Result<void>> ping() = 0;
};

}  // namespace chatd::store
