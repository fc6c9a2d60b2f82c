#include "store/local_notices.hpp"

#include "core/wakeup.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace chatd::store {
namespace {

void merge(ChangeNotice& into, ChangeNotice&& more) {
    if (into.empty()) {
        into = std::move(more);
        return;
    }
    into.everything = into.everything || more.everything;
    for (auto& m : more.messages) into.messages.push_back(std::move(m));
    for (auto& s : more.sessions) into.sessions.push_back(std::move(s));
    for (auto& c : more.chunks) into.chunks.push_back(std::move(c));
}

}  // namespace

struct LocalNotices::Inbox {
    explicit Inbox(net::any_io_executor e) : ex(e), wake(e) {}
    net::any_io_executor ex;
    Wakeup wake;
    ChangeNotice pending{.everything = true};  // the first next() knows nothing before it
};

class LocalNotices::Listener final : public ChangeListener {
public:
    explicit Listener(std::shared_ptr<Inbox> inbox) : inbox_(std::move(inbox)) {}

    net::awaitable<Result<ChangeNotice>> next(
        std::chrono::steady_clock::time_point deadline) override {
        if (inbox_->pending.empty()) co_await inbox_->wake.wait_until(deadline);
        co_return std::exchange(inbox_->pending, ChangeNotice{});
    }

private:
    std::shared_ptr<Inbox> inbox_;
};

std::unique_ptr<ChangeListener> LocalNotices::listen(net::any_io_executor ex) {
    auto inbox = std::make_shared<Inbox>(std::move(ex));
    std::lock_guard lock(mutex_);
    std::erase_if(inboxes_, [](const auto& w) { return w.expired(); });
    inboxes_.push_back(inbox);
    return std::make_unique<Listener>(std::move(inbox));
}

void LocalNotices::announce(ChangeNotice notice) {
    if (notice.empty()) return;
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Inbox>> live;
    live.reserve(inboxes_.size());
    for (const auto& weak : inboxes_)
        if (auto inbox = weak.lock()) live.push_back(std::move(inbox));
    // Every commit's notice goes through here, with a piece of text per
    // stream: the last inbox (usually the only one) takes it without a copy.
    for (std::size_t i = 0; i < live.size(); ++i) {
        auto deliver = [weak = std::weak_ptr<Inbox>(live[i]),
                        n = i + 1 == live.size() ? std::move(notice) : notice]() mutable {
            auto in = weak.lock();
            if (!in) return;
            merge(in->pending, std::move(n));
            in->wake.notify();
        };
        net::post(live[i]->ex, std::move(deliver));
    }
}

}  // namespace chatd::store
