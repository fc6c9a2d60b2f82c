#include "store/postgres/pg_store.hpp"

#include "core/log.hpp"
#include "store/changes.hpp"
#include "store/postgres/pg_migrations.hpp"
#include "store/postgres/pg_notices.hpp"
#include "store/tails.hpp"
#include "store/write_plan.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>

namespace chatd::store::postgres {
namespace {

using Clock = PgConnection::Clock;

// The id of the transaction making a change (chat_store.hpp, change sequences).
#define CHATD_PG_XACT "pg_current_xact_id()::text::bigint"
// The server's clock in ms: lease times are the database's, whatever the
// nodes' clocks say.
#define CHATD_PG_NOW "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

const std::string kColumns =
    "id, session_id, role, content, status, is_streaming::int, created_at, last_updated, "
    "version, change_seq, error_code, error_message, model, finish_reason, input_tokens, "
    "output_tokens, reasoning";

std::string select_messages(std::string_view rest) {
    return "SELECT " + kColumns + " FROM ai_chat_messages " + std::string(rest);
}

const std::string kBeginRead = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const std::string kBegin = "BEGIN";
const std::string kCommit = "COMMIT";
const std::string kRollback = "ROLLBACK";
const std::string kSessionColumns =
    "id, user_id, title, system_prompt, model, created_at, last_updated, chat_id";
const std::string kFindSession = "SELECT 1 FROM ai_chat_sessions WHERE id = $1 AND user_id = $2";
// Chunks of live messages (ended ones have none), in the order to append them.
const std::string kChunkColumns =
    "SELECT c.message_id, c.change_seq, c.text, c.created_at, c.version "
    "FROM ai_chat_message_chunks c ";
const std::string kChunksOfMessage = kChunkColumns + "WHERE c.message_id = $1 ORDER BY c.byte_offset";
const std::string kChunksOfSession =
    kChunkColumns +
    "JOIN ai_chat_messages m ON m.id = c.message_id WHERE m.session_id = $1 "
    "ORDER BY c.message_id, c.byte_offset";

Message read_message(const PgResult& r, int row) {
    Message m;
    m.id = MessageId{std::string(r.text(row, 0))};
    m.session_id = SessionId{std::string(r.text(row, 1))};
    m.role = role_from_string(r.text(row, 2)).value_or(Role::user);
    m.content = r.text(row, 3);
    m.status = status_from_string(r.text(row, 4)).value_or(MessageStatus::error);
    m.is_streaming = r.integer(row, 5) != 0;
    m.created_at = r.integer(row, 6);
    m.last_updated = r.integer(row, 7);
    m.version = r.integer(row, 8);
    m.change_seq = r.integer(row, 9);
    if (!r.is_null(row, 10))
        m.error = MessageError{std::string(r.text(row, 10)), std::string(r.text(row, 11))};
    m.model = r.text(row, 12);
    if (!r.is_null(row, 13)) m.finish_reason = std::string(r.text(row, 13));
    if (!r.is_null(row, 14) || !r.is_null(row, 15))
        m.usage = Usage{r.is_null(row, 14) ? 0 : r.integer(row, 14),
                        r.is_null(row, 15) ? 0 : r.integer(row, 15)};
    m.reasoning = r.text(row, 16);
    return m;
}

std::vector<Message> read_messages(const PgResult& r) {
    std::vector<Message> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_message(r, i));
    return out;
}

// A live message's text is its content column followed by its chunks; the
// newest chunk carries its version, time and change (as in SQLite).
void attach_chunks(std::vector<Message>& messages, const PgResult& chunks) {
    std::map<std::string_view, Message*> live;
    for (auto& m : messages)
        if (m.status == MessageStatus::generating) live[m.id.value] = &m;
    for (int i = 0; i < chunks.rows(); ++i) {
        auto it = live.find(chunks.text(i, 0));
        if (it == live.end()) continue;
        Message& m = *it->second;
        m.change_seq = std::max(m.change_seq, chunks.integer(i, 1));
        m.content += chunks.text(i, 2);
        m.last_updated = chunks.integer(i, 3);
        m.version = std::max(m.version, chunks.integer(i, 4));
    }
}

Session read_session(const PgResult& r, int row) {
    return Session{.id = SessionId{std::string(r.text(row, 0))},
                   .user_id = UserId{std::string(r.text(row, 1))},
                   .title = std::string(r.text(row, 2)),
                   .system_prompt = std::string(r.text(row, 3)),
                   .model = std::string(r.text(row, 4)),
                   .created_at = r.integer(row, 5),
                   .last_updated = r.integer(row, 6),
                   .chat_id = r.is_null(row, 7) ? std::nullopt
                                                : std::optional(std::string(r.text(row, 7)))};
}

// True (after logging it) when a statement of `results` failed.
bool any_failed(const std::vector<PgResult>& results, std::string_view what) {
    for (const auto& r : results) {
        if (r.ok() || r.aborted()) continue;
        log::error("postgres {}: {} (SQLSTATE {})", what, r.error_message(), r.sqlstate());
        return true;
    }
    return false;
}

// A PostgreSQL array literal of ids (quoted, so any text is safe).
std::string text_array(const std::vector<std::string_view>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ',';
        out += '"';
        for (char c : values[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

std::optional<std::int64_t> opt(bool has, std::int64_t value) {
    return has ? std::optional(value) : std::nullopt;
}

constexpr std::string_view kUniqueViolation = "23505";
constexpr std::int64_t kMigrationLock = 0x63686174640001;  // "chatd" 1

// Announces a transaction's changes when it commits (ChatStore::listen).
const std::string kNotify = "SELECT pg_notify('" + std::string(kNoticeChannel) + "', $1)";

PgQuery notify(const ChangeNotice& notice) {
    return {kNotify, {encode_notice(notice)}};
}

// Listens on a connection of its own, outside the pool: the notices of
// every store on the database.
class PgListener final : public ChangeListener {
public:
    PgListener(net::any_io_executor ex, std::string conninfo, std::chrono::milliseconds timeout)
        : ex_(std::move(ex)), conninfo_(std::move(conninfo)), timeout_(timeout) {}

    net::awaitable<Result<ChangeNotice>> next(
        std::chrono::steady_clock::time_point deadline) override {
        static const std::string listen = "LISTEN " + std::string(kNoticeChannel);
        if (!conn_) {
            auto until = std::min(deadline, PgConnection::Clock::now() + timeout_);
            auto c = co_await PgConnection::connect(ex_, conninfo_, until);
            if (!c) co_return c.error();
            auto r = co_await (*c)->query(listen, until);
            if (!r) co_return r.error();
            if (!r->ok()) {
                log::warn("postgres refused to LISTEN: {}", r->error_message());
                co_return Error::store_unavailable;
            }
            conn_ = std::move(*c);
            co_return ChangeNotice{.everything = true};  // what came before is unknown
        }
        auto received = co_await conn_->notifications(deadline);
        if (!received) {
            conn_.reset();
            co_return received.error();
        }
        ChangeNotice notice;
        for (const auto& n : *received)
            if (n.channel == kNoticeChannel) decode_notice(n.payload, notice);
        co_return notice;
    }

private:
    net::any_io_executor ex_;
    std::string conninfo_;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<PgConnection> conn_;
};

}  // namespace

PgStore::PgStore(net::any_io_executor ex, PgStoreConfig config)
    : config_(std::move(config)),
      pool_(ex, PgPoolConfig{.conninfo = config_.conninfo,
                             .size = config_.pool_size,
                             .connect_timeout = config_.timeout,
                             // No call waits longer: a transaction left open
                             // past it is a paused or stuck process's, whose
                             // row locks would keep other nodes from its
                             // orphans.
                             .idle_in_transaction = config_.timeout}) {}

net::awaitable<std::unique_ptr<PgStore>> PgStore::open(net::any_io_executor ex,
                                                       PgStoreConfig config) {
    std::unique_ptr<PgStore> store(new PgStore(ex, std::move(config)));
    co_await store->migrate();
    co_return store;
}

Clock::time_point PgStore::deadline() const {
    return Clock::now() + config_.timeout;
}

net::awaitable<Result<std::vector<PgResult>>> PgStore::run(std::span<const PgQuery> queries,
                                                           Clock::time_point until) {
    auto lease = co_await pool_.acquire(until);
    if (!lease) co_return lease.error();
    co_return co_await (*lease)->run(queries, until);
}

// Stores that start together take turns (a session-level advisory lock) and
// read the schema version inside each migration's transaction.
net::awaitable<void> PgStore::migrate() {
    auto until = Clock::now() + std::chrono::seconds(60);
    auto lease = co_await pool_.acquire(until);
    if (!lease) throw std::runtime_error("cannot connect to PostgreSQL (see the log above)");
    auto& conn = **lease;
    auto must = [&](Result<std::vector<PgResult>> r, std::string_view what) {
        if (!r) throw std::runtime_error("PostgreSQL: " + std::string(what) + ": " + r.error().message());
        for (const auto& one : *r)
            if (!one.ok())
                throw std::runtime_error("PostgreSQL: " + std::string(what) + ": " +
                                         std::string(one.error_message()));
        return std::move(*r);
    };
    const std::string lock = "SELECT pg_advisory_lock($1)";
    const std::string unlock = "SELECT pg_advisory_unlock($1)";
    const std::string create =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "applied_at BIGINT NOT NULL)";
    const std::string current = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
    const std::string record = "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)";
    {
        PgQuery q[] = {{lock, {kMigrationLock}}};
        must(co_await conn.run(q, until), "taking the migration lock");
    }
    {
        PgQuery q[] = {{create}};
        must(co_await conn.run(q, until), "creating schema_migrations");
    }
    std::int64_t version = 0;
    for (const auto& m : pg_migrations()) {
        PgQuery read[] = {{kBegin}, {current}};
        auto r = must(co_await conn.run(read, until), "reading the schema version");
        version = r[1].integer(0, 0);
        if (version >= m.version) {
            PgQuery end[] = {{kRollback}};
            must(co_await conn.run(end, until), "ending a transaction");
            continue;
        }
        std::vector<PgQuery> apply;
        for (auto statement : m.statements) apply.push_back({statement});
        apply.push_back({record, {m.version, now_millis()}});
        apply.push_back({kCommit});
        must(co_await conn.run(apply, until), "migration " + std::to_string(m.version));
        version = m.version;
    }
    {
        PgQuery q[] = {{unlock, {kMigrationLock}}};
        must(co_await conn.run(q, until), "releasing the migration lock");
    }
    log::info("postgres store at schema version {}", version);
}

net::awaitable<Result<Session>> PgStore::create_session(UserId user, NewSession s) {
    static const std::string lock = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))";
    // A chat id already taken by this user inserts nothing (the unique
    // index), and the select answers that session instead.
    static const std::string insert =
        "INSERT INTO ai_chat_sessions (" + kSessionColumns +
        ") SELECT $1, $2, $3, $4, $5, $6, $6, $8 WHERE $7::bigint = 0 OR "
        "(SELECT COUNT(*) FROM ai_chat_sessions WHERE user_id = $2) < $7::bigint "
        "ON CONFLICT (user_id, chat_id) DO NOTHING";
    static const std::string select = "SELECT " + kSessionColumns +
                                      " FROM ai_chat_sessions WHERE user_id = $1 AND "
                                      "(id = $2 OR chat_id = $3)";
    auto id = new_session_id();
    PgParam chat_id = s.chat_id;
    // The count and the insert are one user's at a time (the lock), so
    // concurrent creates cannot pass the limit together.
    PgQuery q[] = {{kBegin},
                   {lock, {user.value}},
                   {insert,
                    {id.value, user.value, s.title, s.system_prompt, s.model, now_millis(),
                     static_cast<std::int64_t>(s.max_per_user), chat_id}},
                   {select, {user.value, id.value, chat_id}},
                   {kCommit}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "create_session")) co_return Error::store_failure;
    if ((*r)[3].rows() == 0) co_return Error::too_many_sessions;
    co_return read_session((*r)[3], 0);
}

