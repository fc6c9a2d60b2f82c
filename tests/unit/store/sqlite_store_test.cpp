#include "store/sqlite/sqlite_store.hpp"

#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_db.hpp"

#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <thread>

namespace chatd::store::sqlite {
namespace {

const UserId kAlice{"usr_alice"};
const UserId kBob{"usr_bob"};

class SqliteStoreTest : public ::testing::Test {
protected:
    template <class T>
    T run(net::awaitable<T> task) {
        return test::run(io_, std::move(task));
    }

    Session new_session(const UserId& user = kAlice) {
        auto s = run(store_->create_session(user, NewSession{.title = "t", .model = "simulated"}));
        EXPECT_TRUE(s);
        return *s;
    }

    Turn new_turn(const Session& s, std::string content = "hello",
                  std::optional<std::string> key = std::nullopt, const UserId& user = kAlice) {
        auto outcome = run(store_->begin_turn(
            user, s.id,
            NewTurn{.content = content, .idempotency_key = key, .request_fingerprint = content}));
        EXPECT_TRUE(outcome);
        EXPECT_TRUE(outcome->turn);
        return *outcome->turn;
    }

    void reopen() {
        store_.reset();
        store_ = std::make_unique<SqliteStore>(config_);
    }

    // Starts `calls` together while another connection holds the file's
    // write lock, so that they all wait for the writer at once, then lets
    // the writer go; returns their results in order.
    template <class T>
    std::vector<Result<T>> together(std::vector<net::awaitable<Result<T>>> calls) {
        std::vector<std::future<Result<T>>> pending;
        {
            Database holder(config_.path.string(), Database::Mode::read_write);
            holder.exec("BEGIN IMMEDIATE");
            for (auto& call : calls)
                pending.push_back(
                    boost::asio::co_spawn(io_, std::move(call), boost::asio::use_future));
            io_.restart();
            io_.poll();  // every call is queued for the writer, which waits for the lock
            holder.exec("ROLLBACK");
        }
        std::vector<Result<T>> out;
        for (auto& f : pending) {
            while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
                if (io_.run_one_for(std::chrono::seconds(10)) == 0) ADD_FAILURE() << "no progress";
            out.push_back(f.get());
        }
        return out;
    }

    std::vector<Result<TurnOutcome>> send_together(
        const std::vector<std::pair<SessionId, std::string>>& turns) {
        std::vector<net::awaitable<Result<TurnOutcome>>> calls;
        for (const auto& [session, content] : turns)
            calls.push_back(store_->begin_turn(
                kAlice, session, NewTurn{.content = content, .request_fingerprint = content}));
        return together(std::move(calls));
    }

    std::uint64_t wal_frames() const {
        const auto wal = dir_.path() / "chatd.sqlite3-wal";
        const auto bytes = std::filesystem::file_size(wal);
        return bytes < 32 ? 0 : (bytes - 32) / (4096 + 24);
    }

    // `n` sends of 2,000 bytes each, in sessions of their own; returns the
    // longest the write-ahead log's file was after one of them (pages).
    std::uint64_t send_large(int n) {
        std::uint64_t longest = 0;
        for (int i = 0; i < n; ++i) {
            new_turn(new_session(), std::string(2000, 'x'));
            longest = std::max(longest, wal_frames());
        }
        return longest;
    }

    void truncate_wal() {
        Database(config_.path.string(), Database::Mode::read_write)
            .exec("PRAGMA wal_checkpoint(TRUNCATE)");
        ASSERT_EQ(wal_frames(), 0u);
    }

    test::TempDir dir_;
    SqliteConfig config_{.path = dir_.path() / "chatd.sqlite3"};
    boost::asio::io_context io_;
    std::unique_ptr<SqliteStore> store_ = std::make_unique<SqliteStore>(config_);
};

}  // namespace
}  // namespace chatd::store::sqlite

