#pragma once
// A ChatStore decorator for fault injection (LevelDB's EnvWrapper idea): it
// forwards to a real store, counts commits, and can fail the next N commits.
#include "store/chat_store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>

namespace chatd::test {

class FaultyStore final : public store::ChatStore {
public:
    explicit FaultyStore(store::ChatStore& inner) : inner_(inner) {}

    int fail_next_commits = 0;
    int commits = 0;  // successful commits
    int failed_commits = 0;
    std::vector<std::size_t> batch_sizes;
    int next_assistant_reads = 0;  // a session stream's look for a new message
    int message_reads = 0;         // get_message calls
    int session_reads = 0;         // get_session calls
    // Runs on the caller's executor when a commit starts, before it is stored.
    std::function<void(const store::Batch&)> on_commit_start;

    // While true, commits wait (the I/O thread stays free): tests use it to
    // let work pile up deterministically.
    bool hold_commits = false;

    net::awaitable<Result<store::CommitResult>> commit(const store::Batch& batch) override {
        if (on_commit_start) on_commit_start(batch);
        boost::asio::steady_timer poll(co_await boost::asio::this_coro::executor);
        while (hold_commits) {
            poll.expires_after(std::chrono::milliseconds(1));
            co_await poll.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
        if (fail_next_commits > 0) {
            --fail_next_commits;
            ++failed_commits;
            co_return Error::store_failure;
        }
        batch_sizes.push_back(batch.writes.size());
        auto r = co_await inner_.commit(batch);
        if (r) ++commits;
        co_return r;
    }

    net::awaitable<Result<store::Session>> create_session(UserId u, store::NewSession s) override {
        return inner_.create_session(std::move(u), std::move(s));
    }
    net::awaitable<Result<store::Session>> get_session(UserId u, SessionId id) override {
        ++session_reads;
        return inner_.get_session(std::move(u), std::move(id));
    }
    net::awaitable<Result<store::Session>> find_chat(UserId u, std::string chat_id) override {
        return inner_.find_chat(std::move(u), std::move(chat_id));
    }
    net::awaitable<Result<store::SessionPage>> list_sessions(UserId u, std::size_t limit,
                                                             std::optional<SessionId> b) override {
        return inner_.list_sessions(std::move(u), limit, std::move(b));
    }
    net::awaitable<Result<store::Session>> update_session(UserId u, SessionId id,
                                                          store::SessionPatch p) override {
        return inner_.update_session(std::move(u), std::move(id), std::move(p));
    }
    net::awaitable<Result<void>> delete_session(UserId u, SessionId id) override {
        return inner_.delete_session(std::move(u), std::move(id));
    }
    net::awaitable<Result<std::vector<store::Message>>> list_messages(UserId u,
                                                                      SessionId id) override {
        return inner_.list_messages(std::move(u), std::move(id));
    }
    net::awaitable<Result<store::MessagePage>> list_messages_page(UserId u, SessionId id,
                                                                  std::optional<MessageId> before,
                                                                  std::size_t limit) override {
        return inner_.list_messages_page(std::move(u), std::move(id), std::move(before), limit);
    }
    net::awaitable<Result<store::Message>> get_message(UserId u, MessageId id) override {
        ++message_reads;
        return inner_.get_message(std::move(u), std::move(id));
    }
    net::awaitable<Result<std::optional<store::Message>>> next_assistant_message(
        UserId u, SessionId s, std::optional<MessageId> after) override {
        ++next_assistant_reads;
        return inner_.next_assistant_message(std::move(u), std::move(s), std::move(after));
    }
    net::awaitable<Result<store::Changes>> changed_since(UserId u, SessionId s,
                                                         store::Since since) override {
        return inner_.changed_since(std::move(u), std::move(s), since);
    }
    net::awaitable<Result<store::TurnOutcome>> begin_turn(UserId u, SessionId s,
                                                          store::NewTurn t) override {
        return inner_.begin_turn(std::move(u), std::move(s), std::move(t));
    }
    int renewals = 0;  // renew_leases calls
    // While true, renewals wait before they reach the store (a renewal in
    // flight, deterministically).
    bool hold_renewals = false;
    net::awaitable<Result<std::vector<store::HeldLease>>> renew_leases(
        store::LeaseTerms lease) override {
        ++renewals;
        renewal_in_flight = true;
        boost::asio::steady_timer poll(co_await boost::asio::this_coro::executor);
        while (hold_renewals) {
            poll.expires_after(std::chrono::milliseconds(1));
            co_await poll.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
        auto r = co_await inner_.renew_leases(std::move(lease));
        renewal_in_flight = false;
        co_return r;
    }
    bool renewal_in_flight = false;
    // Set when a release starts while a renewal is in flight (which could
    // extend what it releases).
    bool released_during_renewal = false;
    net::awaitable<Result<store::Claims>> claim_orphans(store::LeaseTerms lease,
                                                        store::ClaimLimits limits) override {
        return inner_.claim_orphans(std::move(lease), limits);
    }
    net::awaitable<Result<void>> request_cancel(UserId u, MessageId id) override {
        return inner_.request_cancel(std::move(u), std::move(id));
    }
    net::awaitable<Result<std::vector<MessageId>>> cancel_requests(std::string node) override {
        return inner_.cancel_requests(std::move(node));
    }
    net::awaitable<Result<std::size_t>> release_stale_leases(std::string node) override {
        return inner_.release_stale_leases(std::move(node));
    }
    net::awaitable<Result<std::size_t>> release_leases(std::string node,
                                                       std::vector<MessageId> only) override {
        released_during_renewal = released_during_renewal || renewal_in_flight;
        return inner_.release_leases(std::move(node), std::move(only));
    }
    std::unique_ptr<store::ChangeListener> listen(net::any_io_executor ex) override {
        return inner_.listen(std::move(ex));
    }
    int tail_reads = 0;       // read_tails calls
    int tail_reads_done = 0;  // of which answered
    net::awaitable<Result<std::vector<store::Message>>> read_tails(
        std::vector<store::ReadPosition> at) override {
        ++tail_reads;
        auto r = co_await inner_.read_tails(std::move(at));
        ++tail_reads_done;
        co_return r;
    }
    net::awaitable<Result<void>> ping() override { return inner_.ping(); }

private:
    store::ChatStore& inner_;
};

}  // namespace chatd::test
