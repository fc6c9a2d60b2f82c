#include "store/sqlite/sqlite_store.hpp"

#include "store/sqlite/sqlite_db.hpp"

#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <set>

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

    void append(const MessageId& id, std::int64_t offset, std::string text) {
        Batch batch{.writes = {MessageWrite{.id = id, .offset = offset, .text = std::move(text)}},
                    .at = now_millis()};
        ASSERT_TRUE(run(store_->commit(std::move(batch))));
    }

    void finish(const MessageId& id, std::int64_t offset, std::string text, std::string full,
                MessageStatus status = MessageStatus::completed) {
        auto version = run(store_->get_message(kAlice, id))->version + 1;
        Batch batch{.writes = {MessageWrite{.id = id,
                                            .version = version,
                                            .offset = offset,
                                            .text = std::move(text),
                                            .terminal = Terminal{.status = status,
                                                                 .finish_reason = "stop",
                                                                 .usage = Usage{3, 4}},
                                            .full_content = std::move(full)}},
                    .at = now_millis()};
        ASSERT_TRUE(run(store_->commit(std::move(batch))));
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

TEST_F(SqliteStoreTest, CreatesAndReadsSessions) {
    auto s = new_session();
    auto read = run(store_->get_session(kAlice, s.id));
    ASSERT_TRUE(read);
    EXPECT_EQ(read->title, "t");
    EXPECT_EQ(read->model, "simulated");
}

TEST_F(SqliteStoreTest, AnotherUsersSessionIsNotFound) {
    auto s = new_session(kAlice);
    EXPECT_EQ(run(store_->get_session(kBob, s.id)).error(), Error::not_found);
    EXPECT_EQ(run(store_->list_messages(kBob, s.id)).error(), Error::not_found);
    EXPECT_EQ(run(store_->delete_session(kBob, s.id)).error(), Error::not_found);
    auto turn = new_turn(s);
    EXPECT_EQ(run(store_->get_message(kBob, turn.user_message.id)).error(), Error::not_found);
    EXPECT_TRUE(run(store_->list_sessions(kBob, 10, std::nullopt))->sessions.empty());
}

TEST_F(SqliteStoreTest, ListsSessionsNewestFirstInPages) {
    std::vector<SessionId> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(new_session().id);
    auto first = run(store_->list_sessions(kAlice, 2, std::nullopt));
    ASSERT_TRUE(first);
    ASSERT_EQ(first->sessions.size(), 2u);
    EXPECT_EQ(first->sessions[0].id, ids[4]);
    ASSERT_TRUE(first->next);
    auto second = run(store_->list_sessions(kAlice, 3, first->next));
    ASSERT_EQ(second->sessions.size(), 3u);
    EXPECT_EQ(second->sessions[2].id, ids[0]);
    EXPECT_FALSE(second->next);
}

TEST_F(SqliteStoreTest, BeginTurnCreatesUserAndEmptyGeneratingAssistant) {
    auto s = new_session();
    auto turn = new_turn(s, "question");
    EXPECT_EQ(turn.user_message.status, MessageStatus::completed);
    EXPECT_EQ(turn.assistant_message.status, MessageStatus::generating);
    EXPECT_TRUE(turn.assistant_message.content.empty());
    auto history = run(store_->list_messages(kAlice, s.id));
    ASSERT_EQ(history->size(), 2u);
    EXPECT_EQ((*history)[0].content, "question");
    EXPECT_EQ((*history)[1].id, turn.assistant_message.id);
}

TEST_F(SqliteStoreTest, SecondTurnWhileGeneratingNamesTheActiveMessage) {
    auto s = new_session();
    auto turn = new_turn(s);
    auto second = run(store_->begin_turn(kAlice, s.id, NewTurn{.content = "again"}));
    ASSERT_TRUE(second);
    EXPECT_FALSE(second->turn);
    EXPECT_EQ(second->active_message, turn.assistant_message.id);
    EXPECT_EQ(run(store_->list_messages(kAlice, s.id))->size(), 2u);
}

TEST_F(SqliteStoreTest, IdempotencyKeyReplaysTheFirstAnswer) {
    auto s = new_session();
    auto first = new_turn(s, "hi", "key-1");
    append(first.assistant_message.id, 0, "partial");
    auto again = new_turn(s, "hi", "key-1");
    EXPECT_TRUE(again.replayed);
    EXPECT_EQ(again.user_message.id, first.user_message.id);
    EXPECT_EQ(again.assistant_message.id, first.assistant_message.id);
    EXPECT_EQ(again.assistant_message.content, "");
    EXPECT_EQ(again.assistant_message.version, 1);
    EXPECT_EQ(run(store_->list_messages(kAlice, s.id))->size(), 2u);
}

TEST_F(SqliteStoreTest, IdempotencyKeyWithAnotherBodyIsRejected) {
    auto s = new_session();
    new_turn(s, "hi", "key-1");
    auto other = run(store_->begin_turn(
        kAlice, s.id,
        NewTurn{.content = "bye", .idempotency_key = "key-1", .request_fingerprint = "bye"}));
    EXPECT_EQ(other.error(), Error::idempotency_key_reused);
}

TEST_F(SqliteStoreTest, IdempotencyKeysAreScopedByUser) {
    auto a = new_session(kAlice);
    auto b = new_session(kBob);
    auto ta = new_turn(a, "hi", "shared-key", kAlice);
    auto tb = new_turn(b, "hi", "shared-key", kBob);
    EXPECT_FALSE(tb.replayed);
    EXPECT_NE(ta.assistant_message.id, tb.assistant_message.id);
}

TEST_F(SqliteStoreTest, GeneratingMessageShowsCommittedChunksInOrder) {
    auto turn = new_turn(new_session());
    const auto& id = turn.assistant_message.id;
    append(id, 0, "Hello");
    append(id, 5, ", wörld");
    auto m = run(store_->get_message(kAlice, id));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->content, "Hello, wörld");
    EXPECT_EQ(m->status, MessageStatus::generating);
    EXPECT_EQ(m->version, 3);
}

