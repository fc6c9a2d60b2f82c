// The ChatStore contract (store/chat_store.hpp), typed over every backend:
// each test runs against each store, and none is skipped.
#include "store/chat_store.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/write_plan.hpp"

#include "support/pg.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace chatd::store {
namespace {

const UserId kAlice{"usr_alice"};
const UserId kBob{"usr_bob"};
const LeaseTerms kNodeA{.node = "node-a", .ttl = std::chrono::seconds(30)};
const LeaseTerms kNodeB{.node = "node-b", .ttl = std::chrono::seconds(30)};

// SQLite: a file in a fresh directory; several stores may open it.
class SqliteBackend {
public:
    std::unique_ptr<ChatStore> open(boost::asio::io_context&) {
        return std::make_unique<sqlite::SqliteStore>(config_);
    }

    // Runs SQL beside the store, on a connection of its own.
    void execute(const std::string& sql) {
        sqlite::Database db(config_.path.string(), sqlite::Database::Mode::read_write);
        db.exec(sql);
    }
    std::int64_t count(const std::string& sql) {
        sqlite::Database db(config_.path.string(), sqlite::Database::Mode::read_only);
        auto q = db.cached(sql);
        return q.step() ? q.integer(0) : -1;
    }
    // The chunk log's rows of ended messages go at its next collection, by
    // the clock of the commits: a commit two seconds on runs one. A short
    // log, so that a live message holding its head back is compacted.
    void collect(ChatStore& store, boost::asio::io_context& io) {
        auto r = test::run(io, store.commit(Batch{.at = now_millis() + 2000}));
        ASSERT_TRUE(r);
    }

    // The database itself refuses chunk rows of message `id` (as it would
    // refuse a value it cannot hold).
    void refuse_chunks_of(const MessageId& id) {
        execute("CREATE TRIGGER refuse_chunks BEFORE INSERT ON ai_chat_message_chunks WHEN "
                "NEW.message_id = '" + id.value + "' BEGIN SELECT RAISE(ABORT, 'refused'); END");
    }

private:
    test::TempDir dir_;
    sqlite::SqliteConfig config_{.path = dir_.path() / "chatd.sqlite3", .max_log_rows = 4};
};

// PostgreSQL: a fresh database in the test cluster; several stores may open it.
class PgBackend {
public:
    std::unique_ptr<ChatStore> open(boost::asio::io_context& io) {
        return test::run(io, postgres::PgStore::open(io.get_executor(),
                                                     postgres::PgStoreConfig{.conninfo = conninfo_}));
    }

    void execute(const std::string& sql) { test::pg_exec(conninfo_, sql); }
    std::int64_t count(const std::string& sql) {
        return std::stoll(test::pg_exec(conninfo_, sql).value_or("-1"));
    }
    // Chunk rows go in the transaction that ends their message.
    void collect(ChatStore&, boost::asio::io_context&) {}
    void refuse_chunks_of(const MessageId& id) {
        execute("CREATE FUNCTION refuse_chunk() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused'; END $$");
        execute("CREATE TRIGGER refuse_chunks BEFORE INSERT ON ai_chat_message_chunks FOR EACH ROW "
                "WHEN (NEW.message_id = '" + id.value + "') EXECUTE FUNCTION refuse_chunk()");
    }

private:
    std::string conninfo_ = test::fresh_pg_database();
};

template <class Backend>
class ChatStoreContract : public ::testing::Test {
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
                                                      .idempotency_key = key,
                                                      .request_fingerprint = content,
                                                      .lease = kNodeA}));
        EXPECT_TRUE(outcome);
        EXPECT_TRUE(outcome->turn);
        return *outcome->turn;
    }

    Claims claim(const LeaseTerms& lease, ClaimLimits limits = {}) {
        auto r = run(store_->claim_orphans(lease, limits));
        EXPECT_TRUE(r) << r.error().message();
        return r ? std::move(*r) : Claims{};
    }

    CommitResult commit(std::vector<MessageWrite> writes) {
        auto r = run(store_->commit(Batch{.writes = std::move(writes), .at = now_millis()}));
        EXPECT_TRUE(r);
        return r ? *r : CommitResult{};
    }

    static MessageWrite chunk(const MessageId& id, std::int64_t offset, std::string text) {
        return MessageWrite{.id = id, .offset = offset, .text = std::move(text)};
    }

    static MessageWrite end(const MessageId& id, std::int64_t offset, std::string text,
                            std::string full, MessageStatus status = MessageStatus::completed) {
        return MessageWrite{.id = id,
                            .offset = offset,
                            .text = std::move(text),
                            .terminal = Terminal{.status = status,
                                                 .finish_reason = "stop",
                                                 .usage = Usage{3, 4}},
                            .full_content = std::move(full)};
    }

    void append(const MessageId& id, std::int64_t offset, std::string text) {
        auto r = commit({chunk(id, offset, std::move(text))});
        ASSERT_EQ(r.writes.size(), 1u);
        EXPECT_FALSE(r.writes[0].error) << r.writes[0].error.message();
    }

    void finish(const MessageId& id, std::int64_t offset, std::string text, std::string full,
                MessageStatus status = MessageStatus::completed) {
        auto r = commit({end(id, offset, std::move(text), std::move(full), status)});
        ASSERT_EQ(r.writes.size(), 1u);
        EXPECT_FALSE(r.writes[0].error) << r.writes[0].error.message();
    }

    // Runs two store calls concurrently to their ends; their results.
    template <class A, class B>
    auto both(net::awaitable<A> a, net::awaitable<B> b) {
        auto fa = boost::asio::co_spawn(io_, std::move(a), boost::asio::use_future);
        auto fb = boost::asio::co_spawn(io_, std::move(b), boost::asio::use_future);
        io_.restart();
        while (fa.wait_for(std::chrono::seconds(0)) != std::future_status::ready ||
               fb.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
            io_.run_one_for(std::chrono::seconds(1));
        return std::pair(fa.get(), fb.get());
    }

    std::string content(const MessageId& id) { return run(store_->get_message(kAlice, id))->content; }

    void reopen() {
        store_.reset();
        store_ = backend_.open(io_);
    }

    Backend backend_;
    boost::asio::io_context io_;
    std::unique_ptr<ChatStore> store_ = backend_.open(io_);
};

class BackendNames {
public:
    template <class T>
    static std::string GetName(int) {
        return std::is_same_v<T, SqliteBackend> ? "sqlite" : "postgres";
    }
};

using Backends = ::testing::Types<SqliteBackend, PgBackend>;
TYPED_TEST_SUITE(ChatStoreContract, Backends, BackendNames);

TYPED_TEST(ChatStoreContract, CreatesAndReadsSessions) {
    auto s = this->new_session();
    auto read = this->run(this->store_->get_session(kAlice, s.id));
    ASSERT_TRUE(read);
    EXPECT_EQ(read->title, "t");
    EXPECT_EQ(read->model, "simulated");
}

TYPED_TEST(ChatStoreContract, AnotherUsersSessionIsNotFound) {
    auto s = this->new_session(kAlice);
    EXPECT_EQ(this->run(this->store_->get_session(kBob, s.id)).error(), Error::not_found);
    EXPECT_EQ(this->run(this->store_->list_messages(kBob, s.id)).error(), Error::not_found);
    EXPECT_EQ(this->run(this->store_->delete_session(kBob, s.id)).error(), Error::not_found);
    auto turn = this->new_turn(s);
    EXPECT_EQ(this->run(this->store_->get_message(kBob, turn.user_message.id)).error(), Error::not_found);
    EXPECT_TRUE(this->run(this->store_->list_sessions(kBob, 10, std::nullopt))->sessions.empty());
}