namespace chatd::store::sqlite {
namespace {

// A database written by schema 2 (chunks keyed by commit order only) keeps
// its live message's text across the upgrade; chunks of ended messages go.
TEST_F(SqliteStoreTest, UpgradingKeepsTheTextOfALiveMessage) {
    store_.reset();
    auto path = dir_.path() / "v2.sqlite3";
    {
        Database db(path.string(), Database::Mode::read_write);
        for (const auto& m : migrations()) {
            if (m.version > 2) break;
            db.exec(m.sql);
        }
        db.exec(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER);"
            "INSERT INTO schema_migrations VALUES (1, 0), (2, 0);"
            "INSERT INTO ai_chat_sessions VALUES ('ses_1', 'usr_alice', 't', '', 'simulated', 0, 0);"
            "INSERT INTO ai_chat_messages (id, session_id, user_id, role, status, created_at, "
            " last_updated, version, change_seq, content) VALUES "
            " ('msg_ended', 'ses_1', 'usr_alice', 'assistant', 'completed', 0, 0, 3, 4, 'old'),"
            " ('msg_live', 'ses_1', 'usr_alice', 'assistant', 'generating', 0, 0, 1, 5, '');"
            "INSERT INTO ai_chat_message_chunks VALUES (2, 'msg_ended', 0, 'o', 0),"
            " (3, 'msg_ended', 1, 'ld', 0), (6, 'msg_live', 0, 'Hel', 7), (7, 'msg_live', 3, 'lo', 8);");
    }
    SqliteStore upgraded(SqliteConfig{.path = path});
    auto m = run(upgraded.get_message(kAlice, MessageId{"msg_live"}));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->content, "Hello");
    EXPECT_EQ(m->version, 3);
    EXPECT_EQ(m->change_seq, 7);
    EXPECT_EQ(m->last_updated, 8);
    auto r = run(upgraded.commit(Batch{.writes = {MessageWrite{.id = m->id, .offset = 5, .text = "!"}}}));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->writes[0].error);
    EXPECT_EQ(r->writes[0].version, 4);
    Database db(path.string(), Database::Mode::read_only);
    auto q = db.cached("SELECT COUNT(*), MIN(seq) FROM ai_chat_message_chunks");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.integer(0), 3);  // the live message's two, and the new one
    EXPECT_GT(q.integer(1), 5);
}

// The chunk log has no index by message: one commit of many streams' tokens
// appends a few pages to the log instead of writing one index page per
// stream (4 KiB of WAL for a token).
TEST_F(SqliteStoreTest, ACommitOfManyStreamsAppendsAFewPages) {
    constexpr int kStreams = 100;
    std::vector<MessageId> live;
    for (int i = 0; i < kStreams; ++i) live.push_back(new_turn(new_session()).assistant_message.id);
    const auto at = now_millis();
    auto commit_round = [&](int round) {
        Batch batch{.at = at};
        for (const auto& id : live)
            batch.writes.push_back(MessageWrite{.id = id, .offset = round * 6, .text = "token "});
        auto r = run(store_->commit(std::move(batch)));
        ASSERT_TRUE(r);
        for (const auto& w : r->writes) ASSERT_FALSE(w.error) << w.error.message();
    };
    for (int round = 0; round < 50; ++round) commit_round(round);
    const auto wal = dir_.path() / "chatd.sqlite3-wal";
    Database(config_.path.string(), Database::Mode::read_write)
        .exec("PRAGMA wal_checkpoint(TRUNCATE)");
    ASSERT_EQ(std::filesystem::file_size(wal), 0u);
    commit_round(50);
    const auto frames = (std::filesystem::file_size(wal) - 32) / (4096 + 24);
    EXPECT_LE(frames, 8u) << "a commit of " << kStreams << " one-token writes wrote " << frames
                          << " pages";
    auto m = run(store_->get_message(kAlice, live.back()));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->content.size(), 51u * 6);
}

// Another store's commit to a live message (another process on the file):
// this store's readers see it at once, and its writer plans from it.
TEST_F(SqliteStoreTest, AnotherStoresCommitIsSeenByReadsAndWrites) {
    const auto id = new_turn(new_session()).assistant_message.id;
    auto write = [&](SqliteStore& store, std::int64_t offset, std::string text) {
        auto r = run(store.commit(Batch{.writes = {MessageWrite{.id = id, .offset = offset,
                                                                .text = std::move(text)}},
                                        .at = now_millis()}));
        EXPECT_TRUE(r);
        return r ? r->writes.at(0).error : make_error_code(Error::store_failure);
    };
    ASSERT_FALSE(write(*store_, 0, "Hello"));
    {
        SqliteStore other(config_);
        ASSERT_FALSE(write(other, 5, ", world"));
    }
    auto read = run(store_->get_message(kAlice, id));
    ASSERT_TRUE(read);
    EXPECT_EQ(read->content, "Hello, world");
    auto tails = run(store_->read_tails({ReadPosition{.id = id, .offset = 2}}));
    ASSERT_TRUE(tails);
    ASSERT_EQ(tails->size(), 1u);
    EXPECT_EQ(tails->at(0).content, "llo, world");
    ASSERT_FALSE(write(*store_, 12, "!"));
    read = run(store_->get_message(kAlice, id));
    ASSERT_TRUE(read);
    EXPECT_EQ(read->content, "Hello, world!");
}

