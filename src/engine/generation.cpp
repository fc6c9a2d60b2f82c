#include "engine/generation.hpp"

#include <algorithm>

namespace chatd::engine {

Generation::Generation(store::Message message, UserId user, GenerationSlots::Slot slot,
                       std::int64_t epoch)
    : message_(std::move(message)),
      user_(std::move(user)),
      produced_bytes_(message_.content.size()),
      produced_reasoning_bytes_(message_.reasoning.size()),
      epoch_(epoch),
      slot_(std::move(slot)) {}


void Generation::append(std::string text) {
    if (finishing() || text.empty()) return;
    pending_bytes_ += text.size();
    produced_bytes_ += text.size();
    pending_.push_back(std::move(text));
}

void Generation::append_reasoning(std::string text) {
    if (finishing() || text.empty()) return;
    produced_reasoning_bytes_ += text.size();
    pending_reasoning_ += text;
}

void Generation::finish(store::Terminal terminal) {
    if (finish_requested_) return;
    finish_requested_ = true;
    terminal_ = std::move(terminal);
}

store::MessageWrite Generation::take(CommitMode mode) {
    store::MessageWrite w{.id = message_.id,
                          .epoch = epoch_,
                          .offset = static_cast<std::int64_t>(message_.content.size()),
                          .reasoning_offset = static_cast<std::int64_t>(message_.reasoning.size()),
                          .reasoning = std::move(pending_reasoning_)};
    pending_reasoning_.clear();
    if (mode == CommitMode::per_chunk) {
        if (!pending_.empty()) {
            w.text = std::move(pending_.front());
            pending_.pop_front();
        }
        w.rewrite_content = true;
    } else {
        for (auto& piece : pending_) w.text += piece;
        pending_.clear();
    }
    pending_bytes_ -= w.text.size();
    if (pending_.empty() && terminal_) {
        w.terminal = std::move(terminal_);
        terminal_.reset();
    }
    if (w.rewrite_content || w.terminal) w.full_content = message_.content + w.text;
    return w;
}

void Generation::restore(store::MessageWrite w) {
    if (moved_) return;  // another node goes on from what is stored
    if (w.terminal) terminal_ = std::move(w.terminal);
    if (!w.reasoning.empty()) pending_reasoning_.insert(0, w.reasoning);
    if (!w.text.empty()) {
        pending_bytes_ += w.text.size();
        pending_.push_front(std::move(w.text));
    }
}

void Generation::committed(const store::MessageWrite& w, UnixMillis at, std::int64_t version) {
    message_.content += w.text;
    message_.reasoning += w.reasoning;
    produced_bytes_ = std::max(produced_bytes_, message_.content.size());  // moved meanwhile
    produced_reasoning_bytes_ = std::max(produced_reasoning_bytes_, message_.reasoning.size());
    message_.version = version;
    message_.last_updated = at;
    if (w.terminal) {
        const auto& t = *w.terminal;
        message_.status = t.status;
        message_.is_streaming = false;
        message_.error = t.error;
        message_.finish_reason = t.finish_reason;
        message_.usage = t.usage;
    }
    notify();
}

void Generation::drop_pending() {
    pending_.clear();
    pending_bytes_ = 0;
    pending_reasoning_.clear();
    produced_bytes_ = message_.content.size();
    produced_reasoning_bytes_ = message_.reasoning.size();
}

void Generation::end_after_committed(store::Terminal terminal) {
    drop_pending();
    finish_requested_ = true;
    terminal_ = std::move(terminal);
    notify();  // a producer waiting for room sees that it is finished
}

void Generation::adopt_end(store::Message stored) {
    terminal_.reset();
    finish_requested_ = true;
    message_ = std::move(stored);
    drop_pending();
    notify();
}

void Generation::move_away() {
    drop_pending();
    terminal_.reset();
    moved_ = true;
    notify();
}

void Generation::notify() {
    subscribers_.notify();
}

}  // namespace chatd::engine