net::awaitable<Result<Session>> PgStore::find_chat(UserId user, std::string chat_id) {
    static const std::string sql = "SELECT " + kSessionColumns +
                                   " FROM ai_chat_sessions WHERE user_id = $1 AND chat_id = $2";
    PgQuery q[] = {{sql, {user.value, chat_id}}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "find_chat")) co_return Error::store_failure;
    if ((*r)[0].rows() == 0) co_return Error::not_found;
    co_return read_session((*r)[0], 0);
}

net::awaitable<Result<Session>> PgStore::get_session(UserId user, SessionId id) {
    static const std::string sql =
        "SELECT " + kSessionColumns + " FROM ai_chat_sessions WHERE id = $1 AND user_id = $2";
    PgQuery q[] = {{sql, {id.value, user.value}}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "get_session")) co_return Error::store_failure;
    if ((*r)[0].rows() == 0) co_return Error::not_found;
    co_return read_session((*r)[0], 0);
}

net::awaitable<Result<SessionPage>> PgStore::list_sessions(UserId user, std::size_t limit,
                                                           std::optional<SessionId> before) {
    static const std::string sql = "SELECT " + kSessionColumns +
                                   " FROM ai_chat_sessions WHERE user_id = $1 AND "
                                   "($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";
    PgQuery q[] = {{sql,
                    {user.value, before ? PgParam(before->value) : PgParam(std::nullopt),
                     static_cast<std::int64_t>(limit + 1)}}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "list_sessions")) co_return Error::store_failure;
    SessionPage page;
    for (int i = 0; i < (*r)[0].rows(); ++i) page.sessions.push_back(read_session((*r)[0], i));
    if (page.sessions.size() > limit) {
        page.sessions.pop_back();
        page.next = page.sessions.back().id;
    }
    co_return page;
}