// Another store taking a live message over (a new lease epoch) fences this
// store's writes at once, though this one remembers the message.
TEST_F(SqliteStoreTest, AnotherStoresTakeoverFencesThisStoresWrites) {
    const auto id = new_turn(new_session()).assistant_message.id;
    auto write = [&](SqliteStore& store, std::int64_t epoch, std::int64_t offset) {
        auto r = run(store.commit(Batch{
            .writes = {MessageWrite{.id = id, .epoch = epoch, .offset = offset, .text = "ab"}},
            .at = now_millis()}));
        EXPECT_TRUE(r);
        return r ? r->writes.at(0).error : make_error_code(Error::store_failure);
    };
    ASSERT_FALSE(write(*store_, 1, 0));
    {
        SqliteStore other(config_);
        ASSERT_TRUE(run(other.release_stale_leases("node-b")));
        auto claims = run(other.claim_orphans({.node = "node-b", .ttl = std::chrono::seconds(30)},
                                              ClaimLimits{}));
        ASSERT_TRUE(claims);
        ASSERT_EQ(claims->continued.size(), 1u);
        EXPECT_EQ(claims->continued[0].epoch, 2);
    }
    EXPECT_EQ(write(*store_, 1, 2), Error::lease_lost);
    EXPECT_FALSE(write(*store_, 2, 2));
    EXPECT_EQ(run(store_->get_message(kAlice, id))->content, "abab");
}

std::int64_t chunk_rows(const std::filesystem::path& path) {
    Database db(path.string(), Database::Mode::read_only);
    auto q = db.cached("SELECT COUNT(*) FROM ai_chat_message_chunks");
    return q.step() ? q.integer(0) : -1;
}

// An ended message's chunk rows go at the log's next collection (a commit a
// second later), from the head, once no live message's chunks are older.
TEST_F(SqliteStoreTest, EndedMessagesLeaveTheLogFromItsHead) {
    const auto first = new_turn(new_session()).assistant_message.id;
    const auto second = new_turn(new_session()).assistant_message.id;
    auto at = now_millis();
    auto commit = [&](MessageWrite w) {
        auto r = run(store_->commit(Batch{.writes = {std::move(w)}, .at = at}));
        ASSERT_TRUE(r);
        ASSERT_FALSE(r->writes.at(0).error) << r->writes.at(0).error.message();
    };
    commit({.id = first, .offset = 0, .text = "one "});
    commit({.id = second, .offset = 0, .text = "two "});
    commit({.id = first, .offset = 4, .text = "more"});
    commit({.id = first,
            .offset = 8,
            .terminal = Terminal{.status = MessageStatus::completed},
            .full_content = "one more"});
    EXPECT_EQ(chunk_rows(config_.path), 3);
    at += 1000;
    commit({.id = second, .offset = 4, .text = "too"});
    // The second's older row holds the head: the first's rows before it stay.
    EXPECT_EQ(chunk_rows(config_.path), 4);
    commit({.id = second,
            .offset = 7,
            .terminal = Terminal{.status = MessageStatus::completed},
            .full_content = "two too"});
    at += 1000;
    commit({.id = new_turn(new_session()).assistant_message.id, .offset = 0, .text = "three"});
    EXPECT_EQ(chunk_rows(config_.path), 1);
    EXPECT_EQ(run(store_->get_message(kAlice, first))->content, "one more");
    EXPECT_EQ(run(store_->get_message(kAlice, second))->content, "two too");
}

