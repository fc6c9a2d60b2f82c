#include "engine/conversations.hpp"

#include "llm/simulated/simulated_provider.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/faulty_store.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>

#include <algorithm>
#include <functional>

namespace chatd::engine {
namespace {

const UserId kUser{"usr_test"};
const UserId kOther{"usr_other"};

// Answers at once.
constexpr llm::simulated::SimulatedConfig kFast{
    .tokens_per_second = 0, .min_tokens = 30, .max_tokens = 30};
// Answers one token, then generates until cancelled.
constexpr llm::simulated::SimulatedConfig kStalling{.tokens_per_second = 0, .stall_after = 1};

class ConversationsTest : public ::testing::Test {
protected:
    void start(llm::simulated::SimulatedConfig sim, ConversationPolicy policy = {},
               GenerationLimits limits = {.max_live = 1000, .max_per_user = 1000}) {
        provider_ = std::make_unique<llm::simulated::SimulatedProvider>(sim);
        engine_ = std::make_unique<Engine>(io_.get_executor(), counted_, *provider_,
                                           EngineConfig{.limits = limits});
        net::co_spawn(io_, engine_->run(), [this](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
            stopped_ = true;
        });
        conversations_ = std::make_unique<Conversations>(*engine_, counted_, std::move(policy));
    }

    // Live answers end as interrupted and the persister drains.
    void TearDown() override {
        if (!engine_) return;
        if (engine_->accepting()) run(engine_->shutdown(Shutdown::end_interrupted));
        wait_until([&] { return stopped_; });
    }

    template <class T>
    T run(net::awaitable<T> task) {
        return test::run(io_, std::move(task));
    }

    void wait_until(std::function<bool()> condition) {
        run(test::wait_until(std::move(condition)));
    }

    store::Session create(const UserId& user = kUser, SessionDraft draft = {}) {
        auto s = run(conversations_->create_session(user, std::move(draft)));
        EXPECT_TRUE(s) << s.error().message();
        return s.value();
    }

    // A send that must store a new turn.
    store::Turn send(const SessionId& session, std::string content = "hello",
                     const UserId& user = kUser) {
        auto outcome = run(conversations_->send(user, session, Prompt{.content = content}));
        EXPECT_TRUE(outcome) << outcome.error().message();
        EXPECT_TRUE(outcome.value().turn);
        return outcome.value().turn.value();
    }

    // Waits until the answer's end is committed and returns it as stored.
    store::Message finished(const store::Turn& turn, const UserId& user = kUser) {
        const auto& id = turn.assistant_message.id;
        wait_until([&] { return engine_->find(user, id) == nullptr; });
        return run(store_.get_message(user, id)).value();
    }

    std::vector<store::Message> messages(const SessionId& session, const UserId& user = kUser) {
        return run(store_.list_messages(user, session)).value();
    }

    // A new session of `user` with one turn, answered.
    struct Answered {
        store::Session session;
        store::Turn turn;
        store::Message answer;
    };
    Answered answered(const UserId& user = kUser) {
        auto session = create(user);
        auto turn = send(session.id, "hello", user);
        auto answer = finished(turn, user);
        EXPECT_EQ(answer.status, store::MessageStatus::completed);
        EXPECT_FALSE(answer.content.empty());
        return {std::move(session), std::move(turn), std::move(answer)};
    }

    Result<std::int64_t> offset(const MessageId& id, std::optional<Cursor> cursor) {
        auto from = run(conversations_->stream_start(kUser, id, std::move(cursor)));
        if (!from) return from.error();
        EXPECT_EQ(from->at.message, id);
        EXPECT_EQ(from->message.id, id);  // as read: the stream's feed starts from it
        return from->at.offset;
    }
    Result<SessionStreamStart> stream_start_of(const SessionId& session,
                                               std::optional<Cursor> cursor) {
        return run(conversations_->session_stream_start(kUser, session, std::move(cursor)));
    }