TYPED_TEST(ChatStoreContract, ListsSessionsNewestFirstInPages) {
    std::vector<SessionId> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(this->new_session().id);
    auto first = this->run(this->store_->list_sessions(kAlice, 2, std::nullopt));
    ASSERT_TRUE(first);
    ASSERT_EQ(first->sessions.size(), 2u);
    EXPECT_EQ(first->sessions[0].id, ids[4]);
    ASSERT_TRUE(first->next);
    auto second = this->run(this->store_->list_sessions(kAlice, 3, first->next));
    ASSERT_EQ(second->sessions.size(), 3u);
    EXPECT_EQ(second->sessions[2].id, ids[0]);
    EXPECT_FALSE(second->next);
}

TYPED_TEST(ChatStoreContract, AChatIdFindsOrCreatesOneSessionPerUser) {
    auto open = [&](const UserId& user, std::string title) {
        return this->run(this->store_->create_session(
            user, NewSession{.title = std::move(title), .model = "simulated", .chat_id = "chat-1"}));
    };
    EXPECT_EQ(this->run(this->store_->find_chat(kAlice, "chat-1")).error(), Error::not_found);
    auto first = open(kAlice, "first");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->chat_id, "chat-1");
    auto again = open(kAlice, "second");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, first->id);
    EXPECT_EQ(again->title, "first");  // found, not made again
    auto found = this->run(this->store_->find_chat(kAlice, "chat-1"));
    ASSERT_TRUE(found);
    EXPECT_EQ(found->id, first->id);
    // Bob's chat of the same id is his own session; Alice's stays hers.
    auto bobs = open(kBob, "bob");
    ASSERT_TRUE(bobs);
    EXPECT_NE(bobs->id, first->id);
    EXPECT_EQ(this->run(this->store_->find_chat(kBob, "chat-1"))->id, bobs->id);
    EXPECT_EQ(this->run(this->store_->get_session(kBob, first->id)).error(), Error::not_found);
    // Sessions without a chat id do not collide with one another.
    EXPECT_FALSE(this->new_session().chat_id);
    EXPECT_FALSE(this->new_session().chat_id);
    // The limit holds for a new chat, but an existing one is still found.
    auto limited = [&](std::string chat) {
        return this->run(this->store_->create_session(
            kAlice, NewSession{.title = "t", .model = "simulated", .max_per_user = 3,
                               .chat_id = std::move(chat)}));
    };
    EXPECT_EQ(limited("chat-2").error(), Error::too_many_sessions);
    EXPECT_EQ(limited("chat-1")->id, first->id);
}

// The per-user limit counts what this client made and removed and what
// another client (another process or node on the same database) made.
TYPED_TEST(ChatStoreContract, TheSessionLimitCountsCreatesDeletesAndAnotherClientsSessions) {
    auto other = this->backend_.open(this->io_);
    auto create = [&](ChatStore& store, const UserId& user = kAlice) {
        return this->run(store.create_session(
            user, NewSession{.title = "t", .model = "simulated", .max_per_user = 3}));
    };
    auto first = create(*this->store_);
    ASSERT_TRUE(first);
    ASSERT_TRUE(create(*this->store_));
    ASSERT_TRUE(create(*other));
    EXPECT_EQ(create(*this->store_).error(), Error::too_many_sessions);
    ASSERT_TRUE(this->run(this->store_->delete_session(kAlice, first->id)));
    EXPECT_TRUE(create(*this->store_));
    EXPECT_EQ(create(*other).error(), Error::too_many_sessions);
    EXPECT_EQ(create(*this->store_).error(), Error::too_many_sessions);
    EXPECT_TRUE(create(*this->store_, kBob));
}

TYPED_TEST(ChatStoreContract, TwoStoreClientsOpeningOneNewChatMakeOneSession) {
    auto other = this->backend_.open(this->io_);
    auto open = [](ChatStore& store) {
        return store.create_session(
            kAlice, NewSession{.title = "t", .model = "simulated", .chat_id = "raced"});
    };
    auto [ra, rb] = this->both(open(*this->store_), open(*other));
    ASSERT_TRUE(ra && rb);
    EXPECT_EQ(ra->id, rb->id);
}

TYPED_TEST(ChatStoreContract, BeginTurnCreatesUserAndEmptyGeneratingAssistant) {
    auto s = this->new_session();
    auto turn = this->new_turn(s, "question");
    EXPECT_EQ(turn.user_message.status, MessageStatus::completed);
    EXPECT_EQ(turn.assistant_message.status, MessageStatus::generating);
    EXPECT_TRUE(turn.assistant_message.content.empty());
    auto history = this->run(this->store_->list_messages(kAlice, s.id));
    ASSERT_EQ(history->size(), 2u);
    EXPECT_EQ((*history)[0].content, "question");
    EXPECT_EQ((*history)[1].id, turn.assistant_message.id);
}

// The turn reads the session in its own transaction: the answer takes the
// model and system prompt the session has then (a change just before it
// included), and the caller needs no read of its own.
TYPED_TEST(ChatStoreContract, BeginTurnTakesTheSessionsModelAndSystemPromptAsItIsThen) {
    auto s = this->run(this->store_->create_session(
        kAlice, NewSession{.title = "t", .system_prompt = "be brief", .model = "m-1"}));
    ASSERT_TRUE(s);
    ASSERT_TRUE(this->run(this->store_->update_session(
        kAlice, s->id, SessionPatch{.system_prompt = "be kind", .model = "m-2"})));
    auto turn = this->new_turn(*s);
    EXPECT_EQ(turn.assistant_message.model, "m-2");
    EXPECT_EQ(turn.system_prompt, "be kind");
    auto stored = this->run(this->store_->get_message(kAlice, turn.assistant_message.id));
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->model, "m-2");
}

// A session whose model is not among those allowed starts no turn and
// writes nothing; an unknown session is not found before that.
TYPED_TEST(ChatStoreContract, BeginTurnRefusesAModelNotAllowedAndWritesNothing) {
    auto s = this->new_session();  // "simulated"
    auto only_other =
        std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"m-other"});
    auto refused = this->run(this->store_->begin_turn(
        kAlice, s.id, NewTurn{.content = "q", .allowed_models = only_other, .lease = kNodeA}));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), Error::model_not_allowed);
    EXPECT_TRUE(this->run(this->store_->list_messages(kAlice, s.id))->empty());
    auto unknown = this->run(this->store_->begin_turn(
        kAlice, SessionId{"ses_unknown"},
        NewTurn{.content = "q", .allowed_models = only_other, .lease = kNodeA}));
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error(), Error::not_found);
    auto allowed = std::make_shared<const std::vector<std::string>>(
        std::vector<std::string>{"m-other", "simulated"});
    auto made = this->run(this->store_->begin_turn(
        kAlice, s.id, NewTurn{.content = "q", .allowed_models = allowed, .lease = kNodeA}));
    ASSERT_TRUE(made && made->turn);
    EXPECT_EQ(made->turn->assistant_message.model, "simulated");
}

