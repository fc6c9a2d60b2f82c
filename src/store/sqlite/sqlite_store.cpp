#include "store/sqlite/sqlite_store.hpp"

#include "core/log.hpp"
#include "core/offload.hpp"
#include "store/changes.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/tails.hpp"
#include "store/write_plan.hpp"

#include <boost/asio/post.hpp>

#include <pthread.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <functional>
#include <limits>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace chatd::store::sqlite {
namespace {


constexpr std::string_view kMessageColumns =
    "id, session_id, role, content, status, is_streaming, created_at, last_updated, version, "
    "change_seq, error_code, error_message, model, finish_reason, input_tokens, output_tokens, "
    "reasoning, lease_epoch, chunk_floor";

std::string select_messages(std::string_view where) {
    return "SELECT " + std::string(kMessageColumns) + " FROM ai_chat_messages " +
           std::string(where);
}

Message read_message(StatementUse& q) {
    Message m;
    m.id = MessageId{q.text(0)};
    m.session_id = SessionId{q.text(1)};
    m.role = role_from_string(q.text(2)).value_or(Role::user);
    m.content = q.text(3);
    m.status = status_from_string(q.text(4)).value_or(MessageStatus::error);
    m.is_streaming = q.integer(5) != 0;
    m.created_at = q.integer(6);
    m.last_updated = q.integer(7);
    m.version = q.integer(8);
    m.change_seq = q.integer(9);
    if (!q.is_null(10)) m.error = MessageError{q.text(10), q.text(11)};
    m.model = q.text(12);
    if (!q.is_null(13)) m.finish_reason = q.text(13);
    if (!q.is_null(14) || !q.is_null(15)) m.usage = Usage{q.integer(14), q.integer(15)};
    m.reasoning = q.text(16);
    return m;
}

// A message row as queries read it, with what locates a generating
// message's text: its content column holds the bytes before its chunk
// floor, its chunk rows (seq > floor) the rest.
struct MessageRow {
    Message message;
    std::int64_t epoch = 1;
    std::int64_t floor = 0;
};

MessageRow read_message_row(StatementUse& q) {
    return MessageRow{.message = read_message(q), .epoch = q.integer(17), .floor = q.integer(18)};
}

// The store-wide change sequence: the newest one any commit took.
std::int64_t current_seq(Database& db) {
    auto q = db.cached("SELECT value FROM ai_chat_change_seq");
    if (!q.step()) throw SqliteError(SQLITE_CORRUPT, "ai_chat_change_seq has no row");
    return q.integer(0);
}

}  // namespace

std::int64_t SessionCounts::get(Database& db, const std::string& user) {
    if (auto it = counts_.find(user); it != counts_.end()) return it->second;
    constexpr std::size_t kMaxUsers = 4096;
    if (counts_.size() >= kMaxUsers) counts_.clear();
    auto q = db.cached("SELECT COUNT(*) FROM ai_chat_sessions WHERE user_id = ?");
    q.bind(1, user);
    const auto n = q.step() ? q.integer(0) : 0;
    counts_.emplace(user, n);
    return n;
}

void SessionCounts::add(const std::string& user, std::int64_t n) {
    if (auto it = counts_.find(user); it != counts_.end()) it->second += n;
}

namespace {

// Where a read finds a generating message's text: the reader thread passes
// the live texts and its snapshot's change sequence; the writer reads the log.
struct TextSource {
    const LiveTexts* live = nullptr;
    std::int64_t snapshot_seq = 0;
};

// For a reader inside its read transaction: the live texts, for its snapshot.
TextSource reader_texts(Database& db, const LiveTexts& live) {
    return TextSource{.live = &live, .snapshot_seq = current_seq(db)};
}

// One piece of a generating message's text: (row index, offset, text,
// change sequence, time, version).
using PieceSink = std::function<void(std::size_t, std::int64_t, std::string_view, std::int64_t,
                                     UnixMillis, std::int64_t)>;

// Hands `sink` the text of each generating message of `rows` from byte
// `from(i)` on (sooner is allowed), in offset order: from the live texts
// when they hold it, else from the chunk log, which has no index by message:
// one message is found by a filtered walk from its floor, several by one
// walk from the lowest of their floors.
void read_texts(Database& db, const TextSource& src, const std::vector<MessageRow>& rows,
                const std::function<std::int64_t(std::size_t)>& from, const PieceSink& sink) {
    std::unordered_map<std::string_view, std::size_t> missing;
    std::int64_t floor = std::numeric_limits<std::int64_t>::max();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        if (r.message.status != MessageStatus::generating) continue;
        if (src.live) {
            if (auto p = src.live->read(r.message.id.value, r.epoch, src.snapshot_seq, from(i))) {
                sink(i, p->offset, p->text, p->change_seq, p->last_updated, p->version);
                continue;
            }
        }
        missing.emplace(r.message.id.value, i);
        floor = std::min(floor, r.floor);
    }
    if (missing.empty()) return;
    if (missing.size() == 1) {
        auto [id, i] = *missing.begin();
        auto q = db.cached(
            "SELECT byte_offset, text, seq, created_at, version FROM ai_chat_message_chunks "
            "WHERE seq > ? AND message_id = ? ORDER BY seq");
        q.bind(1, floor).bind(2, id);
        while (q.step()) sink(i, q.integer(0), q.text(1), q.integer(2), q.integer(3), q.integer(4));
        return;
    }
    auto q = db.cached(
        "SELECT message_id, byte_offset, text, seq, created_at, version "
        "FROM ai_chat_message_chunks WHERE seq > ? ORDER BY seq");
    q.bind(1, floor);
    while (q.step()) {
        auto it = missing.find(q.text(0));
        if (it == missing.end() || q.integer(3) <= rows[it->second].floor) continue;
        sink(it->second, q.integer(1), q.text(2), q.integer(3), q.integer(4), q.integer(5));
    }
}

// Appends the bytes of `piece`, which starts at byte `at`, that extend
// `text` (none when the piece starts past its end).
void extend(std::string& text, std::int64_t at, std::string_view piece) {
    auto size = static_cast<std::int64_t>(text.size());
    if (at <= size) text.append(after(piece, at, size));
}

std::vector<Message> query_messages(Database& db, const TextSource& src, const std::string& sql,
                                    auto&&... binds) {
    std::vector<MessageRow> rows;
    {
        auto q = db.cached(sql);
        int index = 1;
        (q.bind(index++, binds), ...);
        while (q.step()) rows.push_back(read_message_row(q));
    }
    read_texts(
        db, src, rows,
        [&](std::size_t i) { return static_cast<std::int64_t>(rows[i].message.content.size()); },
        [&](std::size_t i, std::int64_t offset, std::string_view text, std::int64_t seq,
            UnixMillis at, std::int64_t version) {
            auto& m = rows[i].message;
            extend(m.content, offset, text);
            m.change_seq = std::max(m.change_seq, seq);
            m.last_updated = std::max(m.last_updated, at);
            m.version = std::max(m.version, version);
        });
    std::vector<Message> out;
    out.reserve(rows.size());
    for (auto& r : rows) out.push_back(std::move(r.message));
    return out;
}

const std::string kSessionColumns =
    "id, user_id, title, system_prompt, model, created_at, last_updated, chat_id";