    test::TempDir dir_;
    boost::asio::io_context io_;
    store::sqlite::SqliteStore store_{{.path = dir_.path() / "db.sqlite3"}};
    test::FaultyStore counted_{store_};  // what the engine and conversations read
    std::unique_ptr<llm::simulated::SimulatedProvider> provider_;
    std::unique_ptr<Engine> engine_;
    std::unique_ptr<Conversations> conversations_;
    bool stopped_ = false;  // the engine's run() returned
};

// create_session

TEST_F(ConversationsTest, CreateSessionTakesTheDefaults) {
    start(kFast);
    auto s = create();
    EXPECT_EQ(s.title, "New chat");
    EXPECT_EQ(s.model, "simulated");
    EXPECT_EQ(s.system_prompt, "");
    EXPECT_EQ(s.user_id, kUser);
    EXPECT_EQ(run(store_.get_session(kUser, s.id))->id, s.id);
}

// A send reads no session of its own: its turn reads the model (for the
// policy) and the system prompt (for the answer's request) in its own
// transaction.
TEST_F(ConversationsTest, ASendLeavesTheSessionToItsTurn) {
    start(kFast);
    auto s = create(kUser, {.system_prompt = "be brief"});
    const int before = counted_.session_reads;
    auto answer = finished(send(s.id));
    EXPECT_EQ(answer.status, store::MessageStatus::completed);
    EXPECT_EQ(counted_.session_reads, before);
}

TEST_F(ConversationsTest, CreateSessionKeepsTheDraftAndAnAllowedModel) {
    start(kFast, {.default_model = "simulated", .allowed_models = {"simulated", "other"}});
    auto s = create(kUser, {.title = "T", .system_prompt = "be brief", .model = "other"});
    EXPECT_EQ(s.title, "T");
    EXPECT_EQ(s.system_prompt, "be brief");
    EXPECT_EQ(s.model, "other");
    EXPECT_EQ(create().model, "simulated");
}

TEST_F(ConversationsTest, CreateSessionRefusesAModelOutsideThePolicy) {
    start(kFast);
    // No list: only the default model.
    auto r = run(conversations_->create_session(kUser, {.model = "other"}));
    EXPECT_EQ(r.error(), make_error_code(Error::model_not_allowed));
    EXPECT_TRUE(run(conversations_->create_session(kUser, {.model = "simulated"})));
    EXPECT_EQ(run(store_.list_sessions(kUser, 10, std::nullopt)).value().sessions.size(), 1u);
}

TEST_F(ConversationsTest, CreateSessionWithAListRefusesModelsOutsideIt) {
    start(kFast, {.default_model = "simulated", .allowed_models = {"a", "b"}});
    EXPECT_FALSE(conversations_->model_allowed("simulated"));
    EXPECT_TRUE(conversations_->model_allowed("b"));
    auto r = run(conversations_->create_session(kUser, {.model = "c"}));
    EXPECT_EQ(r.error(), make_error_code(Error::model_not_allowed));
    EXPECT_EQ(create(kUser, {.model = "a"}).model, "a");
}

TEST_F(ConversationsTest, CreateSessionStopsAtTheSessionsPerUser) {
    start(kFast, {.max_sessions_per_user = 2});
    create();
    create();
    auto r = run(conversations_->create_session(kUser, {}));
    EXPECT_EQ(r.error(), make_error_code(Error::too_many_sessions));
    // Another user's sessions are counted apart.
    create(kOther);
}

// send

TEST_F(ConversationsTest, UpdateSessionChangesWhatItSetsAndTheNextSendUsesIt) {
    start(kFast, {.default_model = "simulated", .allowed_models = {"simulated", "other"}});
    auto s = create(kUser, {.title = "old", .system_prompt = "be brief"});
    auto updated = run(conversations_->update_session(kUser, s.id, {.model = "other"}));
    ASSERT_TRUE(updated) << updated.error().message();
    EXPECT_EQ(updated->model, "other");
    EXPECT_EQ(updated->title, "old");  // what the patch leaves out stays
    EXPECT_EQ(updated->system_prompt, "be brief");
    EXPECT_GE(updated->last_updated, s.last_updated);
    auto turn = send(s.id);
    EXPECT_EQ(turn.assistant_message.model, "other");
    EXPECT_EQ(finished(turn).model, "other");
    auto renamed = run(conversations_->update_session(kUser, s.id, {.title = "new"}));
    ASSERT_TRUE(renamed);
    EXPECT_EQ(renamed->title, "new");
    EXPECT_EQ(renamed->model, "other");
}

TEST_F(ConversationsTest, UpdateSessionRefusesAModelOutsideThePolicyAndForeignSessions) {
    start(kFast);
    auto s = create();
    auto r = run(conversations_->update_session(kUser, s.id, {.model = "gpt-5"}));
    EXPECT_EQ(r.error(), make_error_code(Error::model_not_allowed));
    EXPECT_EQ(run(store_.get_session(kUser, s.id))->model, "simulated");
    auto foreign = run(conversations_->update_session(kOther, s.id, {.title = "mine"}));
    EXPECT_EQ(foreign.error(), make_error_code(Error::not_found));
    EXPECT_EQ(run(store_.get_session(kUser, s.id))->title, "New chat");
}

TEST_F(ConversationsTest, SendStoresATurnAndAnswersIt) {
    start(kFast);
    auto s = create();
    auto turn = send(s.id, "what is up?");
    EXPECT_FALSE(turn.replayed);
    EXPECT_EQ(turn.user_message.content, "what is up?");
    EXPECT_EQ(turn.user_message.role, store::Role::user);
    EXPECT_EQ(turn.assistant_message.role, store::Role::assistant);
    EXPECT_EQ(turn.assistant_message.status, store::MessageStatus::generating);
    EXPECT_EQ(turn.assistant_message.model, "simulated");
    auto answer = finished(turn);
    EXPECT_EQ(answer.status, store::MessageStatus::completed);
    EXPECT_FALSE(answer.content.empty());
    auto stored = messages(s.id);
    ASSERT_EQ(stored.size(), 2u);
    EXPECT_EQ(stored[0].id, turn.user_message.id);
    EXPECT_EQ(stored[1].id, turn.assistant_message.id);
}

TEST_F(ConversationsTest, SendWhileAnAnswerGeneratesNamesIt) {
    start(kStalling, {}, {.max_live = 1000, .max_per_user = 2});
    auto s = create();
    auto first = send(s.id, "first");
    auto second = run(conversations_->send(kUser, s.id, Prompt{.content = "second"}));
    ASSERT_TRUE(second);
    EXPECT_FALSE(second->turn);
    EXPECT_EQ(second->active_message, first.assistant_message.id);
    EXPECT_EQ(messages(s.id).size(), 2u);
    EXPECT_NE(engine_->find(kUser, first.assistant_message.id), nullptr);
    // The refused send gave its generation slot back: a second session may answer.
    auto other = create();
    send(other.id, "elsewhere");
}

TEST_F(ConversationsTest, AnIdempotentSendIsReplayed) {
    start(kFast);
    auto s = create();
    auto prompt = Prompt{.content = "hello", .idempotency_key = "key-1"};
    auto first = run(conversations_->send(kUser, s.id, prompt));
    ASSERT_TRUE(first && first->turn);
    finished(*first->turn);
    auto again = run(conversations_->send(kUser, s.id, prompt));
    ASSERT_TRUE(again);
    ASSERT_TRUE(again->turn);
    EXPECT_TRUE(again->turn->replayed);
    EXPECT_EQ(again->turn->user_message.id, first->turn->user_message.id);
    EXPECT_EQ(again->turn->assistant_message.id, first->turn->assistant_message.id);
    // Nothing new stored, nothing started.
    EXPECT_EQ(messages(s.id).size(), 2u);
    EXPECT_EQ(engine_->find(kUser, first->turn->assistant_message.id), nullptr);
}

TEST_F(ConversationsTest, AnIdempotencyKeyReusedForOtherContentIsRefused) {
    start(kFast);
    auto s = create();
    auto first =
        run(conversations_->send(kUser, s.id, {.content = "hello", .idempotency_key = "key-1"}));
    ASSERT_TRUE(first && first->turn);
    finished(*first->turn);
    auto other =
        run(conversations_->send(kUser, s.id, {.content = "bye", .idempotency_key = "key-1"}));
    EXPECT_EQ(other.error(), make_error_code(Error::idempotency_key_reused));
    EXPECT_EQ(messages(s.id).size(), 2u);
}

TEST_F(ConversationsTest, AnIdempotentRetryAtTheGenerationLimitGetsItsTurnBack) {
    // The first send's answer holds the user's only slot while the client,
    // which never saw the 202, retries.
    start(kStalling, {}, {.max_live = 1000, .max_per_user = 1});
    auto s = create();
    auto prompt = Prompt{.content = "hello", .idempotency_key = "key-1"};
    auto first = run(conversations_->send(kUser, s.id, prompt));
    ASSERT_TRUE(first && first->turn);
    auto again = run(conversations_->send(kUser, s.id, prompt));
    ASSERT_TRUE(again) << again.error().message();
    ASSERT_TRUE(again->turn);
    EXPECT_TRUE(again->turn->replayed);
    EXPECT_EQ(again->turn->assistant_message.id, first->turn->assistant_message.id);
    // A new send is still refused, and stores nothing.
    auto fresh = run(conversations_->send(kUser, s.id, {.content = "other", .idempotency_key = "k2"}));
    EXPECT_EQ(fresh.error(), make_error_code(Error::too_many_generations));
    EXPECT_EQ(messages(s.id).size(), 2u);
}

TEST_F(ConversationsTest, AnIdempotentRetryAfterTheModelWasRetiredGetsItsTurnBack) {
    start(kFast, {.default_model = "simulated", .allowed_models = {"simulated", "retired"}});
    auto s = create(kUser, {.model = "retired"});
    auto prompt = Prompt{.content = "hello", .idempotency_key = "key-1"};
    auto first = run(conversations_->send(kUser, s.id, prompt));
    ASSERT_TRUE(first && first->turn);
    finished(*first->turn);
    Conversations stricter(*engine_, store_, {.default_model = "simulated"});
    auto again = run(stricter.send(kUser, s.id, prompt));
    ASSERT_TRUE(again) << again.error().message();
    ASSERT_TRUE(again->turn);
    EXPECT_TRUE(again->turn->replayed);
    // Another key is a new send: refused.
    auto fresh = run(stricter.send(kUser, s.id, {.content = "hello", .idempotency_key = "k2"}));
    EXPECT_EQ(fresh.error(), make_error_code(Error::model_not_allowed));
    EXPECT_EQ(messages(s.id).size(), 2u);
}

TEST_F(ConversationsTest, SendToAnotherUsersSessionIsNotFound) {
    start(kFast);
    auto s = create(kOther);
    auto r = run(conversations_->send(kUser, s.id, {.content = "hi"}));
    EXPECT_EQ(r.error(), make_error_code(Error::not_found));
    EXPECT_TRUE(messages(s.id, kOther).empty());
    auto missing = run(conversations_->send(kUser, new_session_id(), {.content = "hi"}));
    EXPECT_EQ(missing.error(), make_error_code(Error::not_found));
}

TEST_F(ConversationsTest, SendRefusesAModelNoLongerAllowed) {
    start(kFast, {.default_model = "simulated", .allowed_models = {"simulated", "retired"}});
    auto s = create(kUser, {.model = "retired"});
    // The operator restarts with a stricter list over the same store.
    Conversations stricter(*engine_, store_, {.default_model = "simulated"});
    auto r = run(stricter.send(kUser, s.id, {.content = "hi"}));
    EXPECT_EQ(r.error(), make_error_code(Error::model_not_allowed));
    EXPECT_TRUE(messages(s.id).empty());
}

// A send refused for its limit still hears first of an unknown session or a
// model no longer allowed, as one within its limit does.
TEST_F(ConversationsTest, AtItsLimitASendHearsOfAnUnknownSessionOrARetiredModelFirst) {
    start(kStalling, {.default_model = "simulated", .allowed_models = {"simulated", "retired"}},
          {.max_live = 1000, .max_per_user = 1});
    send(create().id);
    auto retired = create(kUser, {.model = "retired"});
    Conversations stricter(*engine_, store_, {.default_model = "simulated"});
    auto unknown = run(stricter.send(kUser, new_session_id(), {.content = "hi"}));
    EXPECT_EQ(unknown.error(), make_error_code(Error::not_found));
    auto r = run(stricter.send(kUser, retired.id, {.content = "hi"}));
    EXPECT_EQ(r.error(), make_error_code(Error::model_not_allowed));
    auto allowed = run(stricter.send(kUser, create().id, {.content = "hi"}));
    EXPECT_EQ(allowed.error(), make_error_code(Error::too_many_generations));
}

TEST_F(ConversationsTest, SendBeyondTheUsersGenerationsStoresNothing) {
    start(kStalling, {}, {.max_live = 1000, .max_per_user = 1});
    auto a = create();
    auto b = create();
    send(a.id);
    auto r = run(conversations_->send(kUser, b.id, {.content = "hi"}));
    EXPECT_EQ(r.error(), make_error_code(Error::too_many_generations));
    EXPECT_TRUE(messages(b.id).empty());
    // Another user has slots of their own.
    auto c = create(kOther);
    send(c.id, "hi", kOther);
}

TEST_F(ConversationsTest, SendAfterShutdownIsRefused) {
    start(kFast);
    auto s = create();
    run(engine_->shutdown(Shutdown::end_interrupted));
    auto r = run(conversations_->send(kUser, s.id, {.content = "hi"}));
    EXPECT_EQ(r.error(), make_error_code(Error::shutting_down));
    EXPECT_TRUE(messages(s.id).empty());
}

// activity

TEST_F(ConversationsTest, ActivityOfAnEmptySession) {
    start(kFast);
    auto s = create();
    auto a = run(conversations_->activity(kUser, s.id));
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->generating);
    EXPECT_FALSE(a->last_updated);
}

TEST_F(ConversationsTest, ActivityNamesTheGeneratingMessage) {
    start(kStalling);
    auto s = create();
    auto turn = send(s.id);
    auto a = run(conversations_->activity(kUser, s.id));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->generating, turn.assistant_message.id);
    EXPECT_TRUE(a->last_updated);
}