// A message that stays live while the log grows past its limit has its text
// so far moved to its content column, so that the rows behind it can go;
// its text reads the same, from memory and from the file.
TEST_F(SqliteStoreTest, ALongLiveMessageIsCompactedSoTheLogCanBeCut) {
    config_.max_log_rows = 8;
    reopen();
    const auto id = new_turn(new_session()).assistant_message.id;
    auto at = now_millis();
    std::string text;
    auto commit = [&](std::string piece) {
        auto r = run(store_->commit(Batch{
            .writes = {MessageWrite{.id = id, .offset = static_cast<std::int64_t>(text.size()),
                                    .text = piece}},
            .at = at}));
        ASSERT_TRUE(r);
        ASSERT_FALSE(r->writes.at(0).error);
        text += piece;
    };
    for (int i = 0; i < 20; ++i) commit("w" + std::to_string(i) + " ");
    EXPECT_EQ(chunk_rows(config_.path), 20);
    at += 1000;
    commit("end");
    EXPECT_EQ(chunk_rows(config_.path), 1);  // the newest; the rest is in the content column
    EXPECT_EQ(run(store_->get_message(kAlice, id))->content, text);
    reopen();  // no live texts: the file alone
    auto m = run(store_->get_message(kAlice, id));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->content, text);
    EXPECT_EQ(m->status, MessageStatus::generating);
    commit(" more");
    EXPECT_EQ(run(store_->get_message(kAlice, id))->content, text);
}

// Processes that start together on a new file apply each migration once.
TEST_F(SqliteStoreTest, StoresOpeningANewFileTogetherMigrateItOnce) {
    auto path = dir_.path() / "together.sqlite3";
    std::vector<std::thread> openers;
    std::atomic<int> opened = 0;
    for (int i = 0; i < 4; ++i)
        openers.emplace_back([&] {
            SqliteStore s(SqliteConfig{.path = path});
            ++opened;
        });
    for (auto& t : openers) t.join();
    EXPECT_EQ(opened, 4);
    Database db(path.string(), Database::Mode::read_only);
    auto q = db.cached("SELECT COUNT(*), MAX(version) FROM schema_migrations");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.integer(0), static_cast<std::int64_t>(migrations().size()));
}

// "One generating message per session" is the database's own rule, not only
// begin_turn's check: a second writer inserting one directly is refused.
TEST_F(SqliteStoreTest, TheDatabaseRefusesASecondGeneratingMessageInASession) {
    auto s = new_session();
    auto first = new_turn(s);
    Database other(config_.path.string(), Database::Mode::read_write);
    auto insert = [&](const std::string& id, std::string_view status) {
        other
            .cached(
                "INSERT INTO ai_chat_messages (id, session_id, user_id, role, status, created_at, "
                "last_updated, change_seq) VALUES (?, ?, ?, 'assistant', ?, 0, 0, 0)")
            .bind(1, id)
            .bind(2, s.id.value)
            .bind(3, kAlice.value)
            .bind(4, status)
            .run();
    };
    try {
        insert(new_message_id().value, "generating");
        FAIL() << "a second generating message was stored";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.code() & 0xff, SQLITE_CONSTRAINT) << e.what();
    }
    insert(new_message_id().value, "completed");  // ended ones are not limited
    // begin_turn still names the live one.
    auto again = run(store_->begin_turn(kAlice, s.id, NewTurn{.content = "x"}));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->active_message, first.assistant_message.id);
}

// Sends that wait for the writer together commit together: a burst of N
// sends costs a couple of commits, not N (each would write the message,
// session and index pages again). 40 sends wrote 22 pages together, 328
// one commit each.
TEST_F(SqliteStoreTest, SendsWaitingTogetherCommitTogether) {
    constexpr int kSends = 40;
    std::vector<std::pair<SessionId, std::string>> turns;
    for (int i = 0; i < kSends; ++i) turns.emplace_back(new_session().id, "hello");
    truncate_wal();
    auto outcomes = send_together(turns);
    const auto frames = wal_frames();
    EXPECT_LE(frames, 48u) << kSends << " sends wrote " << frames << " pages";
    for (int i = 0; i < kSends; ++i) {
        ASSERT_TRUE(outcomes[i]) << outcomes[i].error().message();
        ASSERT_TRUE(outcomes[i]->turn);
        auto m = run(store_->list_messages(kAlice, turns[i].first));
        ASSERT_TRUE(m);
        EXPECT_EQ(m->size(), 2u);
    }
    // Each took its own change sequences, in order.
    for (int i = 1; i < kSends; ++i)
        EXPECT_GT(outcomes[i]->turn->user_message.change_seq,
                  outcomes[i - 1]->turn->assistant_message.change_seq);
}