net::awaitable<Result<Session>> PgStore::update_session(UserId user, SessionId id,
                                                        SessionPatch patch) {
    static const std::string sql =
        "UPDATE ai_chat_sessions SET title = COALESCE($1, title), "
        "system_prompt = COALESCE($2, system_prompt), model = COALESCE($3, model), "
        "last_updated = $4 WHERE id = $5 AND user_id = $6 RETURNING " +
        kSessionColumns;
    PgQuery q[] = {{sql,
                    {patch.title, patch.system_prompt, patch.model, now_millis(), id.value,
                     user.value}}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "update_session")) co_return Error::store_failure;
    if ((*r)[0].rows() == 0) co_return Error::not_found;
    co_return read_session((*r)[0], 0);
}

net::awaitable<Result<void>> PgStore::delete_session(UserId user, SessionId id) {
    // Messages and their chunks go with the session (foreign keys).
    static const std::string sessions = "DELETE FROM ai_chat_sessions WHERE id = $1 AND user_id = $2";
    static const std::string keys =
        "DELETE FROM ai_chat_idempotency_keys WHERE session_id = $1 AND user_id = $2";
    PgQuery q[] = {{kBegin},
                   {sessions, {id.value, user.value}},
                   {keys, {id.value, user.value}},
                   notify(ChangeNotice{.sessions = {id}}),
                   {kCommit}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "delete_session")) co_return Error::store_failure;
    if ((*r)[1].affected() == 0) co_return Error::not_found;
    co_return Result<void>{};
}

net::awaitable<Result<std::vector<Message>>> PgStore::list_messages(UserId user, SessionId id) {
    static const std::string sql = select_messages("WHERE session_id = $1 ORDER BY id");
    PgQuery q[] = {{kBeginRead},
                   {kFindSession, {id.value, user.value}},
                   {sql, {id.value}},
                   {kChunksOfSession, {id.value}},
                   {kCommit}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "list_messages")) co_return Error::store_failure;
    if ((*r)[1].rows() == 0) co_return Error::not_found;
    auto messages = read_messages((*r)[2]);
    attach_chunks(messages, (*r)[3]);
    co_return messages;
}

net::awaitable<Result<MessagePage>> PgStore::list_messages_page(UserId user, SessionId id,
                                                                std::optional<MessageId> before,
                                                                std::size_t limit) {
    static const std::string sql = select_messages(
        "WHERE session_id = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3");
    PgQuery q[] = {{kBeginRead},
                   {kFindSession, {id.value, user.value}},
                   {sql,
                    {id.value, before ? PgParam(before->value) : PgParam(std::nullopt),
                     static_cast<std::int64_t>(limit + 1)}},
                   {kChunksOfSession, {id.value}},
                   {kCommit}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "list_messages_page")) co_return Error::store_failure;
    if ((*r)[1].rows() == 0) co_return Error::not_found;
    MessagePage page;
    page.messages = read_messages((*r)[2]);
    attach_chunks(page.messages, (*r)[3]);
    if (page.messages.size() > limit) {
        page.messages.pop_back();
        page.next = page.messages.back().id;
    }
    std::reverse(page.messages.begin(), page.messages.end());
    co_return page;
}