TEST_F(ConversationsTest, ActivityAfterTheAnswerEnds) {
    start(kFast);
    auto s = create();
    auto answer = finished(send(s.id));
    auto a = run(conversations_->activity(kUser, s.id));
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->generating);
    ASSERT_TRUE(a->last_updated);
    EXPECT_EQ(*a->last_updated, answer.last_updated);
}

// An answer this process does not hold (another process stored it) is found
// in the store, after a history of ended turns.
TEST_F(ConversationsTest, ActivityNamesAGeneratingMessageOnlyTheStoreKnows) {
    start(kFast);
    auto s = create();
    finished(send(s.id, "one"));
    finished(send(s.id, "two"));
    auto outcome = run(store_.begin_turn(kUser, s.id, store::NewTurn{.content = "three"}));
    ASSERT_TRUE(outcome && outcome->turn);
    auto a = run(conversations_->activity(kUser, s.id));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->generating, outcome->turn->assistant_message.id);
    EXPECT_EQ(a->last_updated, outcome->turn->assistant_message.last_updated);
}

TEST_F(ConversationsTest, ActivityOfAnotherUsersSessionIsNotFound) {
    start(kFast);
    auto s = create(kOther);
    EXPECT_EQ(run(conversations_->activity(kUser, s.id)).error(),
              make_error_code(Error::not_found));
}