TEST_F(SqliteStoreTest, TerminalCommitStoresWholeContentAndStatus) {
    auto turn = new_turn(new_session());
    const auto& id = turn.assistant_message.id;
    append(id, 0, "Hello");
    finish(id, 5, "!", "Hello!");
    auto m = run(store_->get_message(kAlice, id));
    EXPECT_EQ(m->content, "Hello!");
    EXPECT_EQ(m->version, 3);
    EXPECT_EQ(m->status, MessageStatus::completed);
    EXPECT_FALSE(m->is_streaming);
    EXPECT_EQ(m->finish_reason, "stop");
    ASSERT_TRUE(m->usage);
    EXPECT_EQ(m->usage->output_tokens, 4);
}

TEST_F(SqliteStoreTest, PerChunkModeRewritesContent) {
    auto turn = new_turn(new_session());
    const auto& id = turn.assistant_message.id;
    for (std::string full : {"a", "ab", "abc"}) {
        Batch batch{.writes = {MessageWrite{.id = id,
                                            .version = static_cast<std::int64_t>(full.size() + 1),
                                            .offset = static_cast<std::int64_t>(full.size() - 1),
                                            .text = full.substr(full.size() - 1),
                                            .rewrite_content = true,
                                            .full_content = full}}};
        ASSERT_TRUE(run(store_->commit(std::move(batch))));
    }
    auto m = run(store_->get_message(kAlice, id));
    EXPECT_EQ(m->content, "abc");
    EXPECT_EQ(m->version, 4);
}

TEST_F(SqliteStoreTest, ChangedSinceReturnsOnlyLaterChanges) {
    auto s = new_session();
    auto turn = new_turn(s);
    auto all = run(store_->changed_since(kAlice, s.id, Since{}));
    ASSERT_TRUE(all);
    EXPECT_EQ(all->messages.size(), 2u);
    EXPECT_TRUE(all->has_more_generating);
    auto none = run(store_->changed_since(kAlice, s.id, Since{.seq = all->next_seq}));
    EXPECT_TRUE(none->messages.empty());
    EXPECT_EQ(none->next_seq, all->next_seq);
    append(turn.assistant_message.id, 0, "x");
    auto one = run(store_->changed_since(kAlice, s.id, Since{.seq = all->next_seq}));
    ASSERT_EQ(one->messages.size(), 1u);
    EXPECT_EQ(one->messages[0].content, "x");
    EXPECT_GT(one->next_seq, all->next_seq);
}

TEST_F(SqliteStoreTest, ChangedSinceWithALimitAnswersInOrderAndMissesNothing) {
    auto s = new_session();
    for (int i = 0; i < 5; ++i) {
        auto turn = new_turn(s, "q" + std::to_string(i));
        finish(turn.assistant_message.id, 0, "a", "a");
    }
    auto live = new_turn(s, "last");
    append(live.assistant_message.id, 0, "partial");
    // Polling three at a time from the start sees every message exactly
    // once, in order of change, the live one last.
    std::vector<std::string> seen;
    Since since{.limit = 3};
    for (int polls = 0; polls < 10; ++polls) {
        auto page = run(store_->changed_since(kAlice, s.id, since));
        ASSERT_TRUE(page);
        EXPECT_LE(page->messages.size(), 3u);
        for (const auto& m : page->messages) seen.push_back(m.id.value);
        since.seq = page->next_seq;
        if (!page->truncated) break;
    }
    EXPECT_EQ(seen.size(), 12u);
    std::set<std::string> unique(seen.begin(), seen.end());
    EXPECT_EQ(unique.size(), 12u);
    EXPECT_EQ(seen.back(), live.assistant_message.id.value);
}

