#pragma once
// ChatStore on PostgreSQL 15, through libpq's non-blocking API on the I/O
// thread (PgConnection) and a bounded pool of connections (PgPool). Every
// call is one or two pipelined round trips inside one transaction, and has a
// deadline: past it the call fails with store_unavailable and its connection
// is dropped. All calls must be made from the executor the store was opened
// on (the pool is not thread-safe).
//
// Several stores (processes, nodes) may share one database; the contract in
// chat_store.hpp holds across them:
// - chunk writes lock their message rows (SELECT ... FOR UPDATE) and are
//   planned against what is stored (plan_write), so concurrent or retried
//   commits store each byte once;
// - change_seq is the id of the transaction that made the change
//   (pg_current_xact_id), and a poll's next_seq is the xmin of its snapshot:
//   every transaction that had not committed when the poll read has an id
//   at or above it, so a poll from next_seq (inclusive) sees it, however
//   out of order concurrent transactions commit (docs/polling.md).
#include "store/chat_store.hpp"
#include "store/postgres/pg_pool.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace chatd::store::postgres {

struct PgStoreConfig {
    std::string conninfo;  // a postgres:// URI, key=value pairs, or "" (PG* variables)
    std::size_t pool_size = 8;
    // Each call's deadline, from when it is made (waiting for a connection
    // included).
    std::chrono::milliseconds timeout{5000};
};

class PgStore final : public ChatStore {
public:
    // Connects and applies the migrations under an advisory lock, so stores
    // that open one database together migrate it once. Throws on failure
    // (start-up, before the server listens).
    static net::awaitable<std::unique_ptr<PgStore>> open(net::any_io_executor ex,
                                                         PgStoreConfig config);

    net::awaitable<Result<Session>> create_session(UserId user, NewSession s) override;
    net::awaitable<Result<Session>> get_session(UserId user, SessionId id) override;
    net::awaitable<Result<Session>> find_chat(UserId user, std::string chat_id) override;
    net::awaitable<Result<SessionPage>> list_sessions(UserId user, std::size_t limit,
                                                      std::optional<SessionId> before) override;
    net::awaitable<Result<Session>> update_session(UserId user, SessionId id,
                                                   SessionPatch patch) override;
    net::awaitable<Result<void>> delete_session(UserId user, SessionId id) override;
    net::awaitable<Result<std::vector<Message>>> list_messages(UserId user, SessionId id) override;
    net::awaitable<Result<MessagePage>> list_messages_page(UserId user, SessionId id,
                                                           std::optional<MessageId> before,
                                                           std::size_t limit) override;
    net::awaitable<Result<Message>> get_message(UserId user, MessageId id) override;
    net::awaitable<Result<std::optional<Message>>> next_assistant_message(
        UserId user, SessionId session, std::optional<MessageId> after) override;
    net::awaitable<Result<Changes>> changed_since(UserId user, SessionId session,
                                                  Since since) override;
    net::awaitable<Result<TurnOutcome>> begin_turn(UserId user, SessionId session,
                                                   NewTurn turn) override;
    net::awaitable<Result<CommitResult>> commit(const Batch& batch) override;
    net::awaitable<Result<std::vector<HeldLease>>> renew_leases(LeaseTerms lease) override;
    net::awaitable<Result<Claims>> claim_orphans(LeaseTerms lease, ClaimLimits limits) override;
    net::awaitable<Result<void>> request_cancel(UserId user, MessageId id) override;
    net::awaitable<Result<std::vector<MessageId>>> cancel_requests(std::string node) override;
    net::awaitable<Result<std::size_t>> release_leases(std::string node,
                                                       std::vector<MessageId> only) override;
    net::awaitable<Result<std::size_t>> release_stale_leases(std::string node) override;
    std::unique_ptr<ChangeListener> listen(net::any_io_executor ex) override;
    net::awaitable<Result<std::vector<Message>>> read_tails(std::vector<ReadPosition> at) override;
    net::awaitable<Result<void>> ping() override;

    PgPoolStats pool_stats() const { return pool_.stats(); }

private:
    PgStore(net::any_io_executor ex, PgStoreConfig config);

    // Runs `queries` in one round trip on a pooled connection, by the call's
    // deadline. A query's own failure is in its PgResult; the error is the
    // connection's (store_unavailable).
    net::awaitable<Result<std::vector<PgResult>>> run(std::span<const PgQuery> queries,
                                                      PgConnection::Clock::time_point deadline);
    PgConnection::Clock::time_point deadline() const;
    // One attempt of begin_turn; nullopt when it must be made again (it lost
    // a race another transaction's commit decided).
    net::awaitable<Result<std::optional<TurnOutcome>>> try_begin_turn(const UserId& user,
                                                                      const SessionId& session,
                                                                      const NewTurn& turn);
    // One transaction for `writes` (indices into batch.writes). Sets
    // `statement_failed` when the server refused a write's statement (the
    // transaction rolled back; the caller retries each write alone).
    net::awaitable<Result<std::vector<WriteResult>>> commit_writes(
        const Batch& batch, std::span<const std::size_t> writes, bool& statement_failed);
    net::awaitable<void> migrate();

    PgStoreConfig config_;
    PgPool pool_;
};

}  // namespace chatd::store::postgres
