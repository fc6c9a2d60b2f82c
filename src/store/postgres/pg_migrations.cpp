#include "store/postgres/pg_migrations.hpp"

namespace chatd::store::postgres {
namespace {

// Times are UTC milliseconds since the epoch. change_seq holds the id of the
// transaction that made the change (pg_current_xact_id()), which poll
// compares with its snapshot's xmin (pg_store.hpp).
constexpr std::string_view kBase[] = {
    R"sql(CREATE TABLE ai_chat_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    title         TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    model         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_updated  BIGINT NOT NULL
))sql",
    "CREATE INDEX ai_chat_sessions_by_user ON ai_chat_sessions (user_id, id)",
    R"sql(CREATE TABLE ai_chat_messages (
    id               TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES ai_chat_sessions (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content          TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'completed'
                     CHECK (status IN ('generating', 'completed', 'error', 'cancelled')),
    is_streaming     BOOLEAN NOT NULL DEFAULT false,
    created_at       BIGINT NOT NULL,
    last_updated     BIGINT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    change_seq       BIGINT NOT NULL,
    error_code       TEXT,
    error_message    TEXT,
    model            TEXT NOT NULL DEFAULT '',
    finish_reason    TEXT,
    input_tokens     BIGINT,
    output_tokens    BIGINT,
    owner_node       TEXT,
    lease_expires_at BIGINT
))sql",
    "CREATE INDEX ai_chat_messages_by_session ON ai_chat_messages (session_id, id)",
    "CREATE INDEX ai_chat_messages_by_change ON ai_chat_messages (session_id, change_seq)",
    "CREATE INDEX ai_chat_messages_generating ON ai_chat_messages (status) "
    "WHERE status = 'generating'",
    R"sql(CREATE TABLE ai_chat_idempotency_keys (
    user_id              TEXT NOT NULL,
    key                  TEXT NOT NULL,
    fingerprint          TEXT NOT NULL,
    session_id           TEXT NOT NULL,
    user_message_id      TEXT NOT NULL,
    assistant_message_id TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
))sql",
};

// One generating message per session, held by the database itself.
constexpr std::string_view kOneGenerating[] = {
    "CREATE UNIQUE INDEX ai_chat_messages_one_generating ON ai_chat_messages (session_id) "
    "WHERE status = 'generating'",
};

// The chunk log keyed by (message, byte offset): idempotent chunk writes, and
// a live message reads its own chunks only. Each row carries the message's
// version and the writing transaction's id; rows go with their message's end
// (and with the message, by the foreign key).
constexpr std::string_view kChunks[] = {
    R"sql(CREATE TABLE ai_chat_message_chunks (
    message_id  TEXT NOT NULL REFERENCES ai_chat_messages (id) ON DELETE CASCADE,
    byte_offset BIGINT NOT NULL,
    text        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    change_seq  BIGINT NOT NULL,
    PRIMARY KEY (message_id, byte_offset)
))sql",
};

// Leases (DESIGN §7): owner_node and lease_expires_at (the server's clock, ms)
// exist since version 1; the epoch fences a stale owner's writes, and
// recoveries counts takeovers. A row without an owner (from before) is an
// orphan any node takes. cancel_requested carries a cancel made on another
// node than the owner's; the small index is what each owner reads for it.
constexpr std::string_view kLeases[] = {
    "ALTER TABLE ai_chat_messages ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 1, "
    "ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0, "
    "ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false",
    "CREATE INDEX ai_chat_messages_cancel_requested ON ai_chat_messages (owner_node) "
    "WHERE cancel_requested AND status = 'generating'",
};

// A chat id a client chose (the AI SDK's), one per user's session: the
// unique index is what makes concurrent first sends of a chat create one
// session. NULLs are distinct, so REST sessions need none.
constexpr std::string_view kChatIds[] = {
    "ALTER TABLE ai_chat_sessions ADD COLUMN chat_id TEXT",
    "CREATE UNIQUE INDEX ai_chat_sessions_by_chat ON ai_chat_sessions (user_id, chat_id)",
};

// The model's reasoning, beside the content: appended in place as it
// commits (it is not in the chunk log, which holds the content).
constexpr std::string_view kReasoning[] = {
    "ALTER TABLE ai_chat_messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT ''",
};

constexpr PgMigration kMigrations[] = {
    {1, kBase},
    {2, kOneGenerating},
    {3, kChunks},
    {4, kLeases},
    {5, kChatIds},
    {6, kReasoning},
};

}  // namespace

std::span<const PgMigration> pg_migrations() {
    return kMigrations;
}

}  // namespace chatd::store::postgres