net::awaitable<Result<Message>> PgStore::get_message(UserId user, MessageId id) {
    static const std::string sql = select_messages("WHERE id = $1 AND user_id = $2");
    PgQuery q[] = {{kBeginRead},
                   {sql, {id.value, user.value}},
                   {kChunksOfMessage, {id.value}},
                   {kCommit}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "get_message")) co_return Error::store_failure;
    auto found = read_messages((*r)[1]);
    if (found.empty()) co_return Error::not_found;
    attach_chunks(found, (*r)[2]);
    co_return std::move(found.front());
}

net::awaitable<Result<std::optional<Message>>> PgStore::next_assistant_message(
    UserId user, SessionId session, std::optional<MessageId> after) {
    static const std::string sql = select_messages(
        "WHERE session_id = $1 AND role = 'assistant' AND id > $2 ORDER BY id LIMIT 1");
    PgQuery q[] = {{kBeginRead},
                   {kFindSession, {session.value, user.value}},
                   {sql, {session.value, after ? after->value : std::string()}},
                   {kChunksOfSession, {session.value}},
                   {kCommit}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "next_assistant_message")) co_return Error::store_failure;
    if ((*r)[1].rows() == 0) co_return Error::not_found;
    auto found = read_messages((*r)[2]);
    if (found.empty()) co_return std::optional<Message>();
    attach_chunks(found, (*r)[3]);
    co_return std::optional<Message>(std::move(found.front()));
}

// Change sequences are transaction ids, which concurrent transactions commit
// in any order. The answer's next_seq is the xmin of the snapshot it read: no
// transaction below it was still running, so everything below it that this
// poll did not return was returned before; the next poll reads from it,
// inclusive, and may see a message again (same or newer version).
net::awaitable<Result<Changes>> PgStore::changed_since(UserId user, SessionId session,
                                                       Since since) {
    static const std::string horizon =
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint";
    static const std::string ended = select_messages(
        "WHERE session_id = $1 AND status <> 'generating' AND change_seq >= $2 AND "
        "last_updated > $3 ORDER BY change_seq, id LIMIT $4");
    static const std::string live =
        select_messages("WHERE session_id = $1 AND status = 'generating'");
    const std::int64_t from = since.seq.value_or(std::numeric_limits<std::int64_t>::min());
    const std::int64_t after = since.time.value_or(std::numeric_limits<std::int64_t>::min());
    const std::int64_t limit = since.limit > 0 ? static_cast<std::int64_t>(since.limit) + 1
                                               : std::numeric_limits<std::int64_t>::max();
    PgQuery q[] = {{kBeginRead},
                   {horizon},
                   {kFindSession, {session.value, user.value}},
                   {ended, {session.value, from, after, limit}},
                   {live, {session.value}},
                   {kChunksOfSession, {session.value}},
                   {kCommit}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "changed_since")) co_return Error::store_failure;
    if ((*r)[2].rows() == 0) co_return Error::not_found;
    auto generating = read_messages((*r)[4]);
    attach_chunks(generating, (*r)[5]);
    co_return assemble_changes(read_messages((*r)[3]), std::move(generating), since,
                               PollRules{.resume = PollRules::Resume::at,
                                         .horizon = (*r)[1].integer(0, 0)});
}

net::awaitable<Result<TurnOutcome>> PgStore::begin_turn(UserId user, SessionId session,
                                                        NewTurn turn) {
    // An attempt is made again when it lost a race that another transaction
    // decided by committing: two sends with one new idempotency key (the
    // loser, run again, replays the winner's turn), or a send that collided
    // with the session's answer, which ended before its id could be read (the
    // session is free now). Each retry follows a commit that changed the
    // session, so a few attempts suffice.
    constexpr int kAttempts = 3;
    for (int attempt = 1;; ++attempt) {
        auto outcome = co_await try_begin_turn(user, session, turn);
        if (!outcome) co_return outcome.error();
        if (*outcome) co_return std::move(**outcome);
        if (attempt == kAttempts) {
            log::warn("begin_turn in session {} lost {} races in a row", session.value, attempt);
            co_return Error::store_failure;
        }
    }
}