TYPED_TEST(ChatStoreContract, SecondTurnWhileGeneratingNamesTheActiveMessage) {
    auto s = this->new_session();
    auto turn = this->new_turn(s);
    auto second = this->run(this->store_->begin_turn(kAlice, s.id, NewTurn{.content = "again"}));
    ASSERT_TRUE(second);
    EXPECT_FALSE(second->turn);
    EXPECT_EQ(second->active_message, turn.assistant_message.id);
    EXPECT_EQ(this->run(this->store_->list_messages(kAlice, s.id))->size(), 2u);
}

TYPED_TEST(ChatStoreContract, IdempotencyKeyReplaysTheFirstAnswer) {
    auto s = this->new_session();
    auto first = this->new_turn(s, "hi", "key-1");
    this->append(first.assistant_message.id, 0, "partial");
    auto again = this->new_turn(s, "hi", "key-1");
    EXPECT_TRUE(again.replayed);
    EXPECT_EQ(again.user_message.id, first.user_message.id);
    EXPECT_EQ(again.assistant_message.id, first.assistant_message.id);
    EXPECT_EQ(again.assistant_message.content, "");
    EXPECT_EQ(again.assistant_message.version, 1);
    EXPECT_EQ(this->run(this->store_->list_messages(kAlice, s.id))->size(), 2u);
}

TYPED_TEST(ChatStoreContract, IdempotencyKeyWithAnotherBodyIsRejected) {
    auto s = this->new_session();
    this->new_turn(s, "hi", "key-1");
    auto other = this->run(this->store_->begin_turn(
        kAlice, s.id,
        NewTurn{.content = "bye", .idempotency_key = "key-1", .request_fingerprint = "bye"}));
    EXPECT_EQ(other.error(), Error::idempotency_key_reused);
}

TYPED_TEST(ChatStoreContract, IdempotencyKeysAreScopedByUser) {
    auto a = this->new_session(kAlice);
    auto b = this->new_session(kBob);
    auto ta = this->new_turn(a, "hi", "shared-key", kAlice);
    auto tb = this->new_turn(b, "hi", "shared-key", kBob);
    EXPECT_FALSE(tb.replayed);
    EXPECT_NE(ta.assistant_message.id, tb.assistant_message.id);
}

TYPED_TEST(ChatStoreContract, GeneratingMessageShowsCommittedChunksInOrder) {
    auto turn = this->new_turn(this->new_session());
    const auto& id = turn.assistant_message.id;
    this->append(id, 0, "Hello");
    this->append(id, 5, ", wörld");
    auto m = this->run(this->store_->get_message(kAlice, id));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->content, "Hello, wörld");
    EXPECT_EQ(m->status, MessageStatus::generating);
    EXPECT_EQ(m->version, 3);
}

TYPED_TEST(ChatStoreContract, TerminalCommitStoresWholeContentAndStatus) {
    auto turn = this->new_turn(this->new_session());
    const auto& id = turn.assistant_message.id;
    this->append(id, 0, "Hello");
    this->finish(id, 5, "!", "Hello!");
    auto m = this->run(this->store_->get_message(kAlice, id));
    EXPECT_EQ(m->content, "Hello!");
    EXPECT_EQ(m->version, 3);
    EXPECT_EQ(m->status, MessageStatus::completed);
    EXPECT_FALSE(m->is_streaming);
    EXPECT_EQ(m->finish_reason, "stop");
    ASSERT_TRUE(m->usage);
    EXPECT_EQ(m->usage->output_tokens, 4);
}

TYPED_TEST(ChatStoreContract, PerChunkModeRewritesContent) {
    auto turn = this->new_turn(this->new_session());
    const auto& id = turn.assistant_message.id;
    for (std::string full : {"a", "ab", "abc"}) {
        Batch batch{.writes = {MessageWrite{.id = id,
                                            .offset = static_cast<std::int64_t>(full.size() - 1),
                                            .text = full.substr(full.size() - 1),
                                            .rewrite_content = true,
                                            .full_content = full}}};
        ASSERT_TRUE(this->run(this->store_->commit(std::move(batch))));
    }
    auto m = this->run(this->store_->get_message(kAlice, id));
    EXPECT_EQ(m->content, "abc");
    EXPECT_EQ(m->version, 4);
}

// A poll from next_seq answers what changed since, and perhaps again some
// message it answered before, unchanged (PostgreSQL does while another
// transaction in the cluster holds its horizon back): nothing new is new.
TYPED_TEST(ChatStoreContract, ChangedSinceReturnsOnlyLaterChanges) {
    auto s = this->new_session();
    auto turn = this->new_turn(s);
    auto all = this->run(this->store_->changed_since(kAlice, s.id, Since{}));
    ASSERT_TRUE(all);
    EXPECT_EQ(all->messages.size(), 2u);
    EXPECT_TRUE(all->has_more_generating);
    std::map<std::string, std::int64_t> known;
    for (const auto& m : all->messages) known[m.id.value] = m.version;
    auto changed = [&](const Changes& c) {
        std::vector<Message> out;
        for (const auto& m : c.messages)
            if (!known.contains(m.id.value) || m.version > known[m.id.value]) out.push_back(m);
        return out;
    };
    auto none = this->run(this->store_->changed_since(kAlice, s.id, Since{.seq = all->next_seq}));
    EXPECT_TRUE(changed(*none).empty());
    EXPECT_GE(none->next_seq, all->next_seq);
    this->append(turn.assistant_message.id, 0, "x");
    auto one = this->run(this->store_->changed_since(kAlice, s.id, Since{.seq = all->next_seq}));
    auto fresh = changed(*one);
    ASSERT_EQ(fresh.size(), 1u);
    EXPECT_EQ(fresh[0].content, "x");
    EXPECT_GE(one->next_seq, all->next_seq);
}

TYPED_TEST(ChatStoreContract, ChangedSinceWithALimitAnswersInOrderAndMissesNothing) {
    auto s = this->new_session();
    for (int i = 0; i < 5; ++i) {
        auto turn = this->new_turn(s, "q" + std::to_string(i));
        this->finish(turn.assistant_message.id, 0, "a", "a");
    }
    auto live = this->new_turn(s, "last");
    this->append(live.assistant_message.id, 0, "partial");
    // Polling three at a time from the start sees every message, in order of
    // change, the live one last. A store may repeat one at a page's edge, and
    // PostgreSQL pages no further than the oldest transaction still running
    // in the cluster (other tests' too): it answers the same page until that
    // one ends, so the loop waits a little between such polls.
    std::vector<std::string> seen;
    std::set<std::string> unique;
    Since since{.limit = 3};
    boost::asio::steady_timer pause(this->io_);
    for (int polls = 0; polls < 5000; ++polls) {
        auto page = this->run(this->store_->changed_since(kAlice, s.id, since));
        ASSERT_TRUE(page);
        EXPECT_LE(page->messages.size(), 3u);
        auto known = unique.size();
        for (const auto& m : page->messages) {
            seen.push_back(m.id.value);
            unique.insert(m.id.value);
        }
        since.seq = page->next_seq;
        if (!page->truncated) break;
        if (unique.size() == known) {
            pause.expires_after(std::chrono::milliseconds(2));
            pause.wait();
        }
    }
    EXPECT_EQ(unique.size(), 12u);
    EXPECT_EQ(seen.back(), live.assistant_message.id.value);
}

