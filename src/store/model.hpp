#pragma once
// The stored shapes: sessions, messages, and the batches the persister commits.
#include "core/ids.hpp"
#include "core/time.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatd::store {

enum class Role { user, assistant, system };
enum class MessageStatus { generating, completed, error, cancelled };

std::string_view to_string(Role r);
std::string_view to_string(MessageStatus s);
std::optional<Role> role_from_string(std::string_view s);
std::optional<MessageStatus> status_from_string(std::string_view s);

struct Usage {
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
};

struct MessageError {
    std::string code;
    std::string message;
};

struct Session {
    SessionId id;
    UserId user_id;
    std::string title;
    std::string system_prompt;
    std::string model;
    UnixMillis created_at = 0;
    UnixMillis last_updated = 0;
    // The id a client chose for this chat (the AI SDK's chat id), unique per
    // user; none for a session made through the REST API.
    std::optional<std::string> chat_id;
};

struct Message {
    MessageId id;
    SessionId session_id;
    Role role = Role::user;
    std::string content;  // committed text only
    // The model's reasoning (thinking) before or beside its answer, committed
    // text only: its own text, never part of content, never sent back to the
    // model as history.
    std::string reasoning;
    MessageStatus status = MessageStatus::completed;
    bool is_streaming = false;
    UnixMillis created_at = 0;
    UnixMillis last_updated = 0;
    std::int64_t version = 1;
    std::optional<MessageError> error;
    std::string model;
    std::optional<std::string> finish_reason;
    std::optional<Usage> usage;
    // Store-wide order of changes; poll cursors use it. While a message
    // generates, its row keeps its creation sequence and its chunk log rows
    // carry the later ones.
    std::int64_t change_seq = 0;
};

struct NewSession {
    std::string title;
    std::string system_prompt;
    std::string model;
    // The user's sessions at most, this one included (0: no limit);
    // too_many_sessions beyond. Checked in the insert's transaction.
    std::size_t max_per_user = 0;
    // Get-or-create by the client's chat id: the user's session with this
    // chat id when there is one (the rest of NewSession is then unused),
    // else a new one carrying it.
    std::optional<std::string> chat_id;
};

// A change to a session: what is set changes, the rest stays. Also what a
// request asks of a new session (engine::SessionDraft).
struct SessionPatch {
    std::optional<std::string> title;
    std::optional<std::string> system_prompt;
    std::optional<std::string> model;
};

// Who runs a generating message (DESIGN §7): one node at a time, under a
// lease that expires `ttl` after it was taken or last renewed. Each taking
// (the first by begin_turn, then one per takeover) bumps the message's lease
// epoch; every write carries the epoch it was produced under, and the store
// refuses a write of an older one (fencing), so a node that stalled past its
// lease and wakes after a takeover stores nothing more.
struct LeaseTerms {
    std::string node;  // unique among the live nodes of one database
    std::chrono::milliseconds ttl{10000};
};

// The models an answer may start with, shared by every send (null: any).
using ModelList = std::shared_ptr<const std::vector<std::string>>;

// Whether `model` is in `allowed`.
bool allows(const ModelList& allowed, std::string_view model);

// One user turn: the user message and the empty assistant message, created in
// one transaction, together with the idempotency record if a key was given.
// The assistant message starts under `lease`, at epoch 1, with the session's
// model as that transaction reads it; a model outside `allowed_models` (when
// given) is refused (model_not_allowed) and nothing is written.
struct NewTurn {
    std::string content;
    ModelList allowed_models;
    std::optional<std::string> idempotency_key;
    std::string request_fingerprint;  // compared when the key is reused
    // Only replay what an earlier send with this key made; create nothing
    // (the outcome is empty when there was none).
    bool replay_only = false;
    LeaseTerms lease;
};

struct Turn {
    Message user_message;
    Message assistant_message;  // as first created: empty, generating
    bool replayed = false;      // true when an earlier send with the same key made it
    // The session's system prompt as the turn's transaction read it, for the
    // answer's request (empty in a replay, which starts nothing).
    std::string system_prompt;
};

// How long an idempotency key is kept (at least): 24 h.
inline constexpr std::int64_t kIdempotencyRetentionMs = 24 * 3600 * 1000;

// The assistant message `m` exactly as begin_turn first returned it (what a
// replayed send answers again, however far the answer has come since).
Message as_first_created(Message m);

struct TurnOutcome {
    std::optional<Turn> turn;
    std::optional<MessageId> active_message;  // set instead of turn on conflict
};

// The end of a generation, written with its last chunk.
struct Terminal {
    MessageStatus status = MessageStatus::completed;
    std::optional<MessageError> error;
    std::optional<std::string> finish_reason;
    std::optional<Usage> usage;
};