net::awaitable<Result<std::optional<TurnOutcome>>> PgStore::try_begin_turn(
    const UserId& user, const SessionId& session, const NewTurn& turn) {
    static const std::string expire =
        "DELETE FROM ai_chat_idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3";
    static const std::string earlier =
        "SELECT fingerprint, user_message_id, assistant_message_id FROM ai_chat_idempotency_keys "
        "WHERE user_id = $1 AND key = $2 FOR UPDATE";
    static const std::string message = select_messages("WHERE id = $1 AND user_id = $2");
    // The assistant message first: the unique index on generating messages
    // refuses it when the session has one (ON CONFLICT ... DO NOTHING), and
    // then nothing else is written.
    // The session's model and system prompt are read here, under the
    // session's lock: the answer starts with what the session says at its
    // turn, and a model no longer allowed ($5, NULL: any) starts nothing.
    static const std::string insert =
        "WITH session AS (SELECT id, model, system_prompt FROM ai_chat_sessions WHERE id = $1 "
        "AND user_id = $2 FOR NO KEY UPDATE), "
        "allowed AS (SELECT id, model FROM session WHERE $5::text[] IS NULL OR "
        "model = ANY($5::text[])), "
        "assistant AS (INSERT INTO ai_chat_messages (id, session_id, user_id, role, content, "
        "status, is_streaming, created_at, last_updated, version, change_seq, model, owner_node, "
        "lease_expires_at, lease_epoch) "
        "SELECT $3, $1, $2, 'assistant', '', 'generating', true, $4, $4, 1, " CHATD_PG_XACT
        ", model, $8, " CHATD_PG_NOW
        " + $9::bigint, 1 FROM allowed "
        "ON CONFLICT (session_id) WHERE status = 'generating' DO NOTHING RETURNING id), "
        "question AS (INSERT INTO ai_chat_messages (id, session_id, user_id, role, content, "
        "status, is_streaming, created_at, last_updated, version, change_seq, model) "
        "SELECT $6, $1, $2, 'user', $7, 'completed', false, $4, $4, 1, " CHATD_PG_XACT
        ", '' FROM assistant RETURNING id) "
        "SELECT (SELECT COUNT(*) FROM session), (SELECT COUNT(*) FROM question), "
        "(SELECT COUNT(*) FROM allowed), (SELECT model FROM session), "
        "(SELECT system_prompt FROM session)";
    static const std::string touch =
        "UPDATE ai_chat_sessions SET last_updated = $1 WHERE id = $2 AND "
        "EXISTS (SELECT 1 FROM ai_chat_messages WHERE id = $3)";
    static const std::string record =
        "INSERT INTO ai_chat_idempotency_keys (user_id, key, fingerprint, session_id, "
        "user_message_id, assistant_message_id, created_at) SELECT $1, $2, $3, $4, $5, $6, $7 "
        "WHERE EXISTS (SELECT 1 FROM ai_chat_messages WHERE id = $6)";
    static const std::string active =
        "SELECT id FROM ai_chat_messages WHERE session_id = $1 AND status = 'generating'";

    const auto until = deadline();
    auto lease = co_await pool_.acquire(until);
    if (!lease) co_return lease.error();
    auto& conn = **lease;
    const auto now = now_millis();
    std::vector<PgQuery> q{{kBegin}};
    if (turn.idempotency_key) {
        PgQuery first[] = {{kBegin},
                           {expire, {user.value, *turn.idempotency_key, now - kIdempotencyRetentionMs}},
                           {earlier, {user.value, *turn.idempotency_key}}};
        auto r = co_await conn.run(first, until);
        if (!r) co_return r.error();
        if (any_failed(*r, "begin_turn")) co_return Error::store_failure;
        const auto& found = (*r)[2];
        if (found.rows() > 0) {
            if (found.text(0, 0) != turn.request_fingerprint) {
                PgQuery end[] = {{kRollback}};
                (void)co_await conn.run(end, until);
                co_return Error::idempotency_key_reused;
            }
            PgQuery replay[] = {{message, {std::string(found.text(0, 1)), user.value}},
                                {message, {std::string(found.text(0, 2)), user.value}},
                                {kCommit}};
            auto again = co_await conn.run(replay, until);
            if (!again) co_return again.error();
            if (any_failed(*again, "begin_turn replay")) co_return Error::store_failure;
            auto u = read_messages((*again)[0]);
            auto a = read_messages((*again)[1]);
            if (u.empty() || a.empty()) co_return Error::not_found;
            co_return TurnOutcome{.turn = Turn{.user_message = std::move(u.front()),
                                               .assistant_message =
                                                   as_first_created(std::move(a.front())),
                                               .replayed = true}};
        }
        if (turn.replay_only) {
            PgQuery end[] = {{kRollback}};
            auto r2 = co_await conn.run(end, until);
            if (!r2) co_return r2.error();
            co_return TurnOutcome{};
        }
        q.clear();  // the transaction is open already
    } else if (turn.replay_only) {
        co_return TurnOutcome{};
    }
    Message user_message{.id = new_message_id(),
                         .session_id = session,
                         .role = Role::user,
                         .content = turn.content,
                         .status = MessageStatus::completed,
                         .created_at = now,
                         .last_updated = now};
    Message assistant{.id = new_message_id(),
                      .session_id = session,
                      .role = Role::assistant,
                      .status = MessageStatus::generating,
                      .is_streaming = true,
                      .created_at = now,
                      .last_updated = now};
    PgParam models = std::nullopt;  // any
    if (const auto& allowed = turn.allowed_models)
        models = text_array(std::vector<std::string_view>(allowed->begin(), allowed->end()));
    const std::size_t at = q.size();
    q.push_back({insert,
                 {session.value, user.value, assistant.id.value, now, std::move(models),
                  user_message.id.value, turn.content, turn.lease.node,
                  static_cast<std::int64_t>(turn.lease.ttl.count())}});
    q.push_back({touch, {now, session.value, assistant.id.value}});
    if (turn.idempotency_key)
        q.push_back({record,
                     {user.value, *turn.idempotency_key, turn.request_fingerprint, session.value,
                      user_message.id.value, assistant.id.value, now}});
    const std::size_t active_at = q.size();
    q.push_back({active, {session.value}});
    q.push_back(notify(ChangeNotice{.sessions = {session}}));
    q.push_back({kCommit});
    auto r = co_await conn.run(q, until);
    if (!r) co_return r.error();
    for (const auto& one : *r)
        if (!one.ok() && one.sqlstate() == kUniqueViolation && turn.idempotency_key)
            co_return std::optional<TurnOutcome>();  // another send recorded the key first
    if (any_failed(*r, "begin_turn")) co_return Error::store_failure;
    const auto& inserted = (*r)[at];
    if (inserted.integer(0, 0) == 0) co_return Error::not_found;
    if (inserted.integer(0, 2) == 0) co_return Error::model_not_allowed;
    if (inserted.integer(0, 1) == 0) {
        const auto& live = (*r)[active_at];
        // The answer it collided with ended meanwhile: begin_turn makes it again.
        if (live.rows() == 0) co_return std::optional<TurnOutcome>();
        co_return TurnOutcome{.active_message = MessageId{std::string(live.text(0, 0))}};
    }
    // change_seq is not read back: poll reads it from the store, nothing else uses it.
    assistant.model = inserted.text(0, 3);
    co_return TurnOutcome{.turn = Turn{.user_message = std::move(user_message),
                                       .assistant_message = std::move(assistant),
                                       .system_prompt = std::string(inserted.text(0, 4))}};
}

