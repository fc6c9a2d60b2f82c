#include "store/sqlite/sqlite_store.hpp"

#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_db.hpp"

#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <atomic>
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
        auto outcome = run(store_->begin_turn(user, s.id,
                                              NewTurn{.content = content,
                                                      .model = "simulated",
                                                      .idempotency_key = key,
                                                      .request_fingerprint = content}));
        EXPECT_TRUE(outcome);
        EXPECT_TRUE(outcome->turn);
        return *outcome->turn;
    }

    void reopen() {
        store_.reset();
        store_ = std::make_unique<SqliteStore>(config_);
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

// Reading a live message finds its chunks through the (message, offset)
// index, not by scanning the log.
TEST_F(SqliteStoreTest, ALiveMessageIsReadThroughItsOwnIndex) {
    Database db(config_.path.string(), Database::Mode::read_only);
    auto q = db.cached(
        "EXPLAIN QUERY PLAN SELECT seq, text, created_at, version FROM ai_chat_message_chunks "
        "WHERE message_id = ? ORDER BY byte_offset");
    std::string plan;
    while (q.step()) plan += q.text(3) + "\n";
    EXPECT_NE(plan.find("USING INDEX ai_chat_message_chunks_by_message"), std::string::npos)
        << plan;
    EXPECT_EQ(plan.find("SCAN ai_chat_message_chunks\n"), std::string::npos) << plan;
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
    auto again = run(store_->begin_turn(kAlice, s.id, NewTurn{.content = "x", .model = "simulated"}));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->active_message, first.assistant_message.id);
}

}  // namespace
}  // namespace chatd::store::sqlite