TYPED_TEST(ChatStoreContract, HistoryPagesGoBackwardsFromTheNewest) {
    auto s = this->new_session();
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto turn = this->new_turn(s, "q" + std::to_string(i));
        this->finish(turn.assistant_message.id, 0, "a", "a");
        ids.push_back(turn.user_message.id.value);
        ids.push_back(turn.assistant_message.id.value);
    }
    auto newest = this->run(this->store_->list_messages_page(kAlice, s.id, std::nullopt, 4));
    ASSERT_TRUE(newest);
    ASSERT_EQ(newest->messages.size(), 4u);
    EXPECT_EQ(newest->messages.front().id.value, ids[2]);  // oldest first within the page
    EXPECT_EQ(newest->messages.back().id.value, ids[5]);
    ASSERT_TRUE(newest->next);
    auto older = this->run(this->store_->list_messages_page(kAlice, s.id, newest->next, 4));
    ASSERT_EQ(older->messages.size(), 2u);
    EXPECT_EQ(older->messages.front().id.value, ids[0]);
    EXPECT_FALSE(older->next);
    EXPECT_EQ(this->run(this->store_->list_messages_page(kBob, s.id, std::nullopt, 4)).error(),
              Error::not_found);
}

TYPED_TEST(ChatStoreContract, ChangedSinceAcceptsATime) {
    auto s = this->new_session();
    this->new_turn(s);
    auto later = this->run(this->store_->changed_since(kAlice, s.id, Since{.time = now_millis() + 60000}));
    EXPECT_TRUE(later->messages.empty());
    auto earlier = this->run(this->store_->changed_since(kAlice, s.id, Since{.time = 0}));
    EXPECT_EQ(earlier->messages.size(), 2u);
}

TYPED_TEST(ChatStoreContract, NextAssistantMessageFollowsCreationOrder) {
    auto s = this->new_session();
    auto first = this->new_turn(s);
    this->finish(first.assistant_message.id, 0, "a", "a");
    auto second = this->new_turn(s, "again");
    auto n1 = this->run(this->store_->next_assistant_message(kAlice, s.id, std::nullopt));
    ASSERT_TRUE(n1 && *n1);
    EXPECT_EQ((*n1)->id, first.assistant_message.id);
    auto n2 = this->run(this->store_->next_assistant_message(kAlice, s.id, first.assistant_message.id));
    EXPECT_EQ((*n2)->id, second.assistant_message.id);
    auto n3 = this->run(this->store_->next_assistant_message(kAlice, s.id, second.assistant_message.id));
    EXPECT_FALSE(*n3);
}

// A node that cannot continue answers (its provider cannot) ends the ones it
// takes over: error/interrupted, with every stored byte.
TYPED_TEST(ChatStoreContract, OrphansTakenWithoutRecoveriesEndInterruptedWithTheirContent) {
    auto s = this->new_session();
    auto turn = this->new_turn(s);
    this->append(turn.assistant_message.id, 0, "half an ");
    this->append(turn.assistant_message.id, 8, "answer");
    this->reopen();
    ASSERT_EQ(*this->run(this->store_->release_stale_leases("node-a")), 1u);
    auto claims = this->claim(kNodeA, {.max_recoveries = 0});
    EXPECT_EQ(claims.ended.size(), 1u);
    EXPECT_TRUE(claims.continued.empty());
    auto m = this->run(this->store_->get_message(kAlice, turn.assistant_message.id));
    EXPECT_EQ(m->status, MessageStatus::error);
    ASSERT_TRUE(m->error);
    EXPECT_EQ(m->error->code, "interrupted");
    EXPECT_EQ(m->finish_reason, "interrupted");
    EXPECT_EQ(m->content, "half an answer");
    EXPECT_EQ(m->version, 4);
    this->backend_.collect(*this->store_, this->io_);
    EXPECT_EQ(this->backend_.count("SELECT COUNT(*) FROM ai_chat_message_chunks"), 0);
    EXPECT_EQ(this->claim(kNodeA, {.max_recoveries = 0}).ended.size(), 0u);
}

TYPED_TEST(ChatStoreContract, DeletingASessionRemovesItsMessages) {
    auto s = this->new_session();
    auto turn = this->new_turn(s);
    ASSERT_TRUE(this->run(this->store_->delete_session(kAlice, s.id)));
    EXPECT_EQ(this->run(this->store_->get_session(kAlice, s.id)).error(), Error::not_found);
    EXPECT_EQ(this->run(this->store_->get_message(kAlice, turn.user_message.id)).error(), Error::not_found);
}

// Notices until one satisfies `wanted`, merged; the test fails after 10 s.
template <class Wanted>
ChangeNotice await_notice(boost::asio::io_context& io, ChangeListener& listener, Wanted wanted) {
    ChangeNotice seen;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!wanted(seen) && std::chrono::steady_clock::now() < until) {
        auto n = test::run(io, listener.next(std::chrono::steady_clock::now() +
                                             std::chrono::milliseconds(200)));
        if (!n) continue;  // PostgreSQL: not listening yet
        seen.everything = seen.everything || n->everything;
        seen.messages.insert(seen.messages.end(), n->messages.begin(), n->messages.end());
        seen.sessions.insert(seen.sessions.end(), n->sessions.begin(), n->sessions.end());
        seen.chunks.insert(seen.chunks.end(), n->chunks.begin(), n->chunks.end());
    }
    return seen;
}