Session read_session(StatementUse& q) {
    return Session{.id = SessionId{q.text(0)},
                   .user_id = UserId{q.text(1)},
                   .title = q.text(2),
                   .system_prompt = q.text(3),
                   .model = q.text(4),
                   .created_at = q.integer(5),
                   .last_updated = q.integer(6),
                   .chat_id = q.is_null(7) ? std::nullopt : std::optional(q.text(7))};
}

std::optional<Session> find_chat_session(Database& db, const UserId& user,
                                        const std::string& chat_id) {
    auto q = db.cached("SELECT " + kSessionColumns +
                       " FROM ai_chat_sessions WHERE user_id = ? AND chat_id = ?");
    q.bind(1, user.value).bind(2, chat_id);
    if (!q.step()) return std::nullopt;
    return read_session(q);
}

std::optional<Session> find_session(Database& db, const UserId& user, const SessionId& id) {
    auto q = db.cached(
        "SELECT " + kSessionColumns + " FROM ai_chat_sessions WHERE id = ? AND user_id = ?");
    q.bind(1, id.value).bind(2, user.value);
    if (!q.step()) return std::nullopt;
    return read_session(q);
}

void insert_message(Database& db, const UserId& user, const Message& m) {
    db.cached(
          "INSERT INTO ai_chat_messages (id, session_id, user_id, role, content, status, "
          "is_streaming, created_at, last_updated, version, change_seq, model, chunk_floor) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(1, m.id.value)
        .bind(2, m.session_id.value)
        .bind(3, user.value)
        .bind(4, to_string(m.role))
        .bind(5, m.content)
        .bind(6, to_string(m.status))
        .bind(7, std::int64_t{m.is_streaming})
        .bind(8, m.created_at)
        .bind(9, m.last_updated)
        .bind(10, m.version)
        .bind(11, m.change_seq)
        .bind(12, m.model)
        .bind(13, m.change_seq)  // its chunks take later sequences
        .run();
}

// Takes `n` change sequences from the store-wide counter, inside the caller's
// write transaction (which serialises it with every other writer of the
// file); returns the first.
std::int64_t allocate_seq(Database& db, std::int64_t n) {
    // Not UPDATE ... RETURNING: SQLite runs that through a temporary table,
    // a B-tree and pager opened and closed at every call (a seventh of the
    // writer thread's time at 200 streams). Inside the write transaction,
    // the two statements are one step.
    db.cached("UPDATE ai_chat_change_seq SET value = value + ?").bind(1, n).run();
    return current_seq(db) - n + 1;
}

// What the database holds of message `id` now (see plan_write), with the
// whole text of a generating one, for the live texts.
struct LoadedTail {
    StoredTail stored;
    LiveTexts::Tail live;
};

std::optional<LoadedTail> load_tail(Database& db, const std::string& id) {
    std::vector<MessageRow> rows;
    {
        auto q = db.cached(select_messages("WHERE id = ?"));
        q.bind(1, id);
        if (!q.step()) return std::nullopt;
        rows.push_back(read_message_row(q));
    }
    auto& m = rows[0].message;
    LoadedTail t{.stored = {.status = m.status,
                            .version = m.version,
                            .epoch = rows[0].epoch,
                            .reasoning_end = static_cast<std::int64_t>(m.reasoning.size())},
                 .live = {.version = m.version,
                          .epoch = rows[0].epoch,
                          .reasoning_end = static_cast<std::int64_t>(m.reasoning.size()),
                          .change_seq = m.change_seq,
                          .last_updated = m.last_updated}};
    read_texts(
        db, TextSource{}, rows, [](std::size_t) { return 0; },
        [&](std::size_t, std::int64_t offset, std::string_view text, std::int64_t seq,
            UnixMillis at, std::int64_t version) {
            extend(m.content, offset, text);
            t.live.change_seq = std::max(t.live.change_seq, seq);
            t.live.last_updated = std::max(t.live.last_updated, at);
            t.live.version = std::max(t.live.version, version);
        });
    t.stored.end = static_cast<std::int64_t>(m.content.size());
    t.stored.version = t.live.version;
    if (m.status == MessageStatus::generating) t.live.text = std::move(m.content);
    return t;
}

// One commit's view of the messages it writes: an earlier write of the same
// commit, else the live texts, else the database (remembered for the live
// texts once the commit lands).
class CommitPlanner {
public:
    // `defer_chunks`: the writes' chunk rows wait for insert_chunks(), which
    // appends them in a few statements of many rows each (one statement's
    // cursor, seek and reset for a whole batch); otherwise each write
    // appends its own, so that a failure is that write's alone.
    CommitPlanner(Database& db, const LiveTexts& live, std::size_t writes, bool defer_chunks)
        : db_(db), live_(live), defer_chunks_(defer_chunks) {
        updates_.reserve(writes);
        if (defer_chunks_) chunks_.reserve(writes);
    }

    // Carries out one write of the commit; refusals are values, SQLite
    // errors throw (and leave nothing of the write behind here either).
    WriteResult apply(const MessageWrite& w, UnixMillis at, std::int64_t seq);
    // Appends the deferred chunk rows to the log.
    void insert_chunks();

    std::vector<LiveTexts::Update>& updates() { return updates_; }

private:
    struct ChunkRow {
        std::int64_t seq;
        std::string_view message_id;
        std::int64_t offset;
        std::string_view text;
        UnixMillis at;
        std::int64_t version;
    };

    Database& db_;
    const LiveTexts& live_;
    const bool defer_chunks_;
    std::unordered_map<std::string_view, StoredTail> planned_;
    std::vector<LiveTexts::Update> updates_;
    std::vector<ChunkRow> chunks_;
};

// INSERT of `rows` chunk rows in one statement; `rows` a power of two up to
// kMaxChunkRows, so that a handful of statements cover any batch.
constexpr std::size_t kMaxChunkRows = 64;

const std::string& insert_chunks_sql(std::size_t rows) {
    static const auto statements = [] {
        std::array<std::string, std::bit_width(kMaxChunkRows)> out;
        for (std::size_t i = 0; i < out.size(); ++i) {
            out[i] =
                "INSERT INTO ai_chat_message_chunks (seq, message_id, byte_offset, text, "
                "created_at, version) VALUES ";
            for (std::size_t r = 0; r < (std::size_t{1} << i); ++r)
                out[i] += r == 0 ? "(?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?)";
        }
        return out;
    }();
    return statements[static_cast<std::size_t>(std::bit_width(rows) - 1)];
}

void CommitPlanner::insert_chunks() {
    // Gone also when SQLite refuses them: a refused write's row is not tried again.
    struct Clear {
        std::vector<ChunkRow>& rows;
        ~Clear() { rows.clear(); }
    } clear{chunks_};
    std::span<const ChunkRow> rest(chunks_);
    while (!rest.empty()) {
        const auto n = std::min(std::bit_floor(rest.size()), kMaxChunkRows);
        auto q = db_.cached(insert_chunks_sql(n));
        int i = 0;
        for (const auto& c : rest.first(n)) {
            q.bind(i + 1, c.seq)
                .bind(i + 2, c.message_id)
                .bind(i + 3, c.offset)
                .bind(i + 4, c.text)
                .bind(i + 5, c.at)
                .bind(i + 6, c.version);
            i += 6;
        }
        q.run();
        rest = rest.subspan(n);
    }
}

WriteResult CommitPlanner::apply(const MessageWrite& w, UnixMillis at, std::int64_t seq) {
    auto& db = db_;
    std::optional<StoredTail> stored;
    std::optional<LiveTexts::Tail> base;
    if (auto p = planned_.find(w.id.value); p != planned_.end()) {
        stored = p->second;
    } else if (const auto* t = live_.find(w.id.value)) {
        stored = StoredTail{.end = static_cast<std::int64_t>(t->text.size()),
                            .version = t->version,
                            .epoch = t->epoch,
                            .reasoning_end = t->reasoning_end};
    } else if (auto loaded = load_tail(db, w.id.value)) {
        stored = loaded->stored;
        if (stored->status == MessageStatus::generating) base = std::move(loaded->live);
    }
    auto plan = plan_write(w, stored);
    LiveTexts::Update u{.id = w.id.value, .base = std::move(base), .at = at};
    if (plan.action == WritePlan::Action::refuse) {
        // A message that ended or changed hands is this writer's no more.
        u.ended = plan.error == Error::not_generating || plan.error == Error::lease_lost;
        updates_.push_back(std::move(u));
        return WriteResult{.error = plan.error};
    }
    if (plan.action == WritePlan::Action::skip) {
        updates_.push_back(std::move(u));
        return WriteResult{.version = plan.version};
    }
    if (!plan.reasoning.empty()) {
        // Reasoning is appended to its column; the row then carries this
        // write's version and change too (a generating message's are the
        // newest of its row and its chunks).
        db.cached(
              "UPDATE ai_chat_messages SET reasoning = reasoning || ?, version = ?, "
              "last_updated = ?, change_seq = ? WHERE id = ?")
            .bind(1, plan.reasoning)
            .bind(2, plan.version)
            .bind(3, at)
            .bind(4, seq)
            .bind(5, w.id.value)
            .run();
    }
    auto next = *stored;
    next.version = plan.version;
    next.reasoning_end += static_cast<std::int64_t>(plan.reasoning.size());
    if (w.terminal) {
        // The whole text goes to the message row; its chunk rows are garbage
        // from now on, collected from the log's head.
        const auto& t = *w.terminal;
        db.cached(
              "UPDATE ai_chat_messages SET content = ?, status = ?, is_streaming = 0, "
              "error_code = ?, error_message = ?, finish_reason = ?, input_tokens = ?, "
              "output_tokens = ?, version = ?, last_updated = ?, change_seq = ? WHERE id = ?")
            .bind(1, w.full_content)
            .bind(2, to_string(t.status))
            .bind(3, t.error ? std::optional(t.error->code) : std::nullopt)
            .bind(4, t.error ? std::optional(t.error->message) : std::nullopt)
            .bind(5, t.finish_reason)
            .bind(6, t.usage ? std::optional(t.usage->input_tokens) : std::nullopt)
            .bind(7, t.usage ? std::optional(t.usage->output_tokens) : std::nullopt)
            .bind(8, plan.version)
            .bind(9, at)
            .bind(10, seq)
            .bind(11, w.id.value)
            .run();
        next.status = t.status;
        next.end = static_cast<std::int64_t>(w.full_content.size());
        u.ended = true;
    } else if (w.rewrite_content) {
        // The content column holds it all: the floor moves past its chunks.
        db.cached(
              "UPDATE ai_chat_messages SET content = ?, version = ?, last_updated = ?, "
              "change_seq = ?, chunk_floor = ? WHERE id = ?")
            .bind(1, w.full_content)
            .bind(2, plan.version)
            .bind(3, at)
            .bind(4, seq)
            .bind(5, seq)
            .bind(6, w.id.value)
            .run();
        next.end = static_cast<std::int64_t>(w.full_content.size());
        u.replace = w.full_content;
    } else if (!plan.text.empty()) {
        chunks_.push_back({.seq = seq,
                           .message_id = w.id.value,
                           .offset = plan.offset,
                           .text = plan.text,
                           .at = at,
                           .version = plan.version});
        if (!defer_chunks_) insert_chunks();
        next.end = plan.offset + static_cast<std::int64_t>(plan.text.size());
        u.text = plan.text;
    }
    u.reasoning_added = static_cast<std::int64_t>(plan.reasoning.size());
    u.version = plan.version;
    u.change_seq = seq;
    planned_.insert_or_assign(std::string_view(w.id.value), next);
    updates_.push_back(std::move(u));
    return WriteResult{.version = plan.version};
}

// Another connection's commits since the writer last looked (another store
// on the file): what the live texts hold may be stale, so they start over
// from the database. Called inside the write transaction, which excludes
// any other writer from here to its commit.
void notice_other_writers(Database& db, ChunkLog& chunk_log) {
    auto q = db.cached("PRAGMA data_version");
    if (!q.step()) throw SqliteError(SQLITE_ERROR, "PRAGMA data_version returned nothing");
    if (auto v = q.integer(0); v != chunk_log.data_version) {
        chunk_log.live.forget_all();
        chunk_log.sessions.forget_all();
        chunk_log.data_version = v;
    }
}

// A step of the log's upkeep, at most every 100 ms by the commits' clock,
// first in a commit's transaction (before it takes change sequences), each
// bounded so that no commit waits long for it: the log's oldest rows below
// every live message's floor go, up to kCutRows of them (whole pages at a
// time); and while the log is longer than max_rows, the live messages that
// hold its head back, up to kCompactMessages of them, oldest first, have
// their text so far written to their content column and their floor moved
// to the tip.
void collect_log(Database& db, ChunkLog& chunk_log, UnixMillis at) {
    constexpr UnixMillis kEveryMs = 100;
    constexpr std::int64_t kCutRows = 16 * 1024;
    constexpr std::size_t kCompactMessages = 32;
    if (at >= chunk_log.collected_at && at - chunk_log.collected_at < kEveryMs) return;
    chunk_log.collected_at = at;
    const auto tip = current_seq(db);
    std::unordered_set<std::string> generating;
    std::vector<std::pair<std::int64_t, std::string>> behind;  // (floor, id)
    auto low = tip;
    {
        auto q = db.cached(
            "SELECT id, chunk_floor FROM ai_chat_messages WHERE status = 'generating'");
        while (q.step()) {
            auto id = q.text(0);
            auto floor = q.integer(1);
            if (floor < tip - chunk_log.max_rows / 2) behind.emplace_back(floor, id);
            low = std::min(low, floor);
            generating.insert(std::move(id));
        }
    }
    if (tip - low > chunk_log.max_rows) {
        std::sort(behind.begin(), behind.end());
        if (behind.size() > kCompactMessages) behind.resize(kCompactMessages);
        for (const auto& [floor, id] : behind) {
            const auto* live = chunk_log.live.find(id);
            auto loaded = live ? std::nullopt : load_tail(db, id);
            if (!live && !loaded) continue;
            db.cached("UPDATE ai_chat_messages SET content = ?, chunk_floor = ? WHERE id = ?")
                .bind(1, live ? live->text : loaded->live.text)
                .bind(2, tip)
                .bind(3, id)
                .run();
        }
        auto q = db.cached(
            "SELECT COALESCE(MIN(chunk_floor), ?) FROM ai_chat_messages "
            "WHERE status = 'generating'");
        q.bind(1, tip);
        if (q.step()) low = q.integer(0);
    }
    std::int64_t head = low;
    {
        auto q = db.cached("SELECT MIN(seq) FROM ai_chat_message_chunks");
        if (q.step() && !q.is_null(0)) head = q.integer(0);
    }
    if (head <= low)
        db.cached("DELETE FROM ai_chat_message_chunks WHERE seq <= ?")
            .bind(1, std::min(low, head + kCutRows))
            .run();
    chunk_log.live.retain(generating);
}

// SQLite's refusals of one write's data (too big, a constraint), as opposed
// to failures of the database itself (busy, I/O, full disk).
bool is_write_error(const SqliteError& e) {
    switch (e.code() & 0xff) {
        case SQLITE_TOOBIG:
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
            return true;
        default:
            return false;
    }
}

enum class Isolation {
    none,       // one failing write fails the transaction
    per_write,  // each write in its own savepoint: a failing one is refused alone
};

CommitResult commit_batch(Database& db, ChunkLog& chunk_log, const Batch& batch,
                          Isolation isolation) {
    Transaction tx(db, Transaction::Kind::write);
    notice_other_writers(db, chunk_log);
    collect_log(db, chunk_log, batch.at);
    auto seq = allocate_seq(db, static_cast<std::int64_t>(batch.writes.size()));
    CommitPlanner planner(db, chunk_log.live, batch.writes.size(), isolation == Isolation::none);
    CommitResult result;
    result.writes.reserve(batch.writes.size());
    for (const auto& w : batch.writes) {
        if (isolation == Isolation::none) {
            result.writes.push_back(planner.apply(w, batch.at, seq++));
            continue;
        }
        db.exec("SAVEPOINT one_write");
        try {
            result.writes.push_back(planner.apply(w, batch.at, seq++));
        } catch (const SqliteError& e) {
            if (!is_write_error(e)) throw;
            log::error("sqlite refused a write of message {}: {}", w.id.value, e.what());
            db.exec("ROLLBACK TO one_write");
            result.writes.push_back(WriteResult{.error = Error::store_failure});
        }
        db.exec("RELEASE one_write");
    }
    planner.insert_chunks();
    tx.commit();
    chunk_log.live.committed(planner.updates(), seq - 1);
    return result;
}

// Runs `fn` on a store thread; a failure there (SQLite's, or any other
// exception) becomes store_failure for the caller.
template <class F>
auto on_thread(boost::asio::thread_pool& pool, const char* name, F fn) {
    return offload(pool.get_executor(), [name, fn = std::move(fn)]() mutable -> decltype(fn()) {
        try {
            return fn();
        } catch (const std::exception& e) {
            log::error("sqlite {}: {}", name, e.what());
            return Error::store_failure;
        }
    });
}

}  // namespace