// delete_session

TEST_F(ConversationsTest, DeleteSessionCancelsItsLiveAnswer) {
    start(kStalling);
    auto s = create();
    auto turn = send(s.id);
    auto g = engine_->find(kUser, turn.assistant_message.id);
    ASSERT_NE(g, nullptr);
    ASSERT_TRUE(run(conversations_->delete_session(kUser, s.id)));
    EXPECT_TRUE(g->ended());
    EXPECT_EQ(g->message().status, store::MessageStatus::cancelled);
    EXPECT_EQ(engine_->find(kUser, turn.assistant_message.id), nullptr);
    EXPECT_EQ(run(store_.get_session(kUser, s.id)).error(), make_error_code(Error::not_found));
    EXPECT_EQ(run(store_.get_message(kUser, turn.assistant_message.id)).error(),
              make_error_code(Error::not_found));
}

TEST_F(ConversationsTest, DeleteSessionOfAnotherUserIsNotFound) {
    start(kStalling);
    auto s = create(kOther);
    auto turn = send(s.id, "hi", kOther);
    EXPECT_EQ(run(conversations_->delete_session(kUser, s.id)).error(),
              make_error_code(Error::not_found));
    EXPECT_TRUE(run(store_.get_session(kOther, s.id)));
    auto g = engine_->find(kOther, turn.assistant_message.id);
    ASSERT_NE(g, nullptr);
    EXPECT_FALSE(g->finishing());
}