// In a group, each send has its own outcome: a refusal or a failure undoes
// that send's writes alone.
TEST_F(SqliteStoreTest, EachSendOfAGroupHasItsOwnOutcome) {
    auto busy = new_session();
    const auto live = new_turn(busy).assistant_message.id;
    auto first = new_session();
    auto poisoned = new_session();
    auto last = new_session();
    // A failure SQLite raises inside one send's statements.
    Database(config_.path.string(), Database::Mode::read_write)
        .exec("CREATE TRIGGER poison BEFORE INSERT ON ai_chat_messages WHEN NEW.content = "
              "'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
    auto outcomes = send_together({{first.id, "one"},
                                   {busy.id, "while generating"},
                                   {SessionId{"ses_unknown"}, "nowhere"},
                                   {poisoned.id, "poison"},
                                   {last.id, "two"}});
    ASSERT_TRUE(outcomes[0] && outcomes[0]->turn);
    ASSERT_TRUE(outcomes[1]);
    EXPECT_FALSE(outcomes[1]->turn);
    EXPECT_EQ(outcomes[1]->active_message, live);
    ASSERT_FALSE(outcomes[2]);
    EXPECT_EQ(outcomes[2].error(), Error::not_found);
    ASSERT_FALSE(outcomes[3]);
    EXPECT_EQ(outcomes[3].error(), Error::store_failure);
    ASSERT_TRUE(outcomes[4] && outcomes[4]->turn);
    auto count = [&](const Session& s) {
        auto m = run(store_->list_messages(kAlice, s.id));
        EXPECT_TRUE(m);
        return m ? m->size() : 0u;
    };
    EXPECT_EQ(count(first), 2u);
    EXPECT_EQ(count(busy), 2u);  // the refused send left no user message behind
    EXPECT_EQ(count(poisoned), 0u);
    EXPECT_EQ(count(last), 2u);
    EXPECT_EQ(run(store_->get_message(kAlice, outcomes[4]->turn->user_message.id))->content,
              "two");
}

// A creation that fails in a group is refused alone and the others are made
// again: what the writer counted of the user's sessions in the failed attempt
// goes with it, so the limit still counts the sessions there are.
TEST_F(SqliteStoreTest, ASessionLimitOutlivesAFailedGroupOfCreations) {
    Database(config_.path.string(), Database::Mode::read_write)
        .exec(
            "CREATE TRIGGER poison BEFORE INSERT ON ai_chat_sessions WHEN NEW.title = "
            "'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
    auto create = [&](std::string title) {
        return store_->create_session(
            kAlice, NewSession{.title = std::move(title), .model = "simulated", .max_per_user = 3});
    };
    std::vector<net::awaitable<Result<Session>>> calls;
    for (auto title : {"one", "poison", "two"}) calls.push_back(create(title));
    auto made = together(std::move(calls));
    EXPECT_TRUE(made[0]);
    EXPECT_EQ(made[1].error(), Error::store_failure);
    EXPECT_TRUE(made[2]);
    EXPECT_TRUE(run(create("three")));
    EXPECT_EQ(run(create("four")).error(), Error::too_many_sessions);
}

// The write-ahead log is copied into the database file by a checkpointer of
// its own, not inside a commit: the writer's own checkpoints are set out of
// reach here, and the file still takes the log's pages and the log starts
// again from its beginning.
TEST_F(SqliteStoreTest, TheLogIsCheckpointedAwayFromTheWriter) {
    config_.checkpoint_pages = 16;
    config_.writer_checkpoint_pages = 1 << 30;
    reopen();
    truncate_wal();
    const auto file_before = std::filesystem::file_size(config_.path);
    const auto longest = send_large(100);
    // Each send writes a few pages; without the checkpointer the log would
    // hold them all (some 300), and the file would not grow.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::filesystem::file_size(config_.path) < file_before + 100 * 2000 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_GE(std::filesystem::file_size(config_.path), file_before + 100 * 2000);
    // The sends wrote some 1,300 pages: the log started again from its
    // beginning while they did (checkpoints that leave the log whole in the
    // file at no moment between two writes never let it).
    EXPECT_LT(longest, 650u) << "the log was never started again";
}

// Should the checkpointer fall behind, the writer checkpoints itself once the
// log is `writer_checkpoint_pages` long: the log stays bounded.
TEST_F(SqliteStoreTest, TheWriterCheckpointsWhenTheLogGrowsTooLong) {
    config_.checkpoint_pages = 1 << 30;  // the checkpointer is never asked
    config_.writer_checkpoint_pages = 32;
    reopen();
    truncate_wal();
    const auto file_before = std::filesystem::file_size(config_.path);
    const auto longest = send_large(100);
    EXPECT_GE(std::filesystem::file_size(config_.path), file_before + 100 * 2000);
    EXPECT_LT(longest, 64u);
}

}  // namespace
}  // namespace chatd::store::sqlite