template <class F>
auto SqliteStore::on_writer(F fn) {
    return on_thread(writer_, "writer", std::move(fn));
}

template <class F>
auto SqliteStore::on_reader(F fn) {
    return on_thread(reader_, "reader", std::move(fn));
}

// A write waiting for its group. Its result is settled on the writer thread,
// once its group has committed or it could not be made, and read there by
// the writer task of its own call.
struct SqliteStore::GroupedWrite {
    virtual ~GroupedWrite() = default;
    // Runs the write inside the group's transaction; false: undo what it wrote.
    virtual bool run(Database& db) = 0;
    virtual void settle(bool failed) = 0;
};

namespace {

// The checkpointer hands the log over to the writer once a pass of its own
// copies fewer pages than this (or after three).
constexpr int kCheckpointRemainder = 64;

// A group is bounded, so that the commits queued behind it (live streams'
// tokens) wait for a few milliseconds of sends at most.
constexpr std::size_t kMaxWriteGroup = 64;

}  // namespace

template <class T>
struct SqliteStore::GroupedWriteOf final : GroupedWrite {
    GroupedWriteOf(std::function<Result<T>(Database&)> b, std::function<bool(const Result<T>&)> k,
                   std::function<void(const T&)> c)
        : body(std::move(b)), keep(std::move(k)), committed(std::move(c)) {}
    bool run(Database& db) override {
        staged.emplace(body(db));
        kept = keep(*staged);
        return kept;
    }
    void settle(bool failed) override {
        if (failed || !staged) {
            result.emplace(Error::store_failure);
            return;
        }
        if (kept && committed && *staged) committed(**staged);
        result.emplace(std::move(*staged));
    }
    std::function<Result<T>(Database&)> body;
    std::function<bool(const Result<T>&)> keep;
    std::function<void(const T&)> committed;
    std::optional<Result<T>> staged;  // written, not committed yet
    bool kept = false;
    std::optional<Result<T>> result;
};