// cancel

TEST_F(ConversationsTest, CancelEndsAGeneratingAnswer) {
    start(kStalling);
    auto s = create();
    auto turn = send(s.id);
    auto m = run(conversations_->cancel(kUser, turn.assistant_message.id));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, store::MessageStatus::cancelled);
    EXPECT_EQ(run(store_.get_message(kUser, m->id))->status, store::MessageStatus::cancelled);
}

TEST_F(ConversationsTest, CancelOfAnotherUsersMessageIsNotFound) {
    start(kStalling);
    auto s = create(kOther);
    auto turn = send(s.id, "hi", kOther);
    auto r = run(conversations_->cancel(kUser, turn.assistant_message.id));
    EXPECT_EQ(r.error(), make_error_code(Error::not_found));
    auto g = engine_->find(kOther, turn.assistant_message.id);
    ASSERT_NE(g, nullptr);
    EXPECT_FALSE(g->finishing());
}

TEST_F(ConversationsTest, CancelOfACompletedMessageIsNotGenerating) {
    start(kFast);
    auto s = create();
    auto turn = send(s.id);
    finished(turn);
    EXPECT_EQ(run(conversations_->cancel(kUser, turn.assistant_message.id)).error(),
              make_error_code(Error::not_generating));
    EXPECT_EQ(run(conversations_->cancel(kUser, turn.user_message.id)).error(),
              make_error_code(Error::not_generating));
}

