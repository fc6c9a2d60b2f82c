#pragma once
// ChatStore on SQLite in WAL mode. Two connections, each on its own thread:
// the writer (every write) and the reader (queries, each in one read
// snapshot). Several stores (processes) may open one file: SQLite serialises
// their write transactions, and each takes its change sequences inside its
// transaction, so change_seq increases in commit order. Callers
// await from any executor; no SQLite call ever runs on the caller's thread.
#include "core/hash.hpp"
#include "store/chat_store.hpp"
#include "store/local_notices.hpp"
#include "store/sqlite/live_texts.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace chatd::store::sqlite {

class Database;

enum class Durability {
    normal,  // survives a process crash (kill -9): WAL, synchronous=NORMAL
    full,    // also survives power loss: fsync on every commit
};

struct SqliteConfig {
    std::filesystem::path path;
    Durability durability = Durability::normal;
    // The chunk log's length (rows) past which the live messages that hold
    // its head back are compacted into their content column, so that it can
    // be cut: about 20 MB of log, a few seconds of 50,000 tokens/s.
    std::int64_t max_log_rows = 256 * 1024;
    // Checkpoints run on a thread of their own, so that no commit waits for
    // one (copying the log into the file, two fsyncs): asked for once the
    // write-ahead log holds `checkpoint_pages` pages (SQLite's default
    // wal_autocheckpoint). Should it fall behind, the writer checkpoints
    // itself at `writer_checkpoint_pages` (64 MiB of log), which bounds the log.
    int checkpoint_pages = 1000;
    int writer_checkpoint_pages = 16 * 1024;
};

class Database;

// Each user's number of sessions as the writer's transactions have left it:
// the per-user limit is checked at every creation, and counting walks every
// session of the user (10,000 of them: about 350 us of the writer's time).
// Writer thread only, inside its write transactions; forgotten whenever
// another connection has committed or a transaction of the writer failed,
// and when it holds too many users.
class SessionCounts {
public:
    std::int64_t get(Database& db, const std::string& user);
    // A committed (or, inside the transaction, made) change of the user's
    // sessions; a user not counted yet stays uncounted.
    void add(const std::string& user, std::int64_t n);
    void forget_all() { counts_.clear(); }

private:
    std::unordered_map<std::string, std::int64_t, TextHash, std::equal_to<>> counts_;
};

// The writer's state of the chunk log (live_texts.hpp), of which `live` is
// shared with the reader, and what else it knows of the database between its
// transactions (all of it forgotten when another connection writes).
struct ChunkLog {
    LiveTexts live;
    SessionCounts sessions;
    std::int64_t data_version = -1;  // PRAGMA data_version at the writer's last look
    UnixMillis collected_at = 0;     // the last collection of the log's head
    std::int64_t max_rows = 0;
};

class SqliteStore final : public ChatStore {
public:
    // Opens (creating if needed) and migrates the database. Throws on failure:
    // this runs at start-up, before the event loop.
    explicit SqliteStore(const SqliteConfig& config);
    ~SqliteStore() override;

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

private:
    template <class F>
    auto on_writer(F fn);
    template <class F>
    auto on_reader(F fn);

    // Writes that may share one transaction: those waiting when the first of
    // them reaches the writer run together, each in a savepoint, so that a
    // burst of sends costs a few commits instead of one each (GroupedWrite).
    struct GroupedWrite;
    template <class T>
    struct GroupedWriteOf;
    // `keep` says whether a result's writes stay; `committed`, if given, is
    // run on the writer thread with a kept result once its group committed.
    template <class T>
    net::awaitable<Result<T>> in_write_group(std::function<Result<T>(Database&)> body,
                                             std::function<bool(const Result<T>&)> keep,
                                             std::function<void(const T&)> committed = {});
    // Writer thread: takes the oldest waiting writes and settles each.
    void run_write_group();
    // Writer thread: one transaction for `writes`; throws on failure, with
    // `failed` the index of the write that threw (writes.size(): none did).
    void write_together(std::span<const std::shared_ptr<GroupedWrite>> writes,
                        std::size_t& failed);

    // Writer thread, after each commit (Database::on_wal_commit).
    void wal_grew(int pages);
    // Checkpointer thread.
    void checkpoint();

    std::unique_ptr<Database> writer_db_;
    std::unique_ptr<Database> reader_db_;
    std::unique_ptr<Database> checkpoint_db_;
    ChunkLog chunk_log_;
    int checkpoint_pages_ = 0;
    int writer_checkpoint_pages_ = 0;
    std::atomic<bool> checkpoint_asked_{false};
    boost::asio::thread_pool writer_{1};
    boost::asio::thread_pool reader_{1};
    boost::asio::thread_pool checkpointer_{1};
    LocalNotices notices_;
    std::mutex group_mutex_;
    std::vector<std::shared_ptr<GroupedWrite>> group_;  // waiting, oldest first
};

}  // namespace chatd::store::sqlite