template <class Id>
bool names(const std::vector<Id>& ids, const Id& id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// A listener's first notice is "everything" (it knows nothing before it);
// then every change to a message or to a session's messages is announced:
// a turn, a commit, a claim that ends an orphan, a deletion.
TYPED_TEST(ChatStoreContract, ListenersHearEveryChangeToMessages) {
    auto listener = this->store_->listen(this->io_.get_executor());
    auto first = await_notice(this->io_, *listener, [](const ChangeNotice& n) { return n.everything; });
    EXPECT_TRUE(first.everything);

    auto s = this->new_session();
    auto turn = this->new_turn(s);
    const auto& id = turn.assistant_message.id;
    EXPECT_TRUE(names(await_notice(this->io_, *listener,
                                   [&](const ChangeNotice& n) { return names(n.sessions, s.id); })
                          .sessions,
                      s.id));
    // A commit that only appends carries its text.
    this->append(id, 0, "Hello");
    auto appended = await_notice(this->io_, *listener,
                                 [&](const ChangeNotice& n) { return !n.chunks.empty(); });
    ASSERT_EQ(appended.chunks.size(), 1u);
    EXPECT_EQ(appended.chunks[0].id, id);
    EXPECT_EQ(appended.chunks[0].offset, 0);
    EXPECT_EQ(appended.chunks[0].text, "Hello");
    EXPECT_EQ(appended.chunks[0].version, 2);
    this->backend_.execute("UPDATE ai_chat_messages SET lease_expires_at = 0 WHERE id = '" +
                           id.value + "'");
    EXPECT_EQ(this->claim(kNodeB, {.max_recoveries = 0}).ended.size(), 1u);
    EXPECT_TRUE(names(
        await_notice(this->io_, *listener, [&](const ChangeNotice& n) { return names(n.messages, id); })
            .messages,
        id));
    ASSERT_TRUE(this->run(this->store_->delete_session(kAlice, s.id)));
    EXPECT_TRUE(names(await_notice(this->io_, *listener,
                                   [&](const ChangeNotice& n) { return names(n.sessions, s.id); })
                          .sessions,
                      s.id));
}

// A follower reads only what was committed after what it holds, for many
// messages at once; ended messages are read to their end, deleted ones are
// left out.
TYPED_TEST(ChatStoreContract, ReadTailsAnswersTheBytesAfterEachPosition) {
    auto s = this->new_session();
    const auto a = this->new_turn(s).assistant_message.id;
    this->append(a, 0, "Hello, ");
    this->append(a, 7, "wörld");
    const auto b = this->new_turn(this->new_session()).assistant_message.id;
    this->append(b, 0, "one");
    this->finish(b, 3, " two", "one two");
    const auto gone = this->new_turn(this->new_session()).assistant_message.id;
    auto read = [&](std::vector<ReadPosition> at) {
        auto r = this->run(this->store_->read_tails(std::move(at)));
        EXPECT_TRUE(r);
        std::map<std::string, Message> by_id;
        for (auto& m : *r) by_id[m.id.value] = std::move(m);
        return by_id;
    };
    auto tails = read({{a, 0}, {b, 3}, {MessageId{"msg_unknown"}, 0}});
    ASSERT_EQ(tails.size(), 2u);
    EXPECT_EQ(tails[a.value].content, "Hello, wörld");
    EXPECT_EQ(tails[a.value].status, MessageStatus::generating);
    EXPECT_EQ(tails[a.value].version, 3);
    EXPECT_EQ(tails[b.value].content, " two");
    EXPECT_EQ(tails[b.value].status, MessageStatus::completed);
    EXPECT_EQ(tails[b.value].finish_reason, "stop");
    EXPECT_EQ(read({{a, 7}})[a.value].content, "wörld");
    EXPECT_EQ(read({{a, 3}})[a.value].content, "lo, wörld");  // inside a chunk
    EXPECT_EQ(read({{a, 13}})[a.value].content, "");           // at its end
    EXPECT_EQ(read({{a, 13}})[a.value].version, 3);
    ASSERT_TRUE(this->run(this->store_->delete_session(kAlice, s.id)));
    EXPECT_TRUE(read({{a, 0}}).empty());
    EXPECT_EQ(read({{gone, 0}}).size(), 1u);
}

// A commit whose outcome was unknown (the connection dropped during COMMIT)
// is retried as it was, or grown by later text: each byte is stored once,
// in order, and the message's version counts the stored changes only (I2).
TYPED_TEST(ChatStoreContract, ARetriedCommitStoresEachByteOnce) {
    auto turn = this->new_turn(this->new_session());
    const auto& id = turn.assistant_message.id;
    auto first = this->commit({this->chunk(id, 0, "Hello")});
    ASSERT_FALSE(first.writes[0].error);
    EXPECT_EQ(first.writes[0].version, 2);
    auto same = this->commit({this->chunk(id, 0, "Hello")});
    ASSERT_FALSE(same.writes[0].error);
    EXPECT_EQ(same.writes[0].version, 2);
    auto grown = this->commit({this->chunk(id, 0, "Hello, wörld")});
    ASSERT_FALSE(grown.writes[0].error);
    EXPECT_EQ(grown.writes[0].version, 3);
    EXPECT_EQ(this->content(id), "Hello, wörld");
    EXPECT_EQ(this->run(this->store_->get_message(kAlice, id))->version, 3);
    // The end, retried: stored once, and a retry of it is answered as stored.
    auto ended = this->commit({this->end(id, 5, ", wörld!", "Hello, wörld!")});
    ASSERT_FALSE(ended.writes[0].error);
    auto again = this->commit({this->end(id, 5, ", wörld!", "Hello, wörld!")});
    ASSERT_FALSE(again.writes[0].error);
    EXPECT_EQ(again.writes[0].version, ended.writes[0].version);
    auto m = this->run(this->store_->get_message(kAlice, id));
    EXPECT_EQ(m->content, "Hello, wörld!");
    EXPECT_EQ(m->status, MessageStatus::completed);
    EXPECT_EQ(m->version, ended.writes[0].version);
}

// Reasoning is stored beside the content, never in it: committed with the
// text in one write, idempotent by its own offset, read back whole by every
// read (the answer, a poll, a follower's tail), kept when the message ends,
// and announced as a change of the message.
TYPED_TEST(ChatStoreContract, ReasoningIsStoredBesideTheContent) {
    auto listener = this->store_->listen(this->io_.get_executor());
    await_notice(this->io_, *listener, [](const ChangeNotice& n) { return n.everything; });
    auto s = this->new_session();
    const auto id = this->new_turn(s).assistant_message.id;
    auto thought = [&](std::int64_t at, std::string reasoning, std::int64_t offset, std::string text) {
        auto w = this->chunk(id, offset, std::move(text));
        w.reasoning_offset = at;
        w.reasoning = std::move(reasoning);
        return w;
    };
    auto first = this->commit({thought(0, "Six times ", 0, "")});
    ASSERT_FALSE(first.writes[0].error);
    EXPECT_EQ(first.writes[0].version, 2);
    EXPECT_TRUE(names(await_notice(this->io_, *listener,
                                   [&](const ChangeNotice& n) { return names(n.messages, id); })
                          .messages,
                      id));
    // Retried and grown, with the first text: each byte once.
    auto grown = this->commit({thought(0, "Six times seven, é.", 0, "The answer")});
    ASSERT_FALSE(grown.writes[0].error);
    EXPECT_EQ(grown.writes[0].version, 3);
    EXPECT_EQ(this->commit({thought(0, "Six times", 0, "The")}).writes[0].version, 3);
    EXPECT_EQ(this->commit({thought(30, "gap", 10, "")}).writes[0].error, Error::store_failure);
    auto live = this->run(this->store_->get_message(kAlice, id));
    EXPECT_EQ(live->reasoning, "Six times seven, é.");
    EXPECT_EQ(live->content, "The answer");
    EXPECT_EQ(live->version, 3);
    auto polled = this->run(this->store_->changed_since(kAlice, s.id, Since{}));
    ASSERT_TRUE(polled);
    EXPECT_EQ(polled->messages.back().reasoning, "Six times seven, é.");
    auto tails = this->run(this->store_->read_tails({{id, 4}}));
    ASSERT_EQ(tails->size(), 1u);
    EXPECT_EQ((*tails)[0].content, "answer");
    EXPECT_EQ((*tails)[0].reasoning, "Six times seven, é.") << "reasoning is read whole";
    // The end keeps it; history has it; the user's message has none.
    auto end = this->end(id, 10, " is 42.", "The answer is 42.");
    end.reasoning_offset = 20;
    end.reasoning = " Done.";
    ASSERT_FALSE(this->commit({end}).writes[0].error);
    auto history = this->run(this->store_->list_messages(kAlice, s.id));
    ASSERT_EQ(history->size(), 2u);
    EXPECT_EQ((*history)[0].reasoning, "");
    EXPECT_EQ((*history)[1].reasoning, "Six times seven, é. Done.");
    EXPECT_EQ((*history)[1].content, "The answer is 42.");
    EXPECT_EQ((*history)[1].status, MessageStatus::completed);
}

// A batch larger than any one statement takes (SQLite inserts its chunk rows
// many to a statement): every generation's text lands whole, in order.
TYPED_TEST(ChatStoreContract, ALargeBatchStoresEachGenerationsText) {
    constexpr int kGenerations = 75;  // 64 + 8 + 2 + 1 rows on SQLite
    std::vector<MessageId> ids;
    for (int i = 0; i < kGenerations; ++i)
        ids.push_back(this->new_turn(this->new_session()).assistant_message.id);
    std::vector<MessageWrite> first, second;
    for (int i = 0; i < kGenerations; ++i) {
        first.push_back(this->chunk(ids[i], 0, "a" + std::to_string(i)));
        second.push_back(this->chunk(ids[i], static_cast<std::int64_t>(first.back().text.size()),
                                     "|b" + std::to_string(i)));
    }
    for (auto* batch : {&first, &second}) {
        auto r = this->commit(*batch);
        ASSERT_EQ(r.writes.size(), static_cast<std::size_t>(kGenerations));
        for (const auto& w : r.writes) EXPECT_FALSE(w.error);
    }
    for (int i = 0; i < kGenerations; ++i)
        EXPECT_EQ(this->content(ids[i]), "a" + std::to_string(i) + "|b" + std::to_string(i));
    // Read back from the log itself as well, not from what the store holds in memory.
    this->reopen();
    for (int i = 0; i < kGenerations; i += 37)
        EXPECT_EQ(this->content(ids[i]), "a" + std::to_string(i) + "|b" + std::to_string(i));
}

// One bad write fails alone: the other generations of the batch are stored.
TYPED_TEST(ChatStoreContract, AWriteAfterAGapIsRefusedAlone) {
    auto a = this->new_turn(this->new_session()).assistant_message.id;
    auto b = this->new_turn(this->new_session()).assistant_message.id;
    auto r = this->commit({this->chunk(a, 0, "fine"), this->chunk(b, 7, "after a gap")});
    ASSERT_EQ(r.writes.size(), 2u);
    EXPECT_FALSE(r.writes[0].error);
    EXPECT_EQ(r.writes[1].error, Error::store_failure);
    EXPECT_EQ(this->content(a), "fine");
    EXPECT_EQ(this->content(b), "");
}

TYPED_TEST(ChatStoreContract, AWriteTheDatabaseRefusesFailsOnlyItsOwnGeneration) {
    auto a = this->new_turn(this->new_session()).assistant_message.id;
    auto b = this->new_turn(this->new_session()).assistant_message.id;
    auto c = this->new_turn(this->new_session()).assistant_message.id;
    this->backend_.refuse_chunks_of(b);
    auto r = this->commit(
        {this->chunk(a, 0, "one"), this->chunk(b, 0, "refused"), this->chunk(c, 0, "three")});
    ASSERT_EQ(r.writes.size(), 3u);
    EXPECT_FALSE(r.writes[0].error);
    EXPECT_EQ(r.writes[1].error, Error::store_failure);
    EXPECT_FALSE(r.writes[2].error);
    EXPECT_EQ(this->content(a), "one");
    EXPECT_EQ(this->content(b), "");
    EXPECT_EQ(this->content(c), "three");
    // The refused generation can still end, with what it has.
    this->finish(b, 0, "", "", MessageStatus::error);
    EXPECT_EQ(this->run(this->store_->get_message(kAlice, b))->status, MessageStatus::error);
}

TYPED_TEST(ChatStoreContract, AnEndedMessageTakesNoMoreText) {
    auto id = this->new_turn(this->new_session()).assistant_message.id;
    this->finish(id, 0, "done", "done");
    auto late = this->commit({this->chunk(id, 4, " and more")});
    EXPECT_EQ(late.writes[0].error, Error::not_generating);
    auto other_end = this->commit({this->end(id, 4, "", "done", MessageStatus::cancelled)});
    EXPECT_EQ(other_end.writes[0].error, Error::not_generating);
    EXPECT_EQ(this->content(id), "done");
    auto gone = this->commit({this->chunk(MessageId{"msg_unknown"}, 0, "x")});
    EXPECT_EQ(gone.writes[0].error, Error::not_generating);
}

// Two store clients (processes, nodes) on one database send into one
// session at the same moment: exactly one answer starts.
TYPED_TEST(ChatStoreContract, TwoStoreClientsStartOneAnswerInASession) {
    auto s = this->new_session();
    auto other = this->backend_.open(this->io_);
    auto send = [&](ChatStore& store, std::string text) {
        return store.begin_turn(kAlice, s.id, NewTurn{.content = text});
    };
    for (int round = 0; round < 5; ++round) {
        auto [ra, rb] = this->both(send(*this->store_, "from a"), send(*other, "from b"));
        ASSERT_TRUE(ra && rb);
        ASSERT_NE(bool(ra->turn), bool(rb->turn)) << "round " << round;
        const auto& started = ra->turn ? *ra->turn : *rb->turn;
        const auto& refused = ra->turn ? *rb : *ra;
        EXPECT_EQ(refused.active_message, started.assistant_message.id);
        this->finish(started.assistant_message.id, 0, "", "");
    }
    EXPECT_EQ(this->run(this->store_->list_messages(kAlice, s.id))->size(), 10u);
}

// A message's chunk rows go when it ends (or at the log's next collection),
// whatever else is still live: one long answer does not keep every other
// message's chunks (it may have its own compacted away).
TYPED_TEST(ChatStoreContract, ChunksGoWhenTheirMessageEndsWhileOthersStayLive) {
    auto live = this->new_turn(this->new_session()).assistant_message.id;
    this->append(live, 0, "still ");
    for (int i = 0; i < 5; ++i) {
        auto t = this->new_turn(this->new_session()).assistant_message.id;
        this->append(t, 0, "do");
        this->append(t, 2, "ne");
        this->finish(t, 4, "", "done");
        EXPECT_EQ(this->content(t), "done");
    }
    this->append(live, 6, "here");
    this->backend_.collect(*this->store_, this->io_);
    EXPECT_LE(this->backend_.count("SELECT COUNT(*) FROM ai_chat_message_chunks"), 2);
    EXPECT_EQ(this->content(live), "still here");
    this->finish(live, 10, "", "still here");
    this->backend_.collect(*this->store_, this->io_);
    EXPECT_EQ(this->backend_.count("SELECT COUNT(*) FROM ai_chat_message_chunks"), 0);
    EXPECT_EQ(this->content(live), "still here");
}

// Writers on two store clients, interleaved with polls: polling from each
// answer's next_seq sees every change, the last one of each message too.
TYPED_TEST(ChatStoreContract, PollingFromNextSeqMissesNoChangeOfTwoWriters) {
    auto s = this->new_session();
    auto other = this->backend_.open(this->io_);
    Since since;
    std::map<std::string, std::int64_t> seen;  // message id -> newest version seen
    auto poll = [&] {
        auto page = this->run(this->store_->changed_since(kAlice, s.id, since));
        ASSERT_TRUE(page);
        for (const auto& m : page->messages)
            seen[m.id.value] = std::max(seen[m.id.value], m.version);
        since.seq = page->next_seq;
    };
    std::vector<MessageId> ended;
    for (int i = 0; i < 4; ++i) {
        auto& writer = i % 2 ? *other : *this->store_;
        auto outcome = this->run(writer.begin_turn(kAlice, s.id, NewTurn{.content = "q"}));
        ASSERT_TRUE(outcome && outcome->turn);
        auto id = outcome->turn->assistant_message.id;
        poll();
        ASSERT_TRUE(this->run(writer.commit(Batch{.writes = {this->chunk(id, 0, "a")}, .at = now_millis()})));
        poll();
        auto r = this->run(writer.commit(Batch{.writes = {this->end(id, 1, "b", "ab")}, .at = now_millis()}));
        ASSERT_TRUE(r);
        ended.push_back(id);
    }
    poll();
    for (const auto& id : ended) {
        auto stored = this->run(this->store_->get_message(kAlice, id));
        EXPECT_EQ(seen[id.value], stored->version) << id.value;
    }
}

TYPED_TEST(ChatStoreContract, DeletingASessionTakesItsLiveMessagesChunks) {
    auto s = this->new_session();
    auto live = this->new_turn(s).assistant_message.id;
    this->append(live, 0, "orphan?");
    auto other = this->new_turn(this->new_session()).assistant_message.id;
    this->append(other, 0, "kept");
    ASSERT_TRUE(this->run(this->store_->delete_session(kAlice, s.id)));
    this->backend_.collect(*this->store_, this->io_);
    EXPECT_EQ(this->backend_.count("SELECT COUNT(*) FROM ai_chat_message_chunks"), 1);
    auto late = this->commit({this->chunk(live, 7, " more")});
    EXPECT_EQ(late.writes[0].error, Error::not_generating);
}

// A node restarted under its name releases what its previous process held
// (that process is gone): any node takes it at once, with its stored
// content, under a new epoch. Another node's live lease is no orphan.
TYPED_TEST(ChatStoreContract, ARestartedNodeTakesBackItsAnswersWithTheirContent) {
    auto s = this->new_session();
    auto turn = this->new_turn(s);
    const auto id = turn.assistant_message.id;
    this->append(id, 0, "half ");
    this->append(id, 5, "way");
    this->reopen();
    EXPECT_TRUE(this->claim(kNodeB).continued.empty());
    ASSERT_EQ(*this->run(this->store_->release_stale_leases("node-a")), 1u);
    auto claims = this->claim(kNodeA);
    ASSERT_EQ(claims.continued.size(), 1u);
    const auto& c = claims.continued[0];
    EXPECT_EQ(c.user, kAlice);
    EXPECT_EQ(c.message.id, id);
    EXPECT_EQ(c.message.content, "half way");
    EXPECT_EQ(c.message.version, 3);
    EXPECT_EQ(c.message.status, MessageStatus::generating);
    EXPECT_EQ(c.epoch, 2);
    // Its new epoch writes; the old one is fenced off.
    auto stale = this->commit({this->chunk(id, 8, " there")});
    EXPECT_EQ(stale.writes[0].error, Error::lease_lost);
    auto w = this->end(id, 8, " there", "half way there");
    w.epoch = 2;
    auto fresh = this->commit({w});
    EXPECT_FALSE(fresh.writes[0].error) << fresh.writes[0].error.message();
    EXPECT_EQ(this->content(id), "half way there");
    // Taken, it is no orphan any more.
    EXPECT_TRUE(this->claim(kNodeB).continued.empty());
}

// What a starting node releases: its own id's leases on PostgreSQL (other
// nodes may be alive); every lease on SQLite (the data directory's lock
// proves whoever held them gone).
TYPED_TEST(ChatStoreContract, AStartingNodeReleasesOnlyLeasesWhoseHolderIsGone) {
    const auto id = this->new_turn(this->new_session()).assistant_message.id;
    auto released = this->run(this->store_->release_stale_leases("node-b"));
    ASSERT_TRUE(released);
    const bool sqlite = std::is_same_v<TypeParam, SqliteBackend>;
    EXPECT_EQ(*released, sqlite ? 1u : 0u);
    EXPECT_EQ(this->claim(kNodeB).continued.size(), sqlite ? 1u : 0u);
    if (!sqlite) {
        ASSERT_EQ(*this->run(this->store_->release_stale_leases("node-a")), 1u);
        ASSERT_EQ(this->claim(kNodeB).continued.size(), 1u);
    }
    EXPECT_EQ(this->run(this->store_->renew_leases(kNodeB))->at(0).id, id);
}

// Fencing: once another node has taken a message over, nothing the old owner
// writes is stored, text or end, however the writes are batched.
TYPED_TEST(ChatStoreContract, AWriteUnderAStaleEpochIsRefusedAndStoresNothing) {
    auto turn = this->new_turn(this->new_session());
    const auto id = turn.assistant_message.id;
    auto other = this->new_turn(this->new_session()).assistant_message.id;
    this->append(id, 0, "before ");
    ASSERT_EQ(*this->run(this->store_->release_leases(kNodeA.node, {id})), 1u);
    auto claims = this->claim(kNodeB);
    ASSERT_EQ(claims.continued.size(), 1u);  // the released one only; `other` is alive
    EXPECT_EQ(claims.continued[0].message.id, id);
    EXPECT_EQ(claims.continued[0].epoch, 2);
    // The old owner's late writes, beside a write of its own live message.
    auto late = this->commit({this->chunk(id, 7, "old owner"), this->chunk(other, 0, "mine")});
    EXPECT_EQ(late.writes[0].error, Error::lease_lost);
    EXPECT_FALSE(late.writes[1].error);
    auto late_end = this->commit({this->end(id, 7, "old", "before old")});
    EXPECT_EQ(late_end.writes[0].error, Error::lease_lost);
    EXPECT_EQ(this->content(id), "before ");
    auto w = this->chunk(id, 7, "new owner");
    w.epoch = 2;
    EXPECT_FALSE(this->commit({w}).writes[0].error);
    EXPECT_EQ(this->content(id), "before new owner");
    EXPECT_EQ(this->content(other), "mine");
}

// Renewals answer what a node holds; a lease another node took is not among
// them, and a live lease is nobody's orphan.
TYPED_TEST(ChatStoreContract, RenewalsTellANodeWhichLeasesItStillHolds) {
    auto a1 = this->new_turn(this->new_session()).assistant_message.id;
    auto a2 = this->new_turn(this->new_session()).assistant_message.id;
    EXPECT_TRUE(this->claim(kNodeB).continued.empty());
    auto held = this->run(this->store_->renew_leases(kNodeA));
    ASSERT_TRUE(held);
    ASSERT_EQ(held->size(), 2u);
    std::set<std::string> ids{(*held)[0].id.value, (*held)[1].id.value};
    EXPECT_EQ(ids, (std::set<std::string>{a1.value, a2.value}));
    EXPECT_EQ((*held)[0].epoch, 1);
    ASSERT_EQ(*this->run(this->store_->release_leases(kNodeA.node, {a1})), 1u);
    ASSERT_EQ(this->claim(kNodeB).continued.size(), 1u);
    held = this->run(this->store_->renew_leases(kNodeA));
    ASSERT_EQ(held->size(), 1u);
    EXPECT_EQ((*held)[0].id, a2);
    held = this->run(this->store_->renew_leases(kNodeB));
    ASSERT_EQ(held->size(), 1u);
    EXPECT_EQ((*held)[0].id, a1);
    EXPECT_EQ((*held)[0].epoch, 2);
    // An ended message is nobody's.
    auto w = this->end(a2, 0, "", "");
    EXPECT_FALSE(this->commit({w}).writes[0].error);
    EXPECT_TRUE(this->run(this->store_->renew_leases(kNodeA))->empty());
}

// A lease that is not renewed expires by the store's clock, and its message
// becomes an orphan any node takes.
TYPED_TEST(ChatStoreContract, AnUnrenewedLeaseExpiresAndItsMessageIsTakenOver) {
    auto s = this->new_session();
    auto outcome = this->run(this->store_->begin_turn(
        kAlice, s.id,
        NewTurn{.content = "q",
                .lease = {.node = "node-a", .ttl = std::chrono::milliseconds(50)}}));
    const auto id = outcome->turn->assistant_message.id;
    Claims claims;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (claims.continued.empty() && std::chrono::steady_clock::now() < until)
        claims = this->claim(kNodeB);
    ASSERT_EQ(claims.continued.size(), 1u);
    EXPECT_EQ(claims.continued[0].message.id, id);
    EXPECT_EQ(claims.continued[0].epoch, 2);
}

// A renewal extends a lease from now: past its first term it is nobody's
// orphan.
TYPED_TEST(ChatStoreContract, ARenewedLeaseOutlivesItsFirstTerm) {
    auto s = this->new_session();
    auto outcome = this->run(this->store_->begin_turn(
        kAlice, s.id,
        NewTurn{.content = "q",
                .lease = {.node = "node-a", .ttl = std::chrono::milliseconds(100)}}));
    ASSERT_TRUE(outcome && outcome->turn);
    ASSERT_EQ(this->run(this->store_->renew_leases(kNodeA))->size(), 1u);  // 30 s from now
    boost::asio::steady_timer past(this->io_, std::chrono::milliseconds(300));
    this->run([&]() -> net::awaitable<void> {
        co_await past.async_wait(boost::asio::use_awaitable);
    }());
    EXPECT_TRUE(this->claim(kNodeB).continued.empty());
}

// A message that keeps losing its node is taken over max_recoveries times,
// then ended error/interrupted with what was stored.
TYPED_TEST(ChatStoreContract, AnAnswerPastItsRecoveriesEndsInterruptedWithItsContent) {
    const auto id = this->new_turn(this->new_session()).assistant_message.id;
    this->append(id, 0, "some text");
    for (int recovery = 1; recovery <= 2; ++recovery) {
        ASSERT_TRUE(this->run(this->store_->release_leases(recovery == 1 ? "node-a" : "node-b", {})));
        auto claims = this->claim(kNodeB, {.max_recoveries = 2});
        ASSERT_EQ(claims.continued.size(), 1u) << recovery;
        EXPECT_EQ(claims.continued[0].epoch, recovery + 1);
    }
    ASSERT_TRUE(this->run(this->store_->release_leases("node-b", {})));
    auto claims = this->claim(kNodeB, {.max_recoveries = 2});
    EXPECT_TRUE(claims.continued.empty());
    EXPECT_EQ(claims.ended.size(), 1u);
    auto m = this->run(this->store_->get_message(kAlice, id));
    EXPECT_EQ(m->status, MessageStatus::error);
    EXPECT_EQ(m->error->code, "interrupted");
    EXPECT_EQ(m->content, "some text");
}

// A cancel made on another node than the owner's: marked for the owner (and
// only for it), refused like a cancel for unknown, foreign and ended
// messages, and carried out by a node that takes the answer over.
TYPED_TEST(ChatStoreContract, ACancelRequestedElsewhereReachesTheOwnerOrATakeover) {
    const auto id = this->new_turn(this->new_session()).assistant_message.id;
    const auto other = this->new_turn(this->new_session()).assistant_message.id;
    EXPECT_TRUE(this->run(this->store_->cancel_requests("node-a"))->empty());
    ASSERT_TRUE(this->run(this->store_->request_cancel(kAlice, id)));
    auto asked = this->run(this->store_->cancel_requests("node-a"));
    ASSERT_TRUE(asked);
    ASSERT_EQ(asked->size(), 1u);
    EXPECT_EQ((*asked)[0], id);
    EXPECT_TRUE(this->run(this->store_->cancel_requests("node-b"))->empty());
    EXPECT_EQ(this->run(this->store_->request_cancel(kBob, other)).error(), Error::not_found);
    EXPECT_EQ(this->run(this->store_->request_cancel(kAlice, MessageId{"msg_nope"})).error(),
              Error::not_found);
    auto done = this->new_turn(this->new_session());
    this->finish(done.assistant_message.id, 0, "x", "x");
    EXPECT_EQ(this->run(this->store_->request_cancel(kAlice, done.assistant_message.id)).error(),
              Error::not_generating);
    EXPECT_EQ(this->run(this->store_->request_cancel(kAlice, done.user_message.id)).error(),
              Error::not_generating);
    // The owner died: the node taking the answer over ends it cancelled,
    // with its text.
    this->append(id, 0, "partial");
    ASSERT_TRUE(this->run(this->store_->release_leases("node-a", {id})));
    auto claims = this->claim(kNodeB);
    EXPECT_TRUE(claims.continued.empty());
    EXPECT_EQ(claims.ended.size(), 1u);
    auto m = this->run(this->store_->get_message(kAlice, id));
    EXPECT_EQ(m->status, MessageStatus::cancelled);
    EXPECT_EQ(m->finish_reason, "cancelled");
    EXPECT_FALSE(m->error);
    EXPECT_EQ(m->content, "partial");
    EXPECT_TRUE(this->run(this->store_->cancel_requests("node-a"))->empty());
    EXPECT_EQ(this->content(other), "");
    EXPECT_EQ(this->run(this->store_->get_message(kAlice, other))->status,
              MessageStatus::generating);
}

// Nodes claiming at the same moment split the orphans: none is taken twice,
// none is left, and each claim takes at most its limit.
TYPED_TEST(ChatStoreContract, ConcurrentClaimsNeverTakeOneMessageTwice) {
    std::set<std::string> orphans;
    for (int i = 0; i < 12; ++i)
        orphans.insert(this->new_turn(this->new_session()).assistant_message.id.value);
    ASSERT_TRUE(this->run(this->store_->release_leases("node-a", {})));
    auto other = this->backend_.open(this->io_);
    std::multiset<std::string> taken;
    for (int round = 0; round < 2; ++round) {
        auto a = boost::asio::co_spawn(this->io_, this->store_->claim_orphans(kNodeA, {.limit = 4}),
                                       boost::asio::use_future);
        auto b = boost::asio::co_spawn(this->io_, other->claim_orphans(kNodeB, {.limit = 4}),
                                       boost::asio::use_future);
        this->io_.restart();
        while (a.wait_for(std::chrono::seconds(0)) != std::future_status::ready ||
               b.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
            this->io_.run_one_for(std::chrono::seconds(1));
        for (auto* f : {&a, &b}) {
            auto r = f->get();
            ASSERT_TRUE(r);
            EXPECT_LE(r->continued.size(), 4u);
            for (const auto& c : r->continued) taken.insert(c.message.id.value);
        }
    }
    auto rest = this->claim(kNodeA, {.limit = 100});
    for (const auto& c : rest.continued) taken.insert(c.message.id.value);
    EXPECT_EQ(taken.size(), orphans.size());
    EXPECT_EQ(std::set<std::string>(taken.begin(), taken.end()), orphans);
}

}  // namespace
}  // namespace chatd::store