TEST_F(ConversationsTest, CancelOfAMalformedIdIsNotFound) {
    start(kFast);
    for (auto bad : {"", "msg_", "msg_nope", "ses_01J0000000000000000000000"})
        EXPECT_EQ(run(conversations_->cancel(kUser, MessageId{bad})).error(),
                  make_error_code(Error::not_found))
            << bad;
    EXPECT_EQ(run(conversations_->cancel(kUser, new_message_id())).error(),
              make_error_code(Error::not_found));
}

// find_message

TEST_F(ConversationsTest, FindMessageFindsOnlyTheUsersOwn) {
    start(kStalling);
    auto s = create();
    auto turn = send(s.id);
    auto live = run(conversations_->find_message(kUser, turn.assistant_message.id));
    ASSERT_TRUE(live);
    EXPECT_EQ(live->status, store::MessageStatus::generating);
    auto stored = run(conversations_->find_message(kUser, turn.user_message.id));
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->content, "hello");
    for (const auto& id : {turn.assistant_message.id, turn.user_message.id})
        EXPECT_EQ(run(conversations_->find_message(kOther, id)).error(),
                  make_error_code(Error::not_found));
    EXPECT_EQ(run(conversations_->find_message(kUser, MessageId{"msg_x"})).error(),
              make_error_code(Error::not_found));
    EXPECT_EQ(run(conversations_->find_message(kUser, new_message_id())).error(),
              make_error_code(Error::not_found));
}