net::awaitable<Result<CommitResult>> PgStore::commit(const Batch& batch) {
    CommitResult result;
    if (batch.writes.empty()) co_return result;
    std::vector<std::size_t> all(batch.writes.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    bool statement_failed = false;
    auto together = co_await commit_writes(batch, all, statement_failed);
    if (!together) co_return together.error();
    if (!statement_failed) {
        result.writes = std::move(*together);
        co_return result;
    }
    // A statement failed (a value the server refuses): the transaction rolled
    // back; each write is tried alone, so only the bad one fails.
    log::warn("postgres refused a write of a commit of {}; retrying each write alone",
              batch.writes.size());
    for (std::size_t i = 0; i < batch.writes.size(); ++i) {
        bool failed = false;
        std::size_t one[] = {i};
        auto alone = co_await commit_writes(batch, one, failed);
        if (!alone) co_return alone.error();
        result.writes.push_back(failed ? WriteResult{.error = Error::store_failure} : alone->front());
    }
    co_return result;
}

net::awaitable<Result<std::vector<WriteResult>>> PgStore::commit_writes(
    const Batch& batch, std::span<const std::size_t> writes, bool& statement_failed) {
    // Locks the messages (in id order, so concurrent committers cannot
    // deadlock) and reads what each holds.
    static const std::string tails =
        "SELECT m.id, m.status, octet_length(m.content), m.version, c.end_offset, c.version, "
        "m.lease_epoch, octet_length(m.reasoning) "
        "FROM ai_chat_messages m LEFT JOIN LATERAL (SELECT byte_offset + octet_length(text) AS "
        "end_offset, version FROM ai_chat_message_chunks WHERE message_id = m.id ORDER BY "
        "byte_offset DESC LIMIT 1) c ON true WHERE m.id = ANY($1::text[]) ORDER BY m.id "
        "FOR UPDATE OF m";
    static const std::string append =
        "INSERT INTO ai_chat_message_chunks (message_id, byte_offset, text, created_at, version, "
        "change_seq) VALUES ($1, $2, $3, $4, $5, " CHATD_PG_XACT ")";
    static const std::string end =
        "UPDATE ai_chat_messages SET content = $1, status = $2, is_streaming = false, "
        "error_code = $3, error_message = $4, finish_reason = $5, input_tokens = $6, "
        "output_tokens = $7, version = $8, last_updated = $9, change_seq = " CHATD_PG_XACT
        " WHERE id = $10";
    static const std::string drop = "DELETE FROM ai_chat_message_chunks WHERE message_id = $1";
    // Reasoning is appended to its column (it is not in the chunk log); the
    // row then carries the write's version and change too.
    static const std::string reason =
        "UPDATE ai_chat_messages SET reasoning = reasoning || $1, version = $2, last_updated = $3, "
        "change_seq = " CHATD_PG_XACT " WHERE id = $4";
    static const std::string rewrite =
        "UPDATE ai_chat_messages SET content = $1, version = $2, last_updated = $3, "
        "change_seq = " CHATD_PG_XACT " WHERE id = $4";

    const auto until = deadline();
    auto lease = co_await pool_.acquire(until);
    if (!lease) co_return lease.error();
    auto& conn = **lease;
    std::vector<std::string_view> ids;
    for (auto i : writes) ids.push_back(batch.writes[i].id.value);
    PgQuery first[] = {{kBegin}, {tails, {text_array(ids)}}};
    auto read = co_await conn.run(first, until);
    if (!read) co_return read.error();
    if (any_failed(*read, "commit")) co_return Error::store_failure;
    std::map<std::string_view, StoredTail> stored;
    const auto& t = (*read)[1];
    for (int row = 0; row < t.rows(); ++row) {
        StoredTail tail{.status = status_from_string(t.text(row, 1)).value_or(MessageStatus::error),
                        .end = t.integer(row, 2),
                        .version = t.integer(row, 3),
                        .epoch = t.integer(row, 6),
                        .reasoning_end = t.integer(row, 7)};
        if (tail.status == MessageStatus::generating && !t.is_null(row, 4)) {
            tail.end = std::max(tail.end, t.integer(row, 4));
            tail.version = std::max(tail.version, t.integer(row, 5));
        }
        stored[t.text(row, 0)] = tail;
    }
    std::vector<WriteResult> results;
    results.reserve(writes.size());
    std::vector<PgQuery> q;
    ChangeNotice changed;
    changed.chunks.reserve(writes.size());
    for (auto i : writes) {
        const auto& w = batch.writes[i];
        auto it = stored.find(w.id.value);
        auto plan = plan_write(w, it == stored.end() ? std::nullopt : std::optional(it->second));
        if (plan.action == WritePlan::Action::refuse) {
            results.push_back(WriteResult{.error = plan.error});
            continue;
        }
        results.push_back(WriteResult{.version = plan.version});
        if (plan.action == WritePlan::Action::skip) continue;
        if (w.terminal || w.rewrite_content || !plan.reasoning.empty())
            changed.messages.push_back(w.id);
        else
            changed.chunks.push_back({.id = w.id,
                                      .offset = plan.offset,
                                      .text = std::string(plan.text),
                                      .version = plan.version,
                                      .at = batch.at});
        if (!plan.reasoning.empty())
            q.push_back({reason, {plan.reasoning, plan.version, batch.at, w.id.value}});
        if (w.terminal) {
            const auto& term = *w.terminal;
            q.push_back({end,
                         {w.full_content, to_string(term.status),
                          term.error ? PgParam(term.error->code) : PgParam(std::nullopt),
                          term.error ? PgParam(term.error->message) : PgParam(std::nullopt),
                          term.finish_reason,
                          opt(term.usage.has_value(), term.usage ? term.usage->input_tokens : 0),
                          opt(term.usage.has_value(), term.usage ? term.usage->output_tokens : 0),
                          plan.version, batch.at, w.id.value}});
            q.push_back({drop, {w.id.value}});
        } else if (w.rewrite_content) {
            q.push_back({rewrite, {w.full_content, plan.version, batch.at, w.id.value}});
        } else if (!plan.text.empty()) {
            q.push_back({append, {w.id.value, plan.offset, plan.text, batch.at, plan.version}});
        }
    }
    if (!changed.empty()) q.push_back(notify(changed));
    q.push_back({kCommit});
    auto written = co_await conn.run(q, until);
    if (!written) co_return written.error();
    for (const auto& one : *written) {
        if (one.ok() || one.aborted()) continue;
        log::error("postgres refused a write: {} (SQLSTATE {})", one.error_message(), one.sqlstate());
        statement_failed = true;
    }
    co_return results;
}

net::awaitable<Result<std::vector<HeldLease>>> PgStore::renew_leases(LeaseTerms lease) {
    // Rows are locked in id order, as commits lock them: no deadlock.
    static const std::string sql =
        "WITH mine AS (SELECT id FROM ai_chat_messages WHERE owner_node = $1 AND "
        "status = 'generating' ORDER BY id FOR UPDATE) "
        "UPDATE ai_chat_messages m SET lease_expires_at = " CHATD_PG_NOW " + $2::bigint "
        "FROM mine WHERE m.id = mine.id RETURNING m.id, m.lease_epoch";
    PgQuery q[] = {{sql, {lease.node, static_cast<std::int64_t>(lease.ttl.count())}}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "renew_leases")) co_return Error::store_failure;
    std::vector<HeldLease> held;
    for (int i = 0; i < (*r)[0].rows(); ++i)
        held.push_back({MessageId{std::string((*r)[0].text(i, 0))}, (*r)[0].integer(i, 1)});
    co_return held;
}