// One message's share of a commit: text appended at byte `offset` and, when
// the generation ended, its terminal state, under lease `epoch`. Writes are idempotent, keyed by
// (id, offset): what the store already holds of `text` is skipped, so a write
// retried after an unknown outcome, even grown by later text, stores each
// byte once and in order (I2).
struct MessageWrite {
    MessageId id;
    std::int64_t epoch = 1;  // the lease it was produced under; a stale one is refused
    std::int64_t offset = 0;
    std::string text;
    // Reasoning appended at byte `reasoning_offset` of the message's
    // reasoning, idempotent the same way as `text`.
    std::int64_t reasoning_offset = 0;
    std::string reasoning;
    std::optional<Terminal> terminal;
    // Commit mode `per-chunk` (the seed's baseline): rewrite the whole content
    // column on every chunk instead of appending to the chunk log.
    bool rewrite_content = false;
    std::string full_content;  // written when terminal or rewrite_content
};

struct Batch {
    std::vector<MessageWrite> writes;
    UnixMillis at = 0;
};

// What became of one write of a commit.
struct WriteResult {
    // Empty when the write is stored (by this commit or an earlier attempt).
    // not_generating: the message has ended or is gone, so it takes no more
    // text; lease_lost: another node has taken the message over; store_failure: the write itself is bad (out of order, too large
    // for the store). Either way only this write's generation is affected.
    boost::system::error_code error;
    std::int64_t version = 0;  // the message's version with this write stored
};

// One result per write of the batch, in the batch's order.
struct CommitResult {
    std::vector<WriteResult> writes;
};

struct SessionPage {
    std::vector<Session> sessions;
    std::optional<SessionId> next;
};

// A generating message this node has just taken over, with the user who owns
// it and the lease epoch its writes carry.
struct ClaimedMessage {
    UserId user;
    Message message;  // committed chunks as content, to be continued
    std::int64_t epoch = 0;
};

// Which orphans (generating messages whose lease has expired) a node takes.
struct ClaimLimits {
    std::size_t limit = 16;  // at most this many per call, oldest first
    // Takeovers a message gets: one that has had this many already is ended
    // error/interrupted with its content instead (a generation that keeps
    // killing its owner is not retried forever). 0 ends every orphan taken.
    int max_recoveries = 3;
};

struct Claims {
    std::vector<ClaimedMessage> continued;  // now under this node's lease
    std::vector<MessageId> ended;  // ended error/interrupted (or cancelled), content kept
};

// A lease this node holds, as renewed.
struct HeldLease {
    MessageId id;
    std::int64_t epoch = 0;
};

// Text a commit appended to a generating message, carried by the notice
// itself when it fits, so that a follower holding the bytes before it need
// not read the store.
struct ChunkNotice {
    MessageId id;
    std::int64_t offset = 0;
    std::string text;
    std::int64_t version = 0;  // the message's, with this text stored
    UnixMillis at = 0;
};

// Committed changes, as a store announces them to the nodes listening
// (ChatStore::listen): which messages' text or status changed (with the text
// itself where it fits), and in which sessions messages were added or
// removed. `everything`: notices may have been lost (a listener reconnected,
// or one notice had too much to name), so whatever a node follows may have
// changed.
struct ChangeNotice {
    std::vector<MessageId> messages;
    std::vector<SessionId> sessions;
    // Messages whose change was only this text (they are not in `messages`).
    std::vector<ChunkNotice> chunks;
    bool everything = false;

    bool empty() const {
        return messages.empty() && sessions.empty() && chunks.empty() && !everything;
    }
};

// Where a reader of a message is: the bytes of its content it holds. (Its
// reasoning is read whole: a message's reasoning is stored in one piece.)
struct ReadPosition {
    MessageId id;
    std::int64_t offset = 0;
};

struct Changes {
    std::vector<Message> messages;
    bool has_more_generating = false;
    std::int64_t next_seq = 0;
    // More changes than `Since::limit` waited: the rest come from next_seq.
    bool truncated = false;
};

// Poll's `since`: a change sequence from an earlier answer, or a wall-clock
// time; and at most how many messages to answer (0: all), oldest change first.
struct Since {
    std::optional<std::int64_t> seq;
    std::optional<UnixMillis> time;
    std::size_t limit = 0;
};

// A page of a session's history, oldest first; `next` (when older messages
// exist) is the `before` of the page preceding it.
struct MessagePage {
    std::vector<Message> messages;
    std::optional<MessageId> next;
};

}  // namespace chatd::store