// stream_start

TEST_F(ConversationsTest, StreamOffsetWithoutACursorIsZero) {
    start(kFast);
    auto a = answered();
    EXPECT_EQ(offset(a.answer.id, std::nullopt).value(), 0);
}

TEST_F(ConversationsTest, StreamOffsetIsTheCursorsWithinTheContent) {
    start(kFast);
    auto a = answered();
    auto size = static_cast<std::int64_t>(a.answer.content.size());
    auto space = static_cast<std::int64_t>(a.answer.content.find(' '));
    ASSERT_GT(space, 0);
    for (auto at : {std::int64_t{0}, space, size})
        EXPECT_EQ(offset(a.answer.id, Cursor{a.answer.id, at}).value(), at);
}

TEST_F(ConversationsTest, StreamOffsetPastTheContentIsOutOfRange) {
    start(kFast);
    auto a = answered();
    auto size = static_cast<std::int64_t>(a.answer.content.size());
    for (auto at : {size + 1, std::int64_t{-1}})
        EXPECT_EQ(offset(a.answer.id, Cursor{a.answer.id, at}).error(),
                  make_error_code(Error::cursor_out_of_range))
            << at;
}

TEST_F(ConversationsTest, StreamOffsetInsideACharacterIsOutOfRange) {
    start(kFast);
    auto a = answered();
    const auto& text = a.answer.content;
    auto continuation =
        std::find_if(text.begin(), text.end(), [](unsigned char c) { return (c & 0xC0) == 0x80; });
    ASSERT_NE(continuation, text.end()) << "the simulated answer has multi-byte characters";
    auto inside = static_cast<std::int64_t>(continuation - text.begin());
    EXPECT_EQ(offset(a.answer.id, Cursor{a.answer.id, inside}).error(),
              make_error_code(Error::cursor_out_of_range));
}

TEST_F(ConversationsTest, StreamOffsetOfAnotherOfTheUsersMessagesIsAMismatch) {
    start(kFast);
    auto a = answered();
    EXPECT_EQ(offset(a.answer.id, Cursor{a.turn.user_message.id, 0}).error(),
              make_error_code(Error::cursor_mismatch));
    auto b = answered();
    EXPECT_EQ(offset(a.answer.id, Cursor{b.answer.id, 0}).error(),
              make_error_code(Error::cursor_mismatch));
}

TEST_F(ConversationsTest, StreamOffsetOfAnotherUsersMessageIsNotFound) {
    start(kFast);
    auto mine = answered();
    auto theirs = answered(kOther);
    EXPECT_EQ(offset(mine.answer.id, Cursor{theirs.answer.id, 0}).error(),
              make_error_code(Error::not_found));
    EXPECT_EQ(offset(mine.answer.id, Cursor{new_message_id(), 0}).error(),
              make_error_code(Error::not_found));
    // The streamed message itself must be the user's too.
    EXPECT_EQ(offset(theirs.answer.id, std::nullopt).error(), make_error_code(Error::not_found));
    EXPECT_EQ(offset(new_message_id(), std::nullopt).error(), make_error_code(Error::not_found));
}

