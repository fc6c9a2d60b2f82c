// Readers' one view of a message, wherever it runs (engine/feeds.hpp): the
// store's change notices bring another node's commits to one follower per
// message, which every local reader shares; nothing polls.
#include "engine/feeds.hpp"

#include "llm/simulated/simulated_provider.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/faulty_store.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>

namespace chatd::engine {
namespace {

const UserId kUser{"usr_test"};
const UserId kOther{"usr_other"};

class FeedsTest : public ::testing::Test {
protected:
    FeedsTest() {
        net::co_spawn(io_, feeds_.run(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    }
    ~FeedsTest() override {
        feeds_.stop();
        io_.run_for(std::chrono::milliseconds(10));
    }

    template <class T>
    T run(net::awaitable<T> task) {
        return test::run(io_, std::move(task));
    }
    void wait_until(std::function<bool()> condition) { run(test::wait_until(std::move(condition))); }

    // A turn another node started: nothing here runs it.
    store::Turn remote_turn(const UserId& user = kUser) {
        auto session = run(store_.create_session(user, store::NewSession{.title = "t"}));
        return *run(store_.begin_turn(user, session->id, store::NewTurn{.content = "q"}))->turn;
    }
    // What another node commits.
    void commit(const MessageId& id, std::int64_t offset, std::string text,
                std::optional<std::string> full = std::nullopt) {
        store::MessageWrite w{.id = id, .offset = offset, .text = std::move(text)};
        if (full) {
            w.terminal = store::Terminal{.finish_reason = "stop"};
            w.full_content = *full;
        }
        auto r = run(store_.commit(store::Batch{.writes = {std::move(w)}, .at = now_millis()}));
        ASSERT_TRUE(r);
        ASSERT_FALSE(r->writes.at(0).error);
    }
    std::shared_ptr<MessageFeed> open(const MessageId& id, const UserId& user = kUser) {
        auto f = run(feeds_.open(user, id));
        EXPECT_TRUE(f) << f.error().message();
        return f ? *f : nullptr;
    }

    test::TempDir dir_;
    boost::asio::io_context io_;
    store::sqlite::SqliteStore store_{{.path = dir_.path() / "db.sqlite3"}};
    test::FaultyStore faulty_{store_};
    llm::simulated::SimulatedProvider provider_{{}};
    Engine engine_{io_.get_executor(), faulty_, provider_, {}};
    Feeds feeds_{io_.get_executor(), engine_, faulty_};
};

TEST_F(FeedsTest, ReadersOfAMessageRunElsewhereShareOneFollowerThatReadsOnlyNewText) {
    auto turn = remote_turn();
    const auto& id = turn.assistant_message.id;
    commit(id, 0, "Hello");
    auto a = open(id);
    auto b = open(id);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a, b) << "one follower per message per node";
    EXPECT_EQ(a->message().content, "Hello");
    auto woken = std::make_shared<Wakeup>(io_.get_executor());
    a->subscribe(woken);
    // The read that closes the opening gap is over: no read is in flight.
    wait_until([&] { return faulty_.tail_reads_done >= 1; });

    const int reads = faulty_.tail_reads;
    std::string expected = "Hello";
    for (std::string piece : {", ", "wörld", "! ", "ünïcödé"}) {
        commit(id, static_cast<std::int64_t>(expected.size()), piece);
        expected += piece;
        wait_until([&] { return a->message().content == expected; });
    }
    EXPECT_EQ(faulty_.tail_reads, reads) << "the notices carried the text: nothing was read";
    EXPECT_EQ(a->message().version, 6);
    EXPECT_EQ(feeds_.stats().followers, 1u);

    // The end changes the status: that is read.
    commit(id, static_cast<std::int64_t>(expected.size()), ".", expected + ".");
    wait_until([&] { return a->message().status == store::MessageStatus::completed; });
    EXPECT_EQ(faulty_.tail_reads, reads + 1);
    EXPECT_EQ(a->message().content, expected + ".");
    EXPECT_EQ(feeds_.stats().followers, 0u) << "an ended message is followed no more";
    EXPECT_FALSE(a->stale());
}

TEST_F(FeedsTest, ANoticeAboutAMessageNobodyFollowsReadsNothing) {
    const auto followed = remote_turn().assistant_message.id;
    const auto other = remote_turn().assistant_message.id;
    auto feed = open(followed);
    wait_until([&] { return faulty_.tail_reads_done >= 1; });  // the opening read is over
    const int before = faulty_.tail_reads;
    commit(other, 0, "not followed", "not followed");
    commit(followed, 0, "followed", "followed");  // ends: read
    wait_until([&] { return feed->message().status == store::MessageStatus::completed; });
    EXPECT_EQ(feed->message().content, "followed");
    EXPECT_EQ(faulty_.tail_reads, before + 1);
}

// Text that does not follow on from what the follower holds (it missed a
// notice) is not applied: the follower reads the store instead, and has
// every byte once, in order.
TEST_F(FeedsTest, AFollowerThatMissedTextReadsTheStore) {
    const auto id = remote_turn().assistant_message.id;
    auto feed = open(id);
    wait_until([&] { return faulty_.tail_reads_done >= 1; });  // the opening read is over
    const int before = faulty_.tail_reads;
    {
        // A commit whose notice this node never hears: another store on the
        // same file announces to its own listeners only.
        store::sqlite::SqliteStore other({.path = dir_.path() / "db.sqlite3"});
        auto r = run(other.commit(store::Batch{
            .writes = {{.id = id, .offset = 0, .text = "Hello, "}}, .at = now_millis()}));
        ASSERT_TRUE(r);
    }
    commit(id, 7, "wörld");
    wait_until([&] { return feed->message().content == "Hello, wörld"; });
    EXPECT_EQ(faulty_.tail_reads, before + 1);
}

// A resume checks its cursor against the message it reads; the feed starts
// from that read: an ended message costs one store read, not two. A read
// of a live one is only where its follower starts: it catches up.
TEST_F(FeedsTest, AFeedStartsFromTheCallersReadOfTheMessage) {
    auto ended = remote_turn();
    const auto& id = ended.assistant_message.id;
    commit(id, 0, "Hello", "Hello");
    auto read = run(store_.get_message(kUser, id));
    ASSERT_TRUE(read);
    const int reads = faulty_.message_reads;
    auto f = run(feeds_.open(kUser, id, *read));
    ASSERT_TRUE(f);
    EXPECT_EQ(faulty_.message_reads, reads) << "the caller's read stands in for the store's";
    EXPECT_EQ((*f)->message().content, "Hello");
    EXPECT_EQ((*f)->message().status, store::MessageStatus::completed);

    auto live = remote_turn();
    const auto& live_id = live.assistant_message.id;
    commit(live_id, 0, "Hel");
    auto early = run(store_.get_message(kUser, live_id));
    ASSERT_TRUE(early);
    commit(live_id, 3, "lo");  // after the caller's read
    auto g = run(feeds_.open(kUser, live_id, *early));
    ASSERT_TRUE(g);
    wait_until([&] { return (*g)->message().content == "Hello"; });

    // A read of another message is not this one's: the store is read.
    auto other = remote_turn();
    const auto& other_id = other.assistant_message.id;
    commit(other_id, 0, "Bye", "Bye");
    const int before = faulty_.message_reads;
    auto h = run(feeds_.open(kUser, other_id, *read));
    ASSERT_TRUE(h);
    EXPECT_EQ(faulty_.message_reads, before + 1);
    EXPECT_EQ((*h)->message().id, other_id);
    EXPECT_EQ((*h)->message().content, "Bye");
}

TEST_F(FeedsTest, AnotherUsersOrAnUnknownMessageIsNotFound) {
    const auto id = remote_turn().assistant_message.id;
    ASSERT_TRUE(open(id));
    EXPECT_EQ(run(feeds_.open(kOther, id)).error(), Error::not_found);
    EXPECT_EQ(run(feeds_.open(kUser, MessageId{"msg_unknown"})).error(), Error::not_found);
}

TEST_F(FeedsTest, AFollowedMessageWhoseSessionIsDeletedGoesStale) {
    auto turn = remote_turn();
    auto feed = open(turn.assistant_message.id);
    ASSERT_TRUE(run(store_.delete_session(kUser, turn.assistant_message.session_id)));
    wait_until([&] { return feed->stale(); });
    EXPECT_EQ(run(feeds_.open(kUser, turn.assistant_message.id)).error(), Error::not_found);
}

TEST_F(FeedsTest, SessionStreamsAreWokenByATurnStartedAnywhere) {
    auto session = run(store_.create_session(kUser, store::NewSession{.title = "t"}));
    // The listener's first notice ("everything") is out of the way.
    wait_until([&] { return feeds_.stats().notices >= 1; });
    auto woken = std::make_shared<Wakeup>(io_.get_executor());
    bool awake = false;
    feeds_.watch_session(session->id, woken);
    net::co_spawn(io_, [](std::shared_ptr<Wakeup> w, bool& flag) -> net::awaitable<void> {
        co_await w->wait();
        flag = true;
    }(woken, awake), net::detached);
    ASSERT_TRUE(run(store_.begin_turn(kUser, session->id, store::NewTurn{.content = "q"})));
    wait_until([&] { return awake; });
}

TEST_F(FeedsTest, AMessageThisNodeRunsIsReadFromItsGeneration) {
    auto turn = remote_turn();
    auto g = engine_.start(kUser, turn, *engine_.reserve(kUser));
    auto feed = open(turn.assistant_message.id);
    EXPECT_EQ(feed.get(), static_cast<MessageFeed*>(g.get()));
    EXPECT_EQ(feeds_.stats().followers, 0u);
}

}  // namespace
}  // namespace chatd::engine
