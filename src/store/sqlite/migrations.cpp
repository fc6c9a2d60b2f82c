#include "store/sqlite/migrations.hpp"

#include "core/time.hpp"

namespace chatd::store::sqlite {
namespace {

// Times are UTC milliseconds since the epoch. Message `content` holds the whole
// text once a message ends; while it generates, its text is the chunk log.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE ai_chat_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    title         TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    model         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL
);
CREATE INDEX ai_chat_sessions_by_user ON ai_chat_sessions (user_id, id);

CREATE TABLE ai_chat_messages (
    id               TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES ai_chat_sessions (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content          TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'completed'
                     CHECK (status IN ('generating', 'completed', 'error', 'cancelled')),
    is_streaming     INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    last_updated     INTEGER NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1,
    change_seq       INTEGER NOT NULL,
    error_code       TEXT,
    error_message    TEXT,
    model            TEXT NOT NULL DEFAULT '',
    finish_reason    TEXT,
    input_tokens     INTEGER,
    output_tokens    INTEGER,
    owner_node       TEXT,
    lease_expires_at INTEGER
);
CREATE INDEX ai_chat_messages_by_session ON ai_chat_messages (session_id, id);
CREATE INDEX ai_chat_messages_by_change ON ai_chat_messages (session_id, change_seq);
CREATE INDEX ai_chat_messages_generating ON ai_chat_messages (status) WHERE status = 'generating';

-- The chunk log is append-ordered: its key is the change sequence of the
-- commit that wrote the row, so a group commit of N streams appends to the end
-- of one B-tree instead of touching one page per stream. A live message's
-- chunks are the rows after its creation sequence (its row's change_seq while
-- it generates); its version, last_updated and change_seq derive from them, so
-- commits do not rewrite message rows. Rows of ended messages go in bulk.
CREATE TABLE ai_chat_message_chunks (
    seq         INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL,
    byte_offset INTEGER NOT NULL,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE ai_chat_idempotency_keys (
    user_id              TEXT NOT NULL,
    key                  TEXT NOT NULL,
    fingerprint          TEXT NOT NULL,
    session_id           TEXT NOT NULL,
    user_message_id      TEXT NOT NULL,
    assistant_message_id TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
)sql"},
    // One generating message per session, held by the database itself rather
    // than by a check before the insert: several writers (processes, nodes)
    // cannot both start an answer in one session.
    {2, R"sql(
CREATE UNIQUE INDEX ai_chat_messages_one_generating
    ON ai_chat_messages (session_id) WHERE status = 'generating';
)sql"},
    // The chunk log keyed by (message, byte offset) as well as by commit
    // order: a unique index makes chunk writes idempotent for several
    // writers and lets a live message read its own chunks only; each row
    // carries the message's version with it, so the newest row tells a live
    // message's version without counting. Rows of ended messages are garbage
    // and not carried over. The change sequence gets its own counter, read
    // and bumped inside each write transaction, so several store clients on
    // one file allocate it in commit order.
    {3, R"sql(
CREATE TABLE ai_chat_message_chunks_v3 (
    seq         INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL,
    byte_offset INTEGER NOT NULL,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL
);
INSERT INTO ai_chat_message_chunks_v3 (seq, message_id, byte_offset, text, created_at, version)
SELECT c.seq, c.message_id, c.byte_offset, c.text, c.created_at,
       m.version + (SELECT COUNT(*) FROM ai_chat_message_chunks e
                    WHERE e.message_id = c.message_id AND e.seq > m.change_seq AND e.seq <= c.seq)
FROM ai_chat_message_chunks c JOIN ai_chat_messages m ON m.id = c.message_id
WHERE m.status = 'generating' AND c.seq > m.change_seq;
CREATE TABLE ai_chat_change_seq (value INTEGER NOT NULL);
INSERT INTO ai_chat_change_seq (value)
SELECT MAX((SELECT COALESCE(MAX(change_seq), 0) FROM ai_chat_messages),
           (SELECT COALESCE(MAX(seq), 0) FROM ai_chat_message_chunks));
DROP TABLE ai_chat_message_chunks;
ALTER TABLE ai_chat_message_chunks_v3 RENAME TO ai_chat_message_chunks;
CREATE UNIQUE INDEX ai_chat_message_chunks_by_message
    ON ai_chat_message_chunks (message_id, byte_offset);
)sql"},
    // Leases (DESIGN §7), as in PostgreSQL: the epoch fences a stale owner's
    // writes and recoveries counts takeovers. One process holds the file (the
    // data directory's lock), so at start every generating message is an
    // orphan; a row without an owner (from before) is one any time.
    // cancel_requested carries a cancel the owner has not seen yet.
    {4, R"sql(
ALTER TABLE ai_chat_messages ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 1;
ALTER TABLE ai_chat_messages ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ai_chat_messages ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX ai_chat_messages_cancel_requested ON ai_chat_messages (owner_node)
    WHERE cancel_requested AND status = 'generating';
)sql"},
    // A chat id a client chose (the AI SDK's), one per user's session: the
    // unique index is what makes concurrent first sends of a chat create
    // one session. NULLs are distinct, so REST sessions need none.
    {5, R"sql(
ALTER TABLE ai_chat_sessions ADD COLUMN chat_id TEXT;
CREATE UNIQUE INDEX ai_chat_sessions_by_chat ON ai_chat_sessions (user_id, chat_id);
)sql"},
    // The model's reasoning, beside the content: appended in place as it
    // commits (it is not in the chunk log, which holds the content).
    {6, R"sql(
ALTER TABLE ai_chat_messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';
)sql"},
    // The chunk log loses its index by message: with it, every commit wrote
    // one index page per live stream (a 4 KiB WAL frame for a token or two).
    // A generating message's chunks are the rows after its chunk_floor (its
    // content column holds every byte before); the store keeps its live
    // messages' text in memory, so neither writes nor reads search the log.
    // Rows go in bulk from the head, below every live message's floor.
    {7, R"sql(
ALTER TABLE ai_chat_messages ADD COLUMN chunk_floor INTEGER NOT NULL DEFAULT 0;
UPDATE ai_chat_messages SET chunk_floor = COALESCE(
    (SELECT MIN(seq) - 1 FROM ai_chat_message_chunks c WHERE c.message_id = ai_chat_messages.id),
    (SELECT value FROM ai_chat_change_seq))
WHERE status = 'generating';
DELETE FROM ai_chat_message_chunks WHERE message_id NOT IN
    (SELECT id FROM ai_chat_messages WHERE status = 'generating');
DROP INDEX ai_chat_message_chunks_by_message;
)sql"},
};

}  // namespace

std::span<const Migration> migrations() {
    return kMigrations;
}

int migrate(Database& db) {
    db.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    // Each step reads the version inside its own write transaction, so
    // processes that start together apply every migration once.
    auto current_version = [&db] {
        auto q = db.cached("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
        return q.step() ? static_cast<int>(q.integer(0)) : 0;
    };
    for (const auto& m : migrations()) {
        Transaction tx(db, Transaction::Kind::write);
        if (current_version() >= m.version) continue;
        db.exec(m.sql);
        db.cached("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(1, std::int64_t{m.version})
            .bind(2, now_millis())
            .run();
        tx.commit();
    }
    return current_version();
}

}  // namespace chatd::store::sqlite