// session_stream_start

TEST_F(ConversationsTest, SessionStreamOfAnotherUsersSessionIsNotFound) {
    start(kFast);
    auto theirs = create(kOther);
    EXPECT_EQ(stream_start_of(theirs.id, std::nullopt).error(), make_error_code(Error::not_found));
    EXPECT_EQ(stream_start_of(new_session_id(), std::nullopt).error(),
              make_error_code(Error::not_found));
}

TEST_F(ConversationsTest, SessionStreamAcceptsACursorOfItsOwnMessages) {
    start(kFast);
    auto a = answered();
    auto size = static_cast<std::int64_t>(a.answer.content.size());
    EXPECT_TRUE(stream_start_of(a.session.id, std::nullopt));
    EXPECT_TRUE(stream_start_of(a.session.id, Cursor{a.answer.id, 0}));
    EXPECT_TRUE(stream_start_of(a.session.id, Cursor{a.answer.id, size}));
    EXPECT_TRUE(stream_start_of(a.session.id, Cursor{a.turn.user_message.id, 0}));
    EXPECT_EQ(stream_start_of(a.session.id, Cursor{a.answer.id, size + 1}).error(),
              make_error_code(Error::cursor_out_of_range));
}

// Without a cursor a session stream starts with the answer generating when
// it opens, from its start, and then carries every assistant message newer
// than the session's newest: the boundary is read from the store, not taken
// from the clock (a send whose message was made just before the stream
// opened, and stored just after, must not fall before it).
TEST_F(ConversationsTest, SessionStreamStartsAfterTheNewestMessageOrWithTheOneGenerating) {
    start(kStalling);
    auto session = create();
    auto empty = stream_start_of(session.id, std::nullopt);
    ASSERT_TRUE(empty);
    EXPECT_FALSE(empty->first);
    EXPECT_FALSE(empty->after);

    // Run here: the engine answers without a read.
    auto turn = send(session.id);
    const auto& live = turn.assistant_message.id;
    auto here = stream_start_of(session.id, std::nullopt);
    ASSERT_TRUE(here);
    EXPECT_EQ(here->first, Cursor{live});
    EXPECT_EQ(here->after, live);

    run(conversations_->cancel(kUser, live));
    auto ended = stream_start_of(session.id, std::nullopt);
    ASSERT_TRUE(ended);
    EXPECT_FALSE(ended->first);
    EXPECT_EQ(ended->after, live);

    // Generating and run by no engine here: another node's, or one whose
    // send has stored it and not started it yet.
    auto stored = run(store_.begin_turn(kUser, session.id, store::NewTurn{.content = "q"}));
    ASSERT_TRUE(stored && stored->turn);
    const auto& elsewhere = stored->turn->assistant_message.id;
    auto other = stream_start_of(session.id, std::nullopt);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->first, Cursor{elsewhere});
    EXPECT_EQ(other->after, elsewhere);

    // A cursor: its message's rest, then what follows it.
    auto from = stream_start_of(session.id, Cursor{live, 0});
    ASSERT_TRUE(from);
    EXPECT_EQ(from->first, (Cursor{live, 0}));
    EXPECT_EQ(from->after, live);
}

TEST_F(ConversationsTest, SessionStreamRefusesACursorOfAnotherSession) {
    start(kFast);
    auto a = answered();
    auto b = answered();
    EXPECT_EQ(stream_start_of(b.session.id, Cursor{a.answer.id, 0}).error(),
              make_error_code(Error::cursor_mismatch));
    auto theirs = answered(kOther);
    EXPECT_EQ(stream_start_of(a.session.id, Cursor{theirs.answer.id, 0}).error(),
              make_error_code(Error::not_found));
}

}  // namespace
}  // namespace chatd::engine