net::awaitable<Result<Claims>> PgStore::claim_orphans(LeaseTerms lease, ClaimLimits limits) {
    // SKIP LOCKED: a row another node is claiming (or its owner committing
    // to) is not an orphan to wait for.
    static const std::string orphans =
        "SELECT id, recoveries, cancel_requested::int FROM ai_chat_messages WHERE status = 'generating' AND "
        "COALESCE(lease_expires_at, 0) < " CHATD_PG_NOW " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";
    static const std::string close =
        "UPDATE ai_chat_messages m SET content = m.content || COALESCE((SELECT string_agg(c.text, "
        "'' ORDER BY c.byte_offset) FROM ai_chat_message_chunks c WHERE c.message_id = m.id), ''), "
        "status = $4, is_streaming = false, error_code = $5, error_message = $1, "
        "finish_reason = $6, version = GREATEST(m.version, COALESCE((SELECT "
        "MAX(c.version) FROM ai_chat_message_chunks c WHERE c.message_id = m.id), 0)) + 1, "
        "last_updated = $2, change_seq = " CHATD_PG_XACT ", lease_expires_at = NULL "
        "WHERE m.id = ANY($3::text[])";
    static const std::string drop =
        "DELETE FROM ai_chat_message_chunks WHERE message_id = ANY($1::text[])";
    static const std::string take =
        "UPDATE ai_chat_messages SET owner_node = $1, lease_epoch = lease_epoch + 1, "
        "recoveries = recoveries + 1, lease_expires_at = " CHATD_PG_NOW " + $2::bigint "
        "WHERE id = ANY($3::text[])";
    static const std::string taken = select_messages(
        "WHERE id = ANY($1::text[]) ORDER BY id");
    static const std::string taken_owners =
        "SELECT user_id, lease_epoch FROM ai_chat_messages WHERE id = ANY($1::text[]) ORDER BY id";
    static const std::string chunks =
        kChunkColumns + "WHERE c.message_id = ANY($1::text[]) ORDER BY c.message_id, c.byte_offset";

    const auto until = deadline();
    auto conn_lease = co_await pool_.acquire(until);
    if (!conn_lease) co_return conn_lease.error();
    auto& conn = **conn_lease;
    PgQuery first[] = {{kBegin},
                       {orphans,
                        {static_cast<std::int64_t>(limits.limit)}}};
    auto found = co_await conn.run(first, until);
    if (!found) co_return found.error();
    if (any_failed(*found, "claim_orphans")) co_return Error::store_failure;
    std::vector<std::string> end_ids, cancel_ids, take_ids;
    const auto& rows = (*found)[1];
    for (int i = 0; i < rows.rows(); ++i) {
        auto& to = rows.integer(i, 2) != 0                       ? cancel_ids
                   : rows.integer(i, 1) >= limits.max_recoveries ? end_ids
                                                                 : take_ids;
        to.emplace_back(rows.text(i, 0));
    }
    if (rows.rows() == 0) {  // the common case: every lease is alive
        PgQuery end[] = {{kCommit}};
        auto r = co_await conn.run(end, until);
        if (!r) co_return r.error();
        co_return Claims{};
    }
    auto array = [](const std::vector<std::string>& ids) {
        return text_array(std::vector<std::string_view>(ids.begin(), ids.end()));
    };
    const auto ended = array(end_ids), cancelled = array(cancel_ids), continued = array(take_ids);
    const auto now = now_millis();
    ChangeNotice closed;
    for (const auto* ids : {&end_ids, &cancel_ids})
        for (const auto& id : *ids) closed.messages.push_back(MessageId{id});
    std::vector<PgQuery> second{
        {close,
         {std::string_view("the server stopped while this message was generating"), now, ended,
          std::string_view("error"), std::string_view("interrupted"),
          std::string_view("interrupted")}},
        {drop, {ended}},
        {close,
         {std::nullopt, now, cancelled, std::string_view("cancelled"), std::nullopt,
          std::string_view("cancelled")}},
        {drop, {cancelled}},
        {take, {lease.node, static_cast<std::int64_t>(lease.ttl.count()), continued}},
        {taken, {continued}},
        {taken_owners, {continued}},
        {chunks, {continued}}};
    if (!closed.empty()) second.push_back(notify(closed));
    second.push_back({kCommit});
    auto r = co_await conn.run(second, until);
    if (!r) co_return r.error();
    if (any_failed(*r, "claim_orphans")) co_return Error::store_failure;
    auto messages = read_messages((*r)[5]);
    attach_chunks(messages, (*r)[7]);
    Claims claims{.ended = std::move(closed.messages)};
    const auto& owners = (*r)[6];
    for (std::size_t i = 0; i < messages.size(); ++i)
        claims.continued.push_back({UserId{std::string(owners.text(static_cast<int>(i), 0))},
                                    std::move(messages[i]),
                                    owners.integer(static_cast<int>(i), 1)});
    co_return claims;
}