template <class T>
net::awaitable<Result<T>> SqliteStore::in_write_group(std::function<Result<T>(Database&)> body,
                                                      std::function<bool(const Result<T>&)> keep,
                                                      std::function<void(const T&)> committed) {
    auto write =
        std::make_shared<GroupedWriteOf<T>>(std::move(body), std::move(keep), std::move(committed));
    {
        std::lock_guard lock(group_mutex_);
        group_.push_back(write);
    }
    // Queued before its task is posted: the task finds it settled by an
    // earlier task's group, or settles it (each run takes at least one).
    return on_writer([this, write]() -> Result<T> {
        while (!write->result) run_write_group();
        return std::move(*write->result);
    });
}

void SqliteStore::run_write_group() {
    std::vector<std::shared_ptr<GroupedWrite>> writes;
    {
        std::lock_guard lock(group_mutex_);
        auto n = static_cast<std::ptrdiff_t>(std::min(group_.size(), kMaxWriteGroup));
        writes.assign(group_.begin(), group_.begin() + n);
        group_.erase(group_.begin(), group_.begin() + n);
    }
    while (!writes.empty()) {
        std::size_t failed = writes.size();
        try {
            write_together(writes, failed);
            return;
        } catch (const std::exception& e) {
            log::error("sqlite writer: {}", e.what());
        }
        // What the writes counted is undone with them.
        chunk_log_.sessions.forget_all();
        if (failed == writes.size()) {  // BEGIN or COMMIT: none of them is written
            for (auto& w : writes) w->settle(true);
            return;
        }
        // One write failed: it alone is refused, the others are made again.
        writes[failed]->settle(true);
        writes.erase(writes.begin() + static_cast<std::ptrdiff_t>(failed));
    }
}

void SqliteStore::write_together(std::span<const std::shared_ptr<GroupedWrite>> writes,
                                 std::size_t& failed) {
    auto& db = *writer_db_;
    Transaction tx(db, Transaction::Kind::write);
    notice_other_writers(db, chunk_log_);
    const auto before = current_seq(db);
    for (std::size_t i = 0; i < writes.size(); ++i) {
        db.cached("SAVEPOINT grouped_write").run();
        failed = i;
        bool keep = writes[i]->run(db);
        failed = writes.size();
        if (!keep) db.cached("ROLLBACK TO grouped_write").run();
        db.cached("RELEASE grouped_write").run();
    }
    const auto through = current_seq(db);
    tx.commit();
    // The live texts stay whole through the sequences these writes took.
    chunk_log_.live.advance(before, through);
    for (const auto& w : writes) w->settle(false);
}