TEST_F(SqliteStoreTest, HistoryPagesGoBackwardsFromTheNewest) {
    auto s = new_session();
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto turn = new_turn(s, "q" + std::to_string(i));
        finish(turn.assistant_message.id, 0, "a", "a");
        ids.push_back(turn.user_message.id.value);
        ids.push_back(turn.assistant_message.id.value);
    }
    auto newest = run(store_->list_messages_page(kAlice, s.id, std::nullopt, 4));
    ASSERT_TRUE(newest);
    ASSERT_EQ(newest->messages.size(), 4u);
    EXPECT_EQ(newest->messages.front().id.value, ids[2]);  // oldest first within the page
    EXPECT_EQ(newest->messages.back().id.value, ids[5]);
    ASSERT_TRUE(newest->next);
    auto older = run(store_->list_messages_page(kAlice, s.id, newest->next, 4));
    ASSERT_EQ(older->messages.size(), 2u);
    EXPECT_EQ(older->messages.front().id.value, ids[0]);
    EXPECT_FALSE(older->next);
    EXPECT_EQ(run(store_->list_messages_page(kBob, s.id, std::nullopt, 4)).error(),
              Error::not_found);
}

TEST_F(SqliteStoreTest, ChangedSinceAcceptsATime) {
    auto s = new_session();
    new_turn(s);
    auto later = run(store_->changed_since(kAlice, s.id, Since{.time = now_millis() + 60000}));
    EXPECT_TRUE(later->messages.empty());
    auto earlier = run(store_->changed_since(kAlice, s.id, Since{.time = 0}));
    EXPECT_EQ(earlier->messages.size(), 2u);
}

TEST_F(SqliteStoreTest, NextAssistantMessageFollowsCreationOrder) {
    auto s = new_session();
    auto first = new_turn(s);
    finish(first.assistant_message.id, 0, "a", "a");
    auto second = new_turn(s, "again");
    auto n1 = run(store_->next_assistant_message(kAlice, s.id, std::nullopt));
    ASSERT_TRUE(n1 && *n1);
    EXPECT_EQ((*n1)->id, first.assistant_message.id);
    auto n2 = run(store_->next_assistant_message(kAlice, s.id, first.assistant_message.id));
    EXPECT_EQ((*n2)->id, second.assistant_message.id);
    auto n3 = run(store_->next_assistant_message(kAlice, s.id, second.assistant_message.id));
    EXPECT_FALSE(*n3);
}

TEST_F(SqliteStoreTest, InterruptedGenerationsCloseWithTheirContentAfterReopen) {
    auto s = new_session();
    auto turn = new_turn(s);
    append(turn.assistant_message.id, 0, "half an ");
    append(turn.assistant_message.id, 8, "answer");
    reopen();
    EXPECT_EQ(*run(store_->close_interrupted()), 1u);
    auto m = run(store_->get_message(kAlice, turn.assistant_message.id));
    EXPECT_EQ(m->status, MessageStatus::error);
    ASSERT_TRUE(m->error);
    EXPECT_EQ(m->error->code, "interrupted");
    EXPECT_EQ(m->finish_reason, "interrupted");
    EXPECT_EQ(m->content, "half an answer");
    EXPECT_EQ(*run(store_->close_interrupted()), 0u);
}

TEST_F(SqliteStoreTest, ChunksOfEndedMessagesAreCollectedAndLiveOnesKept) {
    Database db(config_.path.string(), Database::Mode::read_only);
    auto count = [&] {
        auto q = db.cached("SELECT COUNT(*) FROM ai_chat_message_chunks");
        q.step();
        return q.integer(0);
    };
    auto end_quick_turns = [&](int n) {
        for (int i = 0; i < n; ++i) {
            auto t = new_turn(new_session());
            append(t.assistant_message.id, 0, "done");
            finish(t.assistant_message.id, 4, "", "done");
        }
    };
    end_quick_turns(5);
    EXPECT_EQ(count(), 0);  // each ended with nothing else live: its chunks went at once
    auto live = new_turn(new_session());
    append(live.assistant_message.id, 0, "still ");
    append(live.assistant_message.id, 6, "here");
    end_quick_turns(15);
    EXPECT_EQ(count(), 2 + 15);  // while one message is live, collection waits for 16 endings
    end_quick_turns(1);          // the 16th: only chunks older than the live message could go
    EXPECT_EQ(count(), 2 + 16);
    EXPECT_EQ(run(store_->get_message(kAlice, live.assistant_message.id))->content, "still here");
    finish(live.assistant_message.id, 10, "", "still here");  // the last live message ends
    EXPECT_EQ(count(), 0);
    EXPECT_EQ(run(store_->get_message(kAlice, live.assistant_message.id))->content, "still here");
}

TEST_F(SqliteStoreTest, DeletingASessionRemovesItsMessages) {
    auto s = new_session();
    auto turn = new_turn(s);
    ASSERT_TRUE(run(store_->delete_session(kAlice, s.id)));
    EXPECT_EQ(run(store_->get_session(kAlice, s.id)).error(), Error::not_found);
    EXPECT_EQ(run(store_->get_message(kAlice, turn.user_message.id)).error(), Error::not_found);
}

}  // namespace
}  // namespace chatd::store::sqlite

namespace chatd::store::sqlite {
namespace {

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