net::awaitable<Result<std::size_t>> PgStore::release_stale_leases(std::string node) {
    co_return co_await release_leases(std::move(node), {});
}

net::awaitable<Result<void>> PgStore::request_cancel(UserId user, MessageId id) {
    static const std::string mark =
        "UPDATE ai_chat_messages SET cancel_requested = true WHERE id = $1 AND user_id = $2 AND "
        "status = 'generating'";
    static const std::string exists = "SELECT 1 FROM ai_chat_messages WHERE id = $1 AND user_id = $2";
    PgQuery q[] = {{mark, {id.value, user.value}}, {exists, {id.value, user.value}}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "request_cancel")) co_return Error::store_failure;
    if ((*r)[0].affected() > 0) co_return Result<void>{};
    co_return (*r)[1].rows() == 0 ? Error::not_found : Error::not_generating;
}

net::awaitable<Result<std::vector<MessageId>>> PgStore::cancel_requests(std::string node) {
    static const std::string sql =
        "SELECT id FROM ai_chat_messages WHERE owner_node = $1 AND cancel_requested AND "
        "status = 'generating'";
    PgQuery q[] = {{sql, {node}}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "cancel_requests")) co_return Error::store_failure;
    std::vector<MessageId> ids;
    for (int i = 0; i < (*r)[0].rows(); ++i) ids.push_back(MessageId{std::string((*r)[0].text(i, 0))});
    co_return ids;
}

net::awaitable<Result<std::size_t>> PgStore::release_leases(std::string node,
                                                            std::vector<MessageId> only) {
    // Rows are locked in id order, as commits lock them: no deadlock with
    // this node's last commits.
    static const std::string sql =
        "WITH mine AS (SELECT id FROM ai_chat_messages WHERE owner_node = $1 AND "
        "status = 'generating' AND ($2::text[] IS NULL OR id = ANY($2::text[])) ORDER BY id "
        "FOR UPDATE) UPDATE ai_chat_messages m SET lease_expires_at = 0 FROM mine "
        "WHERE m.id = mine.id";
    std::vector<std::string_view> ids;
    for (const auto& id : only) ids.push_back(id.value);
    PgQuery q[] = {{sql, {node, only.empty() ? PgParam(std::nullopt) : PgParam(text_array(ids))}}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "release_leases")) co_return Error::store_failure;
    co_return static_cast<std::size_t>((*r)[0].affected());
}

std::unique_ptr<ChangeListener> PgStore::listen(net::any_io_executor ex) {
    return std::make_unique<PgListener>(std::move(ex), config_.conninfo, config_.timeout);
}

net::awaitable<Result<std::vector<Message>>> PgStore::read_tails(std::vector<ReadPosition> at) {
    // Of each message's chunks, those from the one holding the reader's
    // offset on: two index lookups, however long the message is.
    static const std::string messages = select_messages("WHERE id = ANY($1::text[])");
    static const std::string chunks =
        "SELECT c.message_id, c.byte_offset, c.text, c.change_seq, c.created_at, c.version "
        "FROM unnest($1::text[], $2::bigint[]) AS f(id, off) JOIN ai_chat_message_chunks c ON "
        "c.message_id = f.id AND c.byte_offset >= COALESCE((SELECT max(s.byte_offset) FROM "
        "ai_chat_message_chunks s WHERE s.message_id = f.id AND s.byte_offset <= f.off), 0) "
        "ORDER BY c.message_id, c.byte_offset";
    if (at.empty()) co_return std::vector<Message>{};
    std::vector<std::string_view> ids;
    std::string offsets = "{";
    std::unordered_map<std::string_view, std::int64_t> from;
    for (const auto& p : at) {
        ids.push_back(p.id.value);
        if (offsets.size() > 1) offsets += ',';
        offsets += std::to_string(p.offset);
        from[p.id.value] = p.offset;
    }
    offsets += '}';
    const auto array = text_array(ids);
    PgQuery q[] = {{kBeginRead}, {messages, {array}}, {chunks, {array, offsets}}, {kCommit}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "read_tails")) co_return Error::store_failure;
    TailAssembler tails;
    const auto& rows = (*r)[1];
    for (int i = 0; i < rows.rows(); ++i) {
        auto m = read_message(rows, i);
        auto offset = from[m.id.value];
        tails.add_message(std::move(m), offset);
    }
    const auto& c = (*r)[2];
    for (int i = 0; i < c.rows(); ++i)
        tails.add_chunk(c.text(i, 0), c.integer(i, 1), c.text(i, 2), c.integer(i, 3),
                        c.integer(i, 4), c.integer(i, 5));
    co_return tails.take();
}

net::awaitable<Result<void>> PgStore::ping() {
    static const std::string sql = "SELECT 1";
    PgQuery q[] = {{sql}};
    auto r = co_await run(q, deadline());
    if (!r) co_return r.error();
    if (any_failed(*r, "ping")) co_return Error::store_failure;
    co_return Result<void>{};
}

}  // namespace chatd::store::postgres