SqliteStore::SqliteStore(const SqliteConfig& config) {
    chunk_log_.max_rows = std::max<std::int64_t>(config.max_log_rows, 2);
    writer_db_ = std::make_unique<Database>(config.path.string(), Database::Mode::read_write);
    // Turning a new file to WAL needs it alone, and SQLite answers "locked"
    // at once rather than through the busy timeout while another store is
    // opening the same file: tried again, for as long as the busy timeout.
    for (int attempt = 1;; ++attempt) {
        try {
            writer_db_->exec("PRAGMA journal_mode=WAL");
            break;
        } catch (const SqliteError& e) {
            if ((e.code() & 0xff) != SQLITE_BUSY || attempt == 100) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // start-up: no event loop yet
        }
    }
    writer_db_->exec(config.durability == Durability::full ? "PRAGMA synchronous=FULL"
                                                           : "PRAGMA synchronous=NORMAL");
    writer_db_->exec("PRAGMA foreign_keys=ON");
    writer_db_->exec("PRAGMA cache_size=-32768");  // KiB: the live tables stay in memory
    int version = migrate(*writer_db_);
    writer_db_->cached("DELETE FROM ai_chat_idempotency_keys WHERE created_at < ?")
        .bind(1, now_millis() - kIdempotencyRetentionMs)
        .run();
    reader_db_ = std::make_unique<Database>(config.path.string(), Database::Mode::read_only);
    reader_db_->exec("PRAGMA cache_size=-32768");
    checkpoint_pages_ = std::max(config.checkpoint_pages, 1);
    writer_checkpoint_pages_ = std::max(config.writer_checkpoint_pages, 1);
    checkpoint_db_ = std::make_unique<Database>(config.path.string(), Database::Mode::read_write);
    // A connection learns the file is in WAL mode when it first reads it;
    // until then a checkpoint is a no-op.
    checkpoint_db_->exec("SELECT COUNT(*) FROM sqlite_schema");
    writer_db_->on_wal_commit([this](int pages) { wal_grew(pages); });
    // Named, so that top -H, perf and the benchmarks tell the store's CPU
    // from the I/O thread's.
    boost::asio::post(writer_, [] { pthread_setname_np(pthread_self(), "sqlite-writer"); });
    boost::asio::post(reader_, [] { pthread_setname_np(pthread_self(), "sqlite-reader"); });
    boost::asio::post(checkpointer_, [] { pthread_setname_np(pthread_self(), "sqlite-checkpt"); });
    log::info("sqlite store {} at schema version {}", config.path.string(), version);
}

SqliteStore::~SqliteStore() {
    // Calls not started yet are dropped: whoever awaits them is gone (the
    // event loop has stopped), and on a locked or stuck file each would take
    // its busy timeout. The call in progress finishes; its transaction is
    // whole or absent either way.
    writer_.stop();
    reader_.stop();
    checkpointer_.stop();
    writer_.join();
    reader_.join();
    checkpointer_.join();
}

void SqliteStore::wal_grew(int pages) {
    try {
        if (pages >= writer_checkpoint_pages_) {
            // The checkpointer fell behind (or a reader held it back): the
            // writer copies the log itself, so that it cannot grow unbounded.
            writer_db_->checkpoint();
        } else if (pages >= checkpoint_pages_ && !checkpoint_asked_.exchange(true)) {
            boost::asio::post(checkpointer_, [this] { checkpoint(); });
        }
    } catch (const SqliteError& e) {
        log::warn("sqlite checkpoint by the writer: {}", e.what());
    }
}

void SqliteStore::checkpoint() {
    try {
        // The bulk, while the writer goes on; then, a few times, what it
        // wrote meanwhile, so that little is left for the writer.
        int before = 0;
        for (int pass = 0; pass < 3; ++pass) {
            int copied = checkpoint_db_->checkpoint();
            if (copied - before < kCheckpointRemainder) break;
            before = copied;
        }
    } catch (const SqliteError& e) {
        log::warn("sqlite checkpoint: {}", e.what());
    }
    // The pages the writer added meanwhile are copied by the writer, between
    // two of its transactions: the log is then whole in the file when the
    // next one starts, which starts it again from its beginning. (Waiting
    // for the writer from here, as SQLite's RESTART mode does, loses to a
    // writer that commits every few milliseconds.)
    boost::asio::post(writer_, [this] {
        try {
            writer_db_->checkpoint();
        } catch (const SqliteError& e) {
            log::warn("sqlite checkpoint by the writer: {}", e.what());
        }
        checkpoint_asked_ = false;
    });
}

net::awaitable<Result<Session>> SqliteStore::create_session(UserId user, NewSession s) {
    // In one write transaction: the look-up, the count and the insert see
    // no other writer's (another store on the file) in between.
    auto body = [this, user, s](Database& db) -> Result<Session> {
        if (s.chat_id) {
            if (auto found = find_chat_session(db, user, *s.chat_id)) return *found;
        }
        auto& counts = chunk_log_.sessions;
        if (s.max_per_user > 0 &&
            counts.get(db, user.value) >= static_cast<std::int64_t>(s.max_per_user))
            return Error::too_many_sessions;
        auto now = now_millis();
        Session session{.id = new_session_id(),
                        .user_id = user,
                        .title = s.title,
                        .system_prompt = s.system_prompt,
                        .model = s.model,
                        .created_at = now,
                        .last_updated = now,
                        .chat_id = s.chat_id};
        static const std::string insert =
            "INSERT INTO ai_chat_sessions (" + kSessionColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
        db.cached(insert)
            .bind(1, session.id.value)
            .bind(2, user.value)
            .bind(3, session.title)
            .bind(4, session.system_prompt)
            .bind(5, session.model)
            .bind(6, now)
            .bind(7, now)
            .bind(8, s.chat_id)
            .run();
        counts.add(user.value, 1);
        return session;
    };
    return in_write_group<Session>(std::move(body), [](const Result<Session>& r) { return bool(r); });
}

net::awaitable<Result<Session>> SqliteStore::get_session(UserId user, SessionId id) {
    return on_reader([this, user, id]() -> Result<Session> {
        auto s = find_session(*reader_db_, user, id);
        if (!s) return Error::not_found;
        return *s;
    });
}

net::awaitable<Result<Session>> SqliteStore::find_chat(UserId user, std::string chat_id) {
    return on_reader([this, user, chat_id]() -> Result<Session> {
        auto s = find_chat_session(*reader_db_, user, chat_id);
        if (!s) return Error::not_found;
        return *s;
    });
}

net::awaitable<Result<SessionPage>> SqliteStore::list_sessions(UserId user, std::size_t limit,
                                                               std::optional<SessionId> before) {
    return on_reader([this, user, limit, before]() -> Result<SessionPage> {
        SessionPage page;
        auto q = reader_db_->cached(
            "SELECT " + kSessionColumns +
            " FROM ai_chat_sessions WHERE user_id = ? AND (? IS NULL OR id < ?) "
            "ORDER BY id DESC LIMIT ?");
        q.bind(1, user.value)
            .bind(2, before ? std::optional(before->value) : std::nullopt)
            .bind(3, before ? std::optional(before->value) : std::nullopt)
            .bind(4, static_cast<std::int64_t>(limit + 1));
        while (q.step()) page.sessions.push_back(read_session(q));
        if (page.sessions.size() > limit) {
            page.sessions.pop_back();
            page.next = page.sessions.back().id;
        }
        return page;
    });
}

net::awaitable<Result<Session>> SqliteStore::update_session(UserId user, SessionId id,
                                                             SessionPatch patch) {
    return on_writer([this, user, id, patch]() -> Result<Session> {
        auto& db = *writer_db_;
        Transaction tx(db, Transaction::Kind::write);
        db.cached(
              "UPDATE ai_chat_sessions SET title = COALESCE(?, title), "
              "system_prompt = COALESCE(?, system_prompt), model = COALESCE(?, model), "
              "last_updated = ? WHERE id = ? AND user_id = ?")
            .bind(1, patch.title)
            .bind(2, patch.system_prompt)
            .bind(3, patch.model)
            .bind(4, now_millis())
            .bind(5, id.value)
            .bind(6, user.value)
            .run();
        if (db.changes() == 0) return Error::not_found;
        auto session = find_session(db, user, id);
        if (!session) return Error::not_found;
        tx.commit();
        return *session;
    });
}

