#pragma once
// One live assistant message: the text it has committed (visible) and the text
// produced but not yet committed (invisible, I1). Lives on the I/O thread; the
// engine's registry owns it while it runs, subscribers hold shared_ptrs to read
// it, and it never owns its subscribers: it only wakes them.
#include "core/log.hpp"
#include "core/wakeup.hpp"
#include "engine/generation_slots.hpp"
#include "engine/message_feed.hpp"
#include "llm/provider.hpp"
#include "store/model.hpp"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chatd::engine {

enum class CommitMode {
    group,      // one commit for every generation's pending text (DESIGN §5)
    per_chunk,  // the seed's baseline: one commit per token, content rewritten
};

// Readers see it as a MessageFeed; the engine drives it as producer and
// persister.
class Generation final : public MessageFeed {
public:
    // `slot`: its place among the running generations, held until it ends;
    // `epoch`: the lease epoch it runs under (store::LeaseTerms).
    Generation(store::Message message, UserId user, GenerationSlots::Slot slot,
               std::int64_t epoch = 1);

    const MessageId& id() const { return message_.id; }
    const SessionId& session_id() const { return message_.session_id; }
    const UserId& user() const { return user_; }
    std::int64_t epoch() const { return epoch_; }
    // The request that started it, for its log lines (empty after a
    // takeover or a restart: no request of this node's caused it).
    const std::string& request_id() const { return request_id_; }
    void set_request_id(std::string id) { request_id_ = std::move(id); }
    log::Context log_context() const { return {request_id_}; }
    // The session's system prompt as the send that started it read it: its
    // requests are built with it, without reading the session again. None
    // after a takeover or a restart: the session is read then.
    const std::optional<std::string>& system_prompt() const { return system_prompt_; }
    void set_system_prompt(std::string prompt) { system_prompt_ = std::move(prompt); }

    // Committed text only; grows after each commit of this message.
    const std::string& committed() const { return message_.content; }
    // The message as stored: committed content, current status and version.
    const store::Message& message() const override { return message_; }
    // True once the terminal state is committed.
    bool ended() const { return message_.status != store::MessageStatus::generating; }
    // True once a terminal state is requested (committed or not), or the
    // generation is suspended or moved: no more text is taken either way.
    bool finishing() const { return finish_requested_ || suspended_ || moved_; }
    // Its lease went to another node, which goes on from what is stored:
    // this copy takes and commits nothing more, and readers of it read the
    // store instead (its status here stays generating).
    bool moved() const { return moved_; }
    bool stale() const override { return moved_; }
    void move_away();
    // Shutdown: stop taking text, without an end. What is pending still
    // commits; the message stays generating in the store for whoever
    // continues it (the next start).
    void suspend() { suspended_ = true; }

    // Wakes `w` on every commit of this message, until it expires.
    void subscribe(std::weak_ptr<Wakeup> w) override { subscribers_.add(std::move(w)); }

    // Producer side. append() and append_reasoning() after finishing() are
    // ignored. Reasoning is committed with the text, in its own field.
    void append(std::string text);
    void append_reasoning(std::string text);
    // Requests the terminal state; the first request wins.
    void finish(store::Terminal terminal);
    // The provider stream the engine is reading, while it reads it (the
    // engine's coroutine owns the stream); cancel() goes through it.
    void attach_stream(llm::ProviderStream* stream) { stream_ = stream; }
    llm::ProviderStream* stream() const { return stream_; }

    // Persister side.
    bool has_pending() const {
        return !pending_.empty() || !pending_reasoning_.empty() || terminal_.has_value();
    }
    // Takes pending text (all of it, or one token in per-chunk mode), all
    // pending reasoning and, when nothing else is pending, the terminal state.
    store::MessageWrite take(CommitMode mode);
    // The commit of `w` failed: put it back in front of what is pending.
    void restore(store::MessageWrite w);
    // The commit of `w` succeeded (the message is at `version` now): make it
    // visible and wake subscribers.
    void committed(const store::MessageWrite& w, UnixMillis at, std::int64_t version);
    // Nothing after the committed text will be stored (the store refused a
    // write, or is out too long): drops whatever is pending and asks for
    // `terminal` instead of any end requested before. Only while no write
    // of it is in a commit.
    void end_after_committed(store::Terminal terminal);
    // The message ended in the store without this generation's end (the
    // store refused to take any more): `stored` is how it ended.
    void adopt_end(store::Message stored);

    // Bytes produced and not yet committed, reasoning included: pending, and
    // in a commit.
    std::size_t uncommitted_bytes() const {
        return produced_bytes_ - message_.content.size() + produced_reasoning_bytes_ -
               message_.reasoning.size();
    }
    // Text of the answer produced (committed or not), and of its reasoning.
    std::size_t produced_bytes() const { return produced_bytes_; }
    std::size_t produced_reasoning_bytes() const { return produced_reasoning_bytes_; }
    // Every byte appended so far is committed (none pending or in a commit).
    bool settled() const { return uncommitted_bytes() == 0; }
    bool queued_for_commit = false;  // persister bookkeeping
    // Its end is stored: its slot goes to the next generation.
    void release_slot() { slot_.release(); }

private:
    void notify();
    // Forgets what was produced and not committed.
    void drop_pending();

    store::Message message_;
    UserId user_;
    std::string request_id_;
    std::optional<std::string> system_prompt_;
    std::deque<std::string> pending_;
    std::size_t pending_bytes_ = 0;
    std::size_t produced_bytes_ = 0;           // committed content at start + appended since
    std::string pending_reasoning_;
    std::size_t produced_reasoning_bytes_ = 0;  // the same, of the reasoning
    std::optional<store::Terminal> terminal_;  // requested, not yet taken by a commit
    // Stays true from the first finish() on, also while the persister holds the
    // terminal state in a commit: no second terminal state can slip in.
    bool finish_requested_ = false;
    bool suspended_ = false;
    bool moved_ = false;
    std::int64_t epoch_ = 1;
    llm::ProviderStream* stream_ = nullptr;
    GenerationSlots::Slot slot_;
    Subscribers subscribers_;
};

}  // namespace chatd::engine
