#pragma once
// ChatStore: the seam every backend (SQLite, PostgreSQL) and every
// fault-injecting decorator implements. All calls are coroutines that may be
// awaited from the I/O thread; a backend never blocks the caller's executor.
// Every query is scoped by user: another user's id is not_found (I6).
//
// The contract holds for several writers: concurrent calls on one store, and
// several stores (processes, nodes) on one database.
// - Each call is atomic: its writes commit together or not at all. A call that
//   fails may still have committed when the failure came from a lost
//   connection (the outcome is unknown): every write is safe to retry.
// - Chunk writes are idempotent, keyed by (message id, byte offset); see
//   MessageWrite. Retrying a commit never duplicates or reorders text (I2).
// - One generating message per session is the database's own rule (a unique
//   index), so two writers cannot both start an answer in one session.
// - Reading a live message reads its own chunks only (an index on message and
//   offset), never another message's; a message's chunks go when it ends.
// - Change sequences (Message::change_seq, Changes::next_seq) order changes
//   for polling: a poll from an earlier answer's next_seq sees every change
//   committed after that answer, whatever order concurrent writers commit
//   in; it may see a message again (same or newer version).
#include "core/error.hpp"
#include "store/model.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>

namespace chatd::store {

namespace net = boost::asio;

// Notices of committed changes (ChangeNotice), as ChatStore::listen() hands
// them out; used from the executor it was made for.
class ChangeListener {
public:
    virtual ~ChangeListener() = default;
    // The notices that arrived since the last call, merged into one; waits
    // for one until `deadline` (then an empty notice). The first call's
    // notice is `everything`: what happened before listening is unknown. An
    // error means the notices stopped (the connection to the database is
    // lost): call again, later, to listen again; that call's notice is
    // `everything`.
    virtual net::awaitable<Result<ChangeNotice>> next(
        std::chrono::steady_clock::time_point deadline) = 0;
};

class ChatStore {
public:
    virtual ~ChatStore() = default;

    virtual net::awaitable<Result<Session>> create_session(UserId user, NewSession s) = 0;
    virtual net::awaitable<Result<Session>> get_session(UserId user, SessionId id) = 0;
    // The user's session with this client chat id (Session::chat_id).
    virtual net::awaitable<Result<Session>> find_chat(UserId user, std::string chat_id) = 0;
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

    // Group commit: the writes of many generations in one transaction. An
    // error means nothing is known to be stored (retry every write); a
    // value holds one result per write, so a write the store refuses fails
    // only its own generation, never the batch. The batch is read until the
    // commit completes (await it at once): the caller keeps its writes, to
    // make them visible or queue them again, without a copy.
    virtual net::awaitable<Result<CommitResult>> commit(const Batch& batch) = 0;

    // Leases (DESIGN §7; LeaseTerms in model.hpp). Lease times are the
    // store's clock (the database server's, for PostgreSQL), so nodes' clocks
    // need not agree.
    //
    // Renews every lease `lease.node` holds for lease.ttl from now, and
    // answers the leases it holds: one it held and is not among them was
    // taken over (or its message ended).
    virtual net::awaitable<Result<std::vector<HeldLease>>> renew_leases(LeaseTerms lease) = 0;
    // Takes over orphans, oldest first: generating messages whose lease has
    // expired. Each gets a new
    // epoch under `lease`, and one more recovery; one past
    // limits.max_recoveries ends error/interrupted with its content instead,
    // and one whose cancel was requested ends cancelled.
    // Concurrent callers never take the same message.
    virtual net::awaitable<Result<Claims>> claim_orphans(LeaseTerms lease, ClaimLimits limits) = 0;
    // A cancel of an answer this node may not run: marks `user`'s generating
    // message; its owner finds it in cancel_requests() and ends it
    // cancelled, or a node taking it over ends it so (claim_orphans).
    // not_found (unknown or foreign id), not_generating (ended, or a user
    // message).
    virtual net::awaitable<Result<void>> request_cancel(UserId user, MessageId id) = 0;
    // The generating messages `node` holds whose cancel was requested.
    virtual net::awaitable<Result<std::vector<MessageId>>> cancel_requests(std::string node) = 0;
    // Start-up, before this node takes any lease: the leases its id holds
    // are its previous process's, which is gone, and expire now (orphans to
    // take at the usual pace). On SQLite, whose data directory lock proves
    // any holder gone, every lease does.
    virtual net::awaitable<Result<std::size_t>> release_stale_leases(std::string node) = 0;
    // Hand-over: the leases `node` holds on `only` (empty: all of them)
    // expire now, for any node to take at once.
    virtual net::awaitable<Result<std::size_t>> release_leases(std::string node,
                                                               std::vector<MessageId> only) = 0;

    // Change notices (DESIGN §7), so readers of a message another node
    // writes need not poll: every commit, begin_turn, session deletion and
    // claim that changes a message or a session's messages announces it
    // once, when it commits. On PostgreSQL the notices come from every store
    // on the database (LISTEN/NOTIFY); on SQLite from this store only (its
    // data directory lock makes it the only writer).
    virtual std::unique_ptr<ChangeListener> listen(net::any_io_executor ex) = 0;
    // Each message of `at` as stored, its content only the bytes after the
    // position's offset (all of it that is committed; none when the offset is
    // at its end). Messages not found (their session was deleted) are left
    // out. Not scoped by user: for a node's followers, whose first read was.
    virtual net::awaitable<Result<std::vector<Message>>> read_tails(
        std::vector<ReadPosition> at) = 0;

    // Store reachable and writable (`/readyz`).
    virtual net::awaitable<Result<void>> ping() = 0;
};

}  // namespace chatd::store