net::awaitable<Result<void>> SqliteStore::delete_session(UserId user, SessionId id) {
    // Named: GCC 12 mishandles a lambda temporary inside co_await.
    auto work = [this, user, id]() -> Result<void> {
        Transaction tx(*writer_db_, Transaction::Kind::write);
        // A live message's chunk rows stay for the log's collection; the
        // writer forgets its text.
        std::vector<std::string> live;
        {
            auto q = writer_db_->cached(
                "SELECT id FROM ai_chat_messages WHERE session_id = ? AND user_id = ? AND "
                "status = 'generating'");
            q.bind(1, id.value).bind(2, user.value);
            while (q.step()) live.push_back(q.text(0));
        }
        writer_db_->cached("DELETE FROM ai_chat_sessions WHERE id = ? AND user_id = ?")
            .bind(1, id.value)
            .bind(2, user.value)
            .run();
        if (writer_db_->changes() == 0) return Error::not_found;
        writer_db_->cached("DELETE FROM ai_chat_idempotency_keys WHERE session_id = ?")
            .bind(1, id.value)
            .run();
        tx.commit();
        chunk_log_.live.forget(live);
        chunk_log_.sessions.add(user.value, -1);
        return {};
    };
    auto r = co_await on_writer(std::move(work));
    if (r) notices_.announce(ChangeNotice{.sessions = {id}});
    co_return r;
}

net::awaitable<Result<std::vector<Message>>> SqliteStore::list_messages(UserId user, SessionId id) {
    return on_reader([this, user, id]() -> Result<std::vector<Message>> {
        Transaction tx(*reader_db_, Transaction::Kind::read);
        if (!find_session(*reader_db_, user, id)) return Error::not_found;
        return query_messages(*reader_db_, reader_texts(*reader_db_, chunk_log_.live), select_messages("WHERE session_id = ? ORDER BY id"),
                              id.value);
    });
}

net::awaitable<Result<MessagePage>> SqliteStore::list_messages_page(UserId user, SessionId id,
                                                                    std::optional<MessageId> before,
                                                                    std::size_t limit) {
    return on_reader([this, user, id, before, limit]() -> Result<MessagePage> {
        Transaction tx(*reader_db_, Transaction::Kind::read);
        if (!find_session(*reader_db_, user, id)) return Error::not_found;
        MessagePage page;
        page.messages = query_messages(
            *reader_db_, reader_texts(*reader_db_, chunk_log_.live),
            select_messages("WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT ?"), id.value,
            before ? before->value : std::string("\x7f"), static_cast<std::int64_t>(limit + 1));
        if (page.messages.size() > limit) {
            page.messages.pop_back();
            page.next = page.messages.back().id;
        }
        std::reverse(page.messages.begin(), page.messages.end());
        return page;
    });
}

net::awaitable<Result<Message>> SqliteStore::get_message(UserId user, MessageId id) {
    return on_reader([this, user, id]() -> Result<Message> {
        Transaction tx(*reader_db_, Transaction::Kind::read);
        auto found = query_messages(*reader_db_, reader_texts(*reader_db_, chunk_log_.live), select_messages("WHERE id = ? AND user_id = ?"),
                                    id.value, user.value);
        if (found.empty()) return Error::not_found;
        return std::move(found.front());
    });
}

net::awaitable<Result<std::optional<Message>>> SqliteStore::next_assistant_message(
    UserId user, SessionId session, std::optional<MessageId> after) {
    return on_reader([this, user, session, after]() -> Result<std::optional<Message>> {
        Transaction tx(*reader_db_, Transaction::Kind::read);
        if (!find_session(*reader_db_, user, session)) return Error::not_found;
        auto found =
            query_messages(*reader_db_, reader_texts(*reader_db_, chunk_log_.live),
                           select_messages("WHERE session_id = ? AND role = 'assistant' AND id > ? "
                                           "ORDER BY id LIMIT 1"),
                           session.value, after ? after->value : std::string());
        if (found.empty()) return std::optional<Message>();
        return std::optional<Message>(std::move(found.front()));
    });
}

net::awaitable<Result<Changes>> SqliteStore::changed_since(UserId user, SessionId session,
                                                           Since since) {
    return on_reader([this, user, session, since]() -> Result<Changes> {
        Transaction tx(*reader_db_, Transaction::Kind::read);
        if (!find_session(*reader_db_, user, session)) return Error::not_found;
        // A generating message's change_seq and last_updated live in the
        // chunk log, so it is read whole and compared in assemble_changes;
        // ended messages are filtered by the query.
        auto generating = query_messages(
            *reader_db_, reader_texts(*reader_db_, chunk_log_.live), select_messages("WHERE session_id = ? AND status = 'generating'"),
            session.value);
        // Oldest change first, one more than the limit to know whether more wait.
        auto limit = since.limit > 0 ? static_cast<std::int64_t>(since.limit) + 1
                                     : std::numeric_limits<std::int64_t>::max();
        auto ended = query_messages(
            *reader_db_, reader_texts(*reader_db_, chunk_log_.live),
            select_messages("WHERE session_id = ? AND status != 'generating' AND change_seq > ? "
                            "AND last_updated > ? ORDER BY change_seq LIMIT ?"),
            session.value, since.seq.value_or(std::numeric_limits<std::int64_t>::min()),
            since.time.value_or(std::numeric_limits<std::int64_t>::min()), limit);
        PollRules rules{.resume = PollRules::Resume::after};
        {
            auto q = reader_db_->cached(
                "SELECT COALESCE(MAX(change_seq), 0) FROM ai_chat_messages WHERE session_id = ?");
            q.bind(1, session.value);
            if (q.step()) rules.horizon = q.integer(0);
        }
        return assemble_changes(std::move(ended), std::move(generating), since, rules);
    });
}

net::awaitable<Result<TurnOutcome>> SqliteStore::begin_turn(UserId user, SessionId session,
                                                            NewTurn turn) {
    // In a write group: a burst of sends commits together. What a turn
    // wrote is undone unless it made (or replayed) one.
    auto work = [user, session, turn](Database& db) -> Result<TurnOutcome> {
        auto now = now_millis();
        if (turn.idempotency_key) {
            db.cached(
                  "DELETE FROM ai_chat_idempotency_keys WHERE user_id = ? AND key = ? AND "
                  "created_at < ?")
                .bind(1, user.value)
                .bind(2, *turn.idempotency_key)
                .bind(3, now - kIdempotencyRetentionMs)
                .run();
            std::optional<std::tuple<std::string, std::string, std::string>> earlier;
            {
                auto q = db.cached(
                    "SELECT fingerprint, user_message_id, assistant_message_id FROM "
                    "ai_chat_idempotency_keys WHERE user_id = ? AND key = ?");
                q.bind(1, user.value).bind(2, *turn.idempotency_key);
                if (q.step()) earlier.emplace(q.text(0), q.text(1), q.text(2));
            }
            if (earlier) {
                auto& [fingerprint, user_id, assistant_id] = *earlier;
                if (fingerprint != turn.request_fingerprint) return Error::idempotency_key_reused;
                auto sql = select_messages("WHERE id = ? AND user_id = ?");
                auto u = query_messages(db, TextSource{}, sql, user_id, user.value);
                auto a = query_messages(db, TextSource{}, sql, assistant_id, user.value);
                if (u.empty() || a.empty()) return Error::not_found;
                return TurnOutcome{
                    .turn = Turn{.user_message = std::move(u.front()),
                                 .assistant_message = as_first_created(std::move(a.front())),
                                 .replayed = true}};
            }
        }
        if (turn.replay_only) return TurnOutcome{};
        auto found = find_session(db, user, session);
        if (!found) return Error::not_found;
        if (!allows(turn.allowed_models, found->model)) return Error::model_not_allowed;
        const auto seq = allocate_seq(db, 2);
        Message user_message{.id = new_message_id(),
                             .session_id = session,
                             .role = Role::user,
                             .content = turn.content,
                             .status = MessageStatus::completed,
                             .created_at = now,
                             .last_updated = now,
                             .change_seq = seq};
        Message assistant{.id = new_message_id(),
                          .session_id = session,
                          .role = Role::assistant,
                          .status = MessageStatus::generating,
                          .is_streaming = true,
                          .created_at = now,
                          .last_updated = now,
                          .model = found->model,
                          .change_seq = seq + 1};
        insert_message(db, user, user_message);
        try {
            insert_message(db, user, assistant);
        } catch (const SqliteError& e) {
            // The session has an answer generating: the unique index on
            // generating messages refuses a second, whichever writer asks.
            if ((e.code() & 0xff) != SQLITE_CONSTRAINT) throw;
            // The group undoes the user message: this outcome has no turn.
            auto q = db.cached(
                "SELECT id FROM ai_chat_messages WHERE session_id = ? AND status = 'generating'");
            q.bind(1, session.value);
            if (q.step()) return TurnOutcome{.active_message = MessageId{q.text(0)}};
            throw;
        }
        db.cached(
              "UPDATE ai_chat_messages SET owner_node = ?, lease_expires_at = ?, lease_epoch = 1 "
              "WHERE id = ?")
            .bind(1, turn.lease.node)
            .bind(2, now + turn.lease.ttl.count())
            .bind(3, assistant.id.value)
            .run();
        db.cached("UPDATE ai_chat_sessions SET last_updated = ? WHERE id = ?")
            .bind(1, now)
            .bind(2, session.value)
            .run();
        if (turn.idempotency_key) {
            db.cached(
                  "INSERT INTO ai_chat_idempotency_keys (user_id, key, fingerprint, session_id, "
                  "user_message_id, assistant_message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(1, user.value)
                .bind(2, *turn.idempotency_key)
                .bind(3, turn.request_fingerprint)
                .bind(4, session.value)
                .bind(5, user_message.id.value)
                .bind(6, assistant.id.value)
                .bind(7, now)
                .run();
        }
        return TurnOutcome{.turn = Turn{.user_message = std::move(user_message),
                                        .assistant_message = std::move(assistant),
                                        .system_prompt = std::move(found->system_prompt)}};
    };
    auto made = [](const Result<TurnOutcome>& r) { return r && r->turn; };
    // A new answer is the writer's from its start: its first commit is
    // planned from here, with no read of the message or walk of the log.
    auto remember = [this](const TurnOutcome& outcome) {
        if (outcome.turn->replayed) return;
        const auto& m = outcome.turn->assistant_message;
        chunk_log_.live.remember(m.id.value, LiveTexts::Tail{.version = m.version,
                                                             .epoch = 1,
                                                             .change_seq = m.change_seq,
                                                             .last_updated = m.last_updated});
    };
    // Named: GCC 12 mishandles temporaries inside co_await.
    auto pending = in_write_group<TurnOutcome>(std::move(work), made, remember);
    auto r = co_await std::move(pending);
    if (r && r->turn && !r->turn->replayed) notices_.announce(ChangeNotice{.sessions = {session}});
    co_return r;
}

net::awaitable<Result<CommitResult>> SqliteStore::commit(const Batch& batch) {
    // Named: GCC 12 mishandles a lambda temporary inside co_await. The batch
    // outlives the work: this coroutine awaits it.
    auto work = [this, &batch]() -> Result<CommitResult> {
        try {
            return commit_batch(*writer_db_, chunk_log_, batch, Isolation::none);
        } catch (const SqliteError& e) {
            if (!is_write_error(e)) throw;
            log::warn("sqlite refused a write of a commit of {}: {}; retrying each write alone",
                      batch.writes.size(), e.what());
        }
        return commit_batch(*writer_db_, chunk_log_, batch, Isolation::per_write);
    };
    auto r = co_await on_writer(std::move(work));
    if (r) {
        // Each stored write is announced with its text when that is all it
        // changes; reasoning and ends as a change of the message.
        ChangeNotice changed;
        changed.chunks.reserve(batch.writes.size());
        for (std::size_t i = 0; i < batch.writes.size() && i < r->writes.size(); ++i) {
            if (r->writes[i].error) continue;
            const auto& w = batch.writes[i];
            if (w.terminal || w.rewrite_content || !w.reasoning.empty() || w.text.empty()) {
                changed.messages.push_back(w.id);
            } else {
                changed.chunks.push_back({.id = w.id,
                                          .offset = w.offset,
                                          .text = w.text,
                                          .version = r->writes[i].version,
                                          .at = batch.at});
            }
        }
        notices_.announce(std::move(changed));
    }
    co_return r;
}

net::awaitable<Result<std::vector<HeldLease>>> SqliteStore::renew_leases(LeaseTerms lease) {
    return on_writer([this, lease]() -> Result<std::vector<HeldLease>> {
        auto& db = *writer_db_;
        std::vector<HeldLease> held;
        auto q = db.cached(
            "UPDATE ai_chat_messages SET lease_expires_at = ? WHERE owner_node = ? AND "
            "status = 'generating' RETURNING id, lease_epoch");
        q.bind(1, now_millis() + lease.ttl.count()).bind(2, lease.node);
        while (q.step()) held.push_back({MessageId{q.text(0)}, q.integer(1)});
        return held;
    });
}

net::awaitable<Result<Claims>> SqliteStore::claim_orphans(LeaseTerms lease, ClaimLimits limits) {
    // Named: GCC 12 mishandles a lambda temporary inside co_await.
    auto work = [this, lease, limits]() -> Result<Claims> {
        auto& db = *writer_db_;
        Transaction tx(db, Transaction::Kind::write);
        const auto now = now_millis();
        struct Orphan {
            std::string id;
            std::int64_t recoveries;
            bool cancel;
        };
        std::vector<Orphan> found;
        {
            auto q = db.cached(
                "SELECT id, recoveries, cancel_requested FROM ai_chat_messages WHERE "
                "status = 'generating' AND COALESCE(lease_expires_at, 0) < ? ORDER BY id LIMIT ?");
            q.bind(1, now).bind(2, static_cast<std::int64_t>(limits.limit));
            while (q.step()) found.push_back({q.text(0), q.integer(1), q.integer(2) != 0});
        }
        // The same rows, whole: their texts in one walk of the log.
        auto messages = query_messages(
            db, TextSource{},
            select_messages("WHERE status = 'generating' AND COALESCE(lease_expires_at, 0) < ? "
                            "ORDER BY id LIMIT ?"),
            now, static_cast<std::int64_t>(limits.limit));
        if (messages.size() != found.size())
            throw SqliteError(SQLITE_CORRUPT, "the orphans changed inside a transaction");
        Claims claims;
        for (std::size_t i = 0; i < found.size(); ++i) {
            const auto& [id, recoveries, cancel] = found[i];
            auto& m = messages[i];
            if (cancel || recoveries >= limits.max_recoveries) {
                auto interrupted = [&](std::string_view v) {
                    return cancel ? std::nullopt : std::optional<std::string>(v);
                };
                db.cached(
                      "UPDATE ai_chat_messages SET content = ?, status = ?, is_streaming = 0, "
                      "error_code = ?, error_message = ?, finish_reason = ?, "
                      "version = ?, last_updated = ?, change_seq = ?, lease_expires_at = NULL "
                      "WHERE id = ?")
                    .bind(1, m.content)
                    .bind(2, std::string_view(cancel ? "cancelled" : "error"))
                    .bind(3, interrupted("interrupted"))
                    .bind(4, interrupted("the server stopped while this message was generating"))
                    .bind(5, std::string_view(cancel ? "cancelled" : "interrupted"))
                    .bind(6, m.version + 1)
                    .bind(7, now)
                    .bind(8, allocate_seq(db, 1))
                    .bind(9, id)
                    .run();
                claims.ended.push_back(MessageId{id});
                continue;
            }
            auto q = db.cached(
                "UPDATE ai_chat_messages SET owner_node = ?, lease_epoch = lease_epoch + 1, "
                "recoveries = recoveries + 1, lease_expires_at = ? WHERE id = ? "
                "RETURNING user_id, lease_epoch");
            q.bind(1, lease.node).bind(2, now + lease.ttl.count()).bind(3, id);
            if (!q.step()) throw SqliteError(SQLITE_CORRUPT, "a claimed message vanished");
            claims.continued.push_back({UserId{q.text(0)}, std::move(m), q.integer(1)});
        }
        tx.commit();
        // Ended ones are the writer's no more; continued ones it knows whole
        // now, under their new epoch (their first writes need no walk of the
        // log, which after a crash at scale would be one per message).
        std::vector<std::string> ended;
        for (const auto& id : claims.ended) ended.push_back(id.value);
        chunk_log_.live.forget(ended);
        for (const auto& c : claims.continued) {
            const auto& m = c.message;
            chunk_log_.live.remember(
                m.id.value, LiveTexts::Tail{.text = m.content,
                                            .version = m.version,
                                            .epoch = c.epoch,
                                            .reasoning_end = static_cast<std::int64_t>(m.reasoning.size()),
                                            .change_seq = m.change_seq,
                                            .last_updated = m.last_updated});
        }
        return claims;
    };
    auto r = co_await on_writer(std::move(work));
    if (r) notices_.announce(ChangeNotice{.messages = r->ended});
    co_return r;
}

net::awaitable<Result<std::size_t>> SqliteStore::release_stale_leases(std::string) {
    // This process holds the data directory: whoever ran a generating
    // message before is gone, whatever its node id was.
    return on_writer([this]() -> Result<std::size_t> {
        auto& db = *writer_db_;
        db.cached("UPDATE ai_chat_messages SET lease_expires_at = 0 WHERE status = 'generating'")
            .run();
        return static_cast<std::size_t>(db.changes());
    });
}

net::awaitable<Result<void>> SqliteStore::request_cancel(UserId user, MessageId id) {
    return on_writer([this, user, id]() -> Result<void> {
        auto& db = *writer_db_;
        db.cached(
              "UPDATE ai_chat_messages SET cancel_requested = 1 WHERE id = ? AND user_id = ? AND "
              "status = 'generating'")
            .bind(1, id.value)
            .bind(2, user.value)
            .run();
        if (db.changes() > 0) return {};
        auto q = db.cached("SELECT 1 FROM ai_chat_messages WHERE id = ? AND user_id = ?");
        q.bind(1, id.value).bind(2, user.value);
        return q.step() ? Error::not_generating : Error::not_found;
    });
}

net::awaitable<Result<std::vector<MessageId>>> SqliteStore::cancel_requests(std::string node) {
    return on_reader([this, node]() -> Result<std::vector<MessageId>> {
        std::vector<MessageId> ids;
        auto q = reader_db_->cached(
            "SELECT id FROM ai_chat_messages WHERE owner_node = ? AND cancel_requested AND "
            "status = 'generating'");
        q.bind(1, node);
        while (q.step()) ids.push_back(MessageId{q.text(0)});
        return ids;
    });
}

net::awaitable<Result<std::size_t>> SqliteStore::release_leases(std::string node,
                                                                std::vector<MessageId> only) {
    return on_writer([this, node, only]() -> Result<std::size_t> {
        auto& db = *writer_db_;
        Transaction tx(db, Transaction::Kind::write);
        std::size_t released = 0;
        auto release = [&](const std::optional<std::string>& id) {
            auto q = db.cached(
                "UPDATE ai_chat_messages SET lease_expires_at = 0 WHERE owner_node = ? AND "
                "status = 'generating' AND (? IS NULL OR id = ?)");
            q.bind(1, node).bind(2, id).bind(3, id).run();
            released += static_cast<std::size_t>(db.changes());
        };
        if (only.empty()) release(std::nullopt);
        for (const auto& id : only) release(id.value);
        tx.commit();
        return released;
    });
}

std::unique_ptr<ChangeListener> SqliteStore::listen(net::any_io_executor ex) {
    return notices_.listen(std::move(ex));
}

net::awaitable<Result<std::vector<Message>>> SqliteStore::read_tails(std::vector<ReadPosition> at) {
    return on_reader([this, at = std::move(at)]() -> Result<std::vector<Message>> {
        auto& db = *reader_db_;
        Transaction tx(db, Transaction::Kind::read);
        auto texts = reader_texts(db, chunk_log_.live);
        std::vector<MessageRow> rows;
        std::vector<std::int64_t> from;  // the reader's offset, per row
        for (const auto& p : at) {
            auto q = db.cached(select_messages("WHERE id = ?"));
            q.bind(1, p.id.value);
            if (!q.step()) continue;  // its session was deleted
            rows.push_back(read_message_row(q));
            from.push_back(p.offset);
        }
        struct Piece {
            std::size_t row;
            std::int64_t offset;
            std::string text;
            std::int64_t seq;
            UnixMillis at;
            std::int64_t version;
        };
        std::vector<Piece> pieces;
        read_texts(
            db, texts, rows,
            [&](std::size_t i) {
                auto stored = static_cast<std::int64_t>(rows[i].message.content.size());
                return std::max(from[i], stored);
            },
            [&](std::size_t i, std::int64_t offset, std::string_view text, std::int64_t seq,
                UnixMillis when, std::int64_t version) {
                pieces.push_back({i, offset, std::string(text), seq, when, version});
            });
        std::vector<std::string> ids;
        ids.reserve(rows.size());
        TailAssembler tails;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            ids.push_back(rows[i].message.id.value);
            tails.add_message(std::move(rows[i].message), from[i]);
        }
        for (const auto& p : pieces)
            tails.add_chunk(ids[p.row], p.offset, p.text, p.seq, p.at, p.version);
        return tails.take();
    });
}

net::awaitable<Result<void>> SqliteStore::ping() {
    return on_writer([this]() -> Result<void> {
        writer_db_->cached("SELECT 1").run();
        return {};
    });
}

}  // namespace chatd::store::sqlite
