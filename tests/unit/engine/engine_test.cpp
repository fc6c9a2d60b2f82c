#include "engine/engine.hpp"

#include "core/utf8.hpp"
#include "llm/simulated/simulated_provider.hpp"
#include "store/sqlite/sqlite_db.hpp"
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

std::string answer_text(const llm::simulated::SimulatedConfig& config, std::string question) {
    std::string text;
    for (auto& t : llm::simulated::simulated_answer({{llm::PromptRole::user, question}}, config))
        text += t;
    return text;
}

class EngineTest : public ::testing::Test {
protected:
    void start_engine(llm::simulated::SimulatedConfig sim, PersisterConfig persister = {},
                      int continue_attempts = 2,
                      std::size_t max_answer_bytes = EngineConfig{}.max_answer_bytes,
                      GenerationLimits limits = {.max_live = 1000, .max_per_user = 1000}) {
        sim_ = sim;
        provider_ = std::make_unique<llm::simulated::SimulatedProvider>(sim);
        engine_ = std::make_unique<Engine>(io_.get_executor(), faulty_, *provider_,
                                           EngineConfig{.persister = persister,
                                                        .continue_attempts = continue_attempts,
                                                        .max_answer_bytes = max_answer_bytes,
                                                        .limits = limits,
                                                        .cancel_timeout = cancel_timeout_,
                                                        .shutdown_timeout = shutdown_timeout_,
                                                        .lease = lease_});
        engine_stopped_ = false;
        net::co_spawn(io_, engine_->run(), [this](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
            engine_stopped_ = true;
        });
    }

    template <class T>
    T run(net::awaitable<T> task) {
        return test::run(io_, std::move(task));
    }

    std::shared_ptr<Generation> start_turn(std::string question) {
        auto session = run(store_.create_session(kUser, store::NewSession{.title = "t"}));
        auto outcome = run(store_.begin_turn(
            kUser, session->id, store::NewTurn{.content = std::move(question), .lease = lease_}));
        return engine_->start(kUser, *outcome->turn, *engine_->reserve(kUser));
    }

    // Runs a background loop of the engine (keep_leases, adopt_orphans)
    // until the engine shuts down.
    void spawn(net::awaitable<void> loop) {
        net::co_spawn(io_, std::move(loop), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    }

    void wait_until(std::function<bool()> condition) {
        run(test::wait_until(std::move(condition)));
    }

    store::Message stored(const MessageId& id) { return *run(store_.get_message(kUser, id)); }

    test::TempDir dir_;
    boost::asio::io_context io_;
    store::sqlite::SqliteStore store_{{.path = dir_.path() / "db.sqlite3"}};
    test::FaultyStore faulty_{store_};
    llm::simulated::SimulatedConfig sim_;
    std::unique_ptr<llm::simulated::SimulatedProvider> provider_;
    std::unique_ptr<Engine> engine_;
    bool engine_stopped_ = false;  // its run() returned
    std::chrono::milliseconds cancel_timeout_ = EngineConfig{}.cancel_timeout;
    std::chrono::milliseconds shutdown_timeout_ = EngineConfig{}.shutdown_timeout;
    store::LeaseTerms lease_{.node = "node-a", .ttl = std::chrono::seconds(30)};
};

TEST_F(EngineTest, GenerationCompletesWithTheProvidersWholeText) {
    start_engine({.tokens_per_second = 0, .min_tokens = 30, .max_tokens = 30});
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    EXPECT_EQ(g->message().status, store::MessageStatus::completed);
    EXPECT_EQ(g->committed(), answer_text(sim_, "q"));
    auto m = stored(g->id());
    EXPECT_EQ(m.content, g->committed());
    EXPECT_EQ(m.status, store::MessageStatus::completed);
    EXPECT_EQ(engine_->find(kUser, g->id()), nullptr);
}

// A send reads its session before it stores the turn; the answer's request
// is built with that session's system prompt, not a second read of it. A
// generation started without one (a takeover, a restart) reads the session.
TEST_F(EngineTest, AnAnswersRequestUsesTheSystemPromptItsSendRead) {
    start_engine({.tokens_per_second = 0, .min_tokens = 30, .max_tokens = 30});
    auto answer_to = [&](std::vector<llm::PromptMessage> prompt) {
        std::string text;
        for (auto& t : llm::simulated::simulated_answer(prompt, sim_)) text += t;
        return text;
    };
    auto begin = [&](const std::string& system_prompt) {
        auto session = run(store_.create_session(
            kUser, store::NewSession{.title = "t", .system_prompt = system_prompt}));
        return *run(store_.begin_turn(kUser, session->id,
                                      store::NewTurn{.content = "q", .lease = lease_}))
                    ->turn;
    };
    const std::vector<llm::PromptMessage> brief{{llm::PromptRole::system, "be brief"},
                                                {llm::PromptRole::user, "q"}};

    auto sent = engine_->start(kUser, begin("be brief"), *engine_->reserve(kUser), "req",
                               std::string("be brief"));
    wait_until([&] { return sent->ended(); });
    EXPECT_EQ(faulty_.session_reads, 0);
    EXPECT_EQ(sent->committed(), answer_to(brief));

    auto adopted = engine_->start(kUser, begin("be brief"), *engine_->reserve(kUser));
    wait_until([&] { return adopted->ended(); });
    EXPECT_EQ(faulty_.session_reads, 1);
    EXPECT_EQ(adopted->committed(), answer_to(brief));
    EXPECT_NE(answer_to(brief), answer_text(sim_, "q"));  // the prompt counts
}

TEST_F(EngineTest, LookupsFindOnlyTheCallersOwnGenerations) {
    start_engine({.tokens_per_second = 5, .min_tokens = 50, .max_tokens = 50});
    auto g = start_turn("q");
    const UserId other{"usr_other"};
    EXPECT_EQ(engine_->find(kUser, g->id()), g);
    EXPECT_EQ(engine_->active_in(kUser, g->session_id()), g);
    EXPECT_EQ(engine_->find(other, g->id()), nullptr);
    EXPECT_EQ(engine_->active_in(other, g->session_id()), nullptr);
    // Another user's cancel is a missing id, and the generation goes on.
    auto cancelled = run(engine_->cancel(other, g->id()));
    ASSERT_FALSE(cancelled);
    EXPECT_EQ(cancelled.error(), Error::not_found);
    EXPECT_FALSE(g->finishing());
    ASSERT_TRUE(run(engine_->cancel(kUser, g->id())));
}

TEST_F(EngineTest, GroupCommitBatchesManyGenerationsIntoFewCommits) {
    start_engine({.tokens_per_second = 0, .min_tokens = 50, .max_tokens = 50});
    // The store is slow (held) while 20 generations produce their answers.
    faulty_.hold_commits = true;
    std::vector<std::shared_ptr<Generation>> gens;
    for (int i = 0; i < 20; ++i) gens.push_back(start_turn("q" + std::to_string(i)));
    auto all = [&](auto pred) { return std::all_of(gens.begin(), gens.end(), pred); };
    wait_until([&] { return all([](auto& g) { return g->finishing(); }); });
    faulty_.hold_commits = false;
    wait_until([&] { return all([](auto& g) { return g->ended(); }); });
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(stored(gens[i]->id()).content, answer_text(sim_, "q" + std::to_string(i)));
    // 20 x 50 tokens: one commit per token would be 1000. The commit in flight
    // when the store stalled held one token; everything else came in one more.
    EXPECT_LE(faulty_.commits, 3);
    EXPECT_EQ(*std::max_element(faulty_.batch_sizes.begin(), faulty_.batch_sizes.end()), 20u);
}

TEST_F(EngineTest, PerChunkModeCommitsEveryTokenAlone) {
    start_engine({.tokens_per_second = 0, .min_tokens = 10, .max_tokens = 10},
                 {.mode = CommitMode::per_chunk});
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    EXPECT_EQ(stored(g->id()).content, answer_text(sim_, "q"));
    EXPECT_EQ(faulty_.commits, 10);  // nine tokens alone, the last with the terminal state
}

// Commits scale with time, not tokens: however fast the tokens come, commits
// start at least one interval apart, and each carries what came meanwhile.
TEST_F(EngineTest, GroupCommitsStartAtMostOncePerInterval) {
    const auto interval = std::chrono::milliseconds(40);
    start_engine({.tokens_per_second = 400, .min_tokens = 60, .max_tokens = 60},
                 {.commit_interval = interval});
    std::vector<std::chrono::steady_clock::time_point> starts;
    faulty_.on_commit_start = [&](const store::Batch&) {
        starts.push_back(std::chrono::steady_clock::now());
    };
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    EXPECT_EQ(stored(g->id()).content, answer_text(sim_, "q"));
    ASSERT_GE(starts.size(), 2u);
    // The persister reads the clock a few instructions before the store does.
    const auto slack = std::chrono::milliseconds(1);
    for (std::size_t i = 1; i < starts.size(); ++i)
        EXPECT_GE(starts[i] - starts[i - 1], interval - slack) << "commit " << i;
    // 60 tokens came in about 150 ms: one commit each would be 60.
    EXPECT_LT(starts.size(), 30u);
}

// A token that comes while no commit started within the interval is committed
// at once: with an interval of a minute, the first token is stored long before
// it, and a shutdown commits the rest without waiting for it either.
TEST_F(EngineTest, AnIdlePersisterCommitsAtOnceAndShutdownCutsThePacingShort) {
    start_engine({.tokens_per_second = 50, .min_tokens = 40, .max_tokens = 40, .stall_after = 5},
                 {.commit_interval = std::chrono::minutes(1)});
    auto g = start_turn("q");
    wait_until([&] { return !g->committed().empty(); });
    EXPECT_EQ(faulty_.commits, 1);
    wait_until([&] { return g->produced_bytes() > g->committed().size(); });
    run(engine_->shutdown(Shutdown::hand_over));
    EXPECT_EQ(faulty_.commits, 2);
    EXPECT_EQ(stored(g->id()).content, g->committed());
    EXPECT_EQ(g->committed().size(), g->produced_bytes());
}

// A full batch does not wait out the interval: with an interval of a minute,
// the commit after the first (at once: the persister was idle) starts as
// soon as `commit_at_writes` generations have text waiting, and carries them.
TEST_F(EngineTest, AFullBatchStartsItsCommitBeforeTheIntervalIsUp) {
    start_engine({.tokens_per_second = 0, .min_tokens = 40, .max_tokens = 40, .stall_after = 5},
                 {.commit_interval = std::chrono::minutes(1), .commit_at_writes = 4});
    std::vector<std::chrono::steady_clock::time_point> starts;
    faulty_.on_commit_start = [&](const store::Batch&) {
        starts.push_back(std::chrono::steady_clock::now());
    };
    // Eight: the first commit cannot take all of them, whatever it takes.
    std::vector<std::shared_ptr<Generation>> gens;
    for (int i = 0; i < 8; ++i) gens.push_back(start_turn("q" + std::to_string(i)));
    wait_until([&] { return faulty_.commits >= 2; });
    ASSERT_GE(faulty_.batch_sizes.size(), 2u);
    EXPECT_GE(faulty_.batch_sizes[1], 4u);
    EXPECT_LT(starts[1] - starts[0], std::chrono::seconds(30));
}

TEST_F(EngineTest, TextIsInvisibleUntilItsCommitReturns) {
    start_engine({.tokens_per_second = 0, .min_tokens = 20, .max_tokens = 20});
    std::shared_ptr<Generation> g;
    int checked = 0;
    faulty_.on_commit_start = [&](const store::Batch& batch) {
        for (const auto& w : batch.writes) {
            if (!g || w.id != g->id()) continue;
            // The batch's text was taken from the generation but is not visible yet.
            EXPECT_EQ(static_cast<std::int64_t>(g->committed().size()), w.offset);
            ++checked;
        }
    };
    g = start_turn("q");
    wait_until([&] { return g->ended(); });
    EXPECT_GT(checked, 0);
    EXPECT_EQ(g->committed(), answer_text(sim_, "q"));
}

TEST_F(EngineTest, FailedCommitsAreRetriedWithoutLosingOrDoublingText) {
    start_engine({.tokens_per_second = 0, .min_tokens = 40, .max_tokens = 40});
    faulty_.fail_next_commits = 3;
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    EXPECT_EQ(faulty_.failed_commits, 3);
    EXPECT_EQ(g->committed(), answer_text(sim_, "q"));
    EXPECT_EQ(stored(g->id()).content, answer_text(sim_, "q"));
}

TEST_F(EngineTest, CancelKeepsCommittedTextAndStopsAppending) {
    start_engine({.tokens_per_second = 0, .min_tokens = 100, .max_tokens = 100, .stall_after = 7});
    auto g = start_turn("q");
    wait_until([&] { return g->message().version > 1; });
    auto cancelled = run(engine_->cancel(kUser, g->id()));
    ASSERT_TRUE(cancelled);
    EXPECT_EQ(cancelled->status, store::MessageStatus::cancelled);
    EXPECT_EQ(cancelled->finish_reason, "cancelled");
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::cancelled);
    EXPECT_EQ(m.content, cancelled->content);
    EXPECT_TRUE(answer_text(sim_, "q").starts_with(m.content));
    EXPECT_FALSE(m.content.empty());
    // Cancelling again answers the cancelled message; a finished one is not generating.
    auto again = run(engine_->cancel(kUser, g->id()));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, store::MessageStatus::cancelled);
}

TEST_F(EngineTest, CancelOfAnotherUsersMessageIsNotFound) {
    start_engine({.tokens_per_second = 0, .stall_after = 1});
    auto g = start_turn("q");
    EXPECT_EQ(run(engine_->cancel(UserId{"usr_other"}, g->id())).error(), Error::not_found);
    EXPECT_FALSE(g->finishing());
}

TEST_F(EngineTest, ShutdownEndsLiveGenerationsAsInterrupted) {
    start_engine({.tokens_per_second = 0, .stall_after = 5});
    auto g = start_turn("q");
    wait_until([&] { return g->message().version > 1; });
    run(engine_->shutdown(Shutdown::end_interrupted));
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::error);
    ASSERT_TRUE(m.error);
    EXPECT_EQ(m.error->code, "interrupted");
    EXPECT_EQ(m.content, g->committed());
    EXPECT_FALSE(engine_->accepting());
}

TEST_F(EngineTest, ProviderFailureEndsAsErrorWithPartialContent) {
    start_engine({.tokens_per_second = 0, .min_tokens = 50, .max_tokens = 50, .fail_after = 10});
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::error);
    EXPECT_EQ(m.error->code, "provider_error");
    EXPECT_FALSE(m.content.empty());
    EXPECT_TRUE(answer_text(sim_, "q").starts_with(m.content));
}

TEST_F(EngineTest, ATransientFailureAfterTextIsContinuedSeamlessly) {
    start_engine({.tokens_per_second = 0, .min_tokens = 50, .max_tokens = 50, .drop_every = 7}, {},
                 10);
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::completed);
    EXPECT_EQ(m.content, answer_text(sim_, "q"));  // 8 streams, no byte lost or doubled
}

TEST_F(EngineTest, ContinuationsAreBoundedAndTheLastFailureIsKept) {
    start_engine({.tokens_per_second = 0, .min_tokens = 50, .max_tokens = 50, .drop_every = 7}, {},
                 2);
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::error);
    ASSERT_TRUE(m.error);
    EXPECT_EQ(m.error->code, "upstream_unavailable");
    // The first stream and two continuations: 21 tokens, kept.
    std::string expected;
    auto tokens = llm::simulated::simulated_answer({{llm::PromptRole::user, "q"}}, sim_);
    for (std::size_t i = 0; i < 21; ++i) expected += tokens[i];
    EXPECT_EQ(m.content, expected);
}

TEST_F(EngineTest, AnAnswerEndsAtTheLimitOnAUtf8Boundary) {
    start_engine({.tokens_per_second = 0, .min_tokens = 400, .max_tokens = 400}, {}, 2, 1001);
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    auto m = stored(g->id());
    auto whole = answer_text(sim_, "q");
    ASSERT_GT(whole.size(), 1001u);
    EXPECT_EQ(m.status, store::MessageStatus::completed);
    EXPECT_EQ(m.finish_reason, "length");
    EXPECT_EQ(m.content, whole.substr(0, utf8_floor(whole, 1001)));
}

// The limit is on the answer with its reasoning: a model that thinks at length
// has that much less room for its text.
TEST_F(EngineTest, ReasoningIsStoredApartAndCountsTowardsTheLimit) {
    start_engine({.tokens_per_second = 0, .min_tokens = 400, .max_tokens = 400,
                  .reasoning_tokens = 60},
                 {}, 2, 1001);
    auto g = start_turn("q");
    wait_until([&] { return g->ended(); });
    auto m = stored(g->id());
    std::string reasoning;
    for (auto& t : llm::simulated::simulated_reasoning({{llm::PromptRole::user, "q"}}, sim_))
        reasoning += t;
    ASSERT_LT(reasoning.size(), 1001u);
    EXPECT_EQ(m.reasoning, reasoning);
    EXPECT_EQ(m.finish_reason, "length");
    auto whole = answer_text(sim_, "q");
    auto room = 1001 - reasoning.size();
    EXPECT_EQ(m.content, whole.substr(0, utf8_floor(whole, room)));
    EXPECT_EQ(g->message().reasoning, reasoning);
}

TEST_F(EngineTest, AnOrphanIsContinuedAfterItsStoredPartialAnswer) {
    start_engine({.tokens_per_second = 0, .min_tokens = 40, .max_tokens = 40});
    auto session = run(store_.create_session(kUser, store::NewSession{.title = "t"}));
    auto outcome = run(store_.begin_turn(
        kUser, session->id, store::NewTurn{.content = std::string("q"), .lease = {.node = "dead"}}));
    auto id = outcome->turn->assistant_message.id;
    auto whole = answer_text(sim_, "q");
    auto cut = utf8_floor(whole, 30);
    // A node that died committed the first bytes, and its lease is over.
    store::Batch batch;
    batch.writes.push_back(
        store::MessageWrite{.id = id, .offset = 0, .text = whole.substr(0, cut)});
    ASSERT_TRUE(run(store_.commit(std::move(batch))));
    ASSERT_TRUE(run(store_.release_leases("dead", {})));
    spawn(engine_->adopt_orphans());
    wait_until([&] { return engine_->find(kUser, id) != nullptr; });
    auto g = engine_->find(kUser, id);
    EXPECT_EQ(g->epoch(), 2);
    wait_until([&] { return g->ended(); });
    auto m = stored(id);
    EXPECT_EQ(m.status, store::MessageStatus::completed);
    EXPECT_EQ(m.content, whole);
    run(engine_->shutdown(Shutdown::hand_over));
}

// A crash with many live answers does not stampede the provider: a node takes
// over as many as it has room for, the rest at later scans.
TEST_F(EngineTest, OrphansAreTakenOverOnlyAsRoomAllows) {
    lease_.ttl = std::chrono::milliseconds(400);  // scans 100 ms apart
    start_engine({.tokens_per_second = 200, .min_tokens = 40, .max_tokens = 40}, {}, 2,
                 EngineConfig{}.max_answer_bytes, {.max_live = 1, .max_per_user = 10});
    std::vector<MessageId> ids;
    for (auto q : {"q1", "q2"}) {
        auto session = run(store_.create_session(kUser, store::NewSession{.title = "t"}));
        auto outcome = run(store_.begin_turn(kUser, session->id,
                                             store::NewTurn{.content = q, .lease = {.node = "dead"}}));
        ids.push_back(outcome->turn->assistant_message.id);
    }
    ASSERT_TRUE(run(store_.release_leases("dead", {})));
    spawn(engine_->adopt_orphans());
    wait_until([&] { return engine_->find(kUser, ids[0]) != nullptr; });
    // One slot: the second waits for the first to end.
    auto first = engine_->find(kUser, ids[0]);
    EXPECT_EQ(engine_->find(kUser, ids[1]), nullptr);
    wait_until([&] { return first->ended(); });
    wait_until([&] { return stored(ids[1]).status == store::MessageStatus::completed; });
    run(engine_->shutdown(Shutdown::hand_over));
}

// Fencing seen from the engine: another node took the answer over while this
// one still produced text; its next commit is refused, it stops its upstream,
// and nothing more of its text is stored.
TEST_F(EngineTest, AGenerationWhoseLeaseAnotherNodeTookStoresNothingMore) {
    start_engine({.tokens_per_second = 100, .min_tokens = 400, .max_tokens = 400});
    auto g = start_turn("q");
    wait_until([&] { return g->message().version > 2; });
    ASSERT_TRUE(run(store_.release_leases("node-a", {})));
    auto claims = run(store_.claim_orphans({.node = "node-b"}, {}));
    ASSERT_EQ(claims->continued.size(), 1u);
    const auto at_takeover = claims->continued[0].message.content;
    wait_until([&] { return g->moved(); });
    EXPECT_TRUE(g->finishing());
    EXPECT_FALSE(g->ended());
    EXPECT_EQ(engine_->find(kUser, g->id()), nullptr);
    wait_until([&] { return g->stream() == nullptr; });  // the upstream is closed
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::generating);
    EXPECT_EQ(m.content, at_takeover);
    run(engine_->shutdown(Shutdown::hand_over));
    EXPECT_EQ(stored(g->id()).content, at_takeover);
}

// Without text flowing (an upstream that thinks for long), the renewal is
// what tells a node it lost a lease: it stops the generation.
TEST_F(EngineTest, ARenewalStopsAGenerationWhoseLeaseWasTakenWhileNoTextFlows) {
    lease_.ttl = std::chrono::milliseconds(300);  // renewals 100 ms apart
    start_engine({.tokens_per_second = 0, .stall_after = 1});
    auto g = start_turn("q");
    wait_until([&] { return g->settled() && g->message().version > 1; });
    spawn(engine_->keep_leases());
    ASSERT_TRUE(run(store_.release_leases("node-a", {})));
    auto claims = run(store_.claim_orphans({.node = "node-b"}, {}));
    ASSERT_EQ(claims->continued.size(), 1u);
    wait_until([&] { return g->moved(); });
    wait_until([&] { return g->stream() == nullptr; });
    EXPECT_EQ(engine_->find(kUser, g->id()), nullptr);
    run(engine_->shutdown(Shutdown::hand_over));
}

// A cancel made on a node that does not run the answer reaches the node that
// does: it stops its upstream and stores the end, and the cancel answers with
// the cancelled message (I4 across nodes).
TEST_F(EngineTest, ACancelOnAnotherNodeStopsTheOwnersGeneration) {
    start_engine({.tokens_per_second = 0, .stall_after = 3});
    auto g = start_turn("q");
    wait_until([&] { return g->settled() && g->message().version > 1; });
    spawn(engine_->watch_cancels());
    Engine other(io_.get_executor(), faulty_, *provider_,
                 EngineConfig{.lease = {.node = "node-b", .ttl = std::chrono::seconds(30)}});
    auto cancelled = run(other.cancel(kUser, g->id()));
    ASSERT_TRUE(cancelled) << cancelled.error().message();
    EXPECT_EQ(cancelled->status, store::MessageStatus::cancelled);
    EXPECT_EQ(cancelled->content, g->committed());
    EXPECT_TRUE(g->ended());
    EXPECT_EQ(g->stream(), nullptr);  // the upstream is closed
    EXPECT_EQ(stored(g->id()).status, store::MessageStatus::cancelled);
    // Again: the same message, as a cancel on the owner answers.
    auto again = run(other.cancel(kUser, g->id()));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->version, cancelled->version);
    EXPECT_EQ(run(other.cancel(UserId{"usr_other"}, g->id())).error(), Error::not_found);
    run(engine_->shutdown(Shutdown::hand_over));
}

// Renewals keep a live answer's lease: each one finds it still this node's,
// however long the answer runs past the lease's length, and it goes on.
TEST_F(EngineTest, RenewalsKeepALiveAnswersLease) {
    lease_.ttl = std::chrono::milliseconds(300);
    start_engine({.tokens_per_second = 0, .stall_after = 1});
    auto g = start_turn("q");
    spawn(engine_->keep_leases());
    wait_until([&] { return faulty_.renewals >= 4; });  // over a whole lease's length
    EXPECT_FALSE(g->moved());
    EXPECT_EQ(engine_->find(kUser, g->id()), g);
    auto held = run(store_.renew_leases(lease_));
    ASSERT_EQ(held->size(), 1u);
    EXPECT_EQ((*held)[0].epoch, 1);
    run(engine_->shutdown(Shutdown::hand_over));
}

// A renewal still in flight when a node hands its answers over must not
// extend the leases it releases: the hand-over waits for it, so another node
// takes the answers at once, not a lease later.
TEST_F(EngineTest, AHandOverWaitsForARenewalInFlight) {
    lease_.ttl = std::chrono::milliseconds(3000);  // renewals 1 s apart
    start_engine({.tokens_per_second = 0, .stall_after = 1});
    auto g = start_turn("q");
    wait_until([&] { return g->settled() && g->message().version > 1; });
    faulty_.hold_renewals = true;
    spawn(engine_->keep_leases());
    wait_until([&] { return faulty_.renewal_in_flight; });
    bool stopped = false;
    net::co_spawn(io_, [](Engine& e, bool& done) -> net::awaitable<void> {
        co_await e.shutdown(Shutdown::hand_over);
        done = true;
    }(*engine_, stopped), net::detached);
    wait_until([&] { return g->finishing(); });
    // The renewal stays in flight a while longer; a hand-over that did not
    // wait for it would release now.
    net::steady_timer pause(io_, std::chrono::milliseconds(100));
    run([](net::steady_timer& t) -> net::awaitable<void> {
        co_await t.async_wait(net::use_awaitable);
    }(pause));
    faulty_.hold_renewals = false;
    wait_until([&] { return stopped; });
    EXPECT_FALSE(faulty_.released_during_renewal);
    auto claims = run(store_.claim_orphans({.node = "node-b"}, {}));
    ASSERT_TRUE(claims);
    EXPECT_EQ(claims->continued.size(), 1u) << "the released lease was extended again";
}

TEST_F(EngineTest, ReservationsHoldTheLimitsAndFreeWhenGenerationsEnd) {
    // Generations stall after one token: they end only when cancelled.
    start_engine({.tokens_per_second = 0, .stall_after = 1}, {}, 2, EngineConfig{}.max_answer_bytes,
                 {.max_live = 3, .max_per_user = 2});
    const UserId other{"usr_other"};
    auto a = engine_->reserve(kUser);
    auto b = engine_->reserve(kUser);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(engine_->reserve(kUser).error(), Error::too_many_generations);
    auto c = engine_->reserve(other);
    ASSERT_TRUE(c);
    EXPECT_EQ(engine_->reserve(UserId{"usr_third"}).error(), Error::overloaded);
    c->release();
    EXPECT_TRUE(engine_->reserve(UserId{"usr_third"}));  // released at once (temporary)
    a->release();
    b->release();
    // A generation holds its slot until its end is stored.
    auto g = start_turn("q");
    auto g2 = start_turn("q2");
    EXPECT_EQ(engine_->reserve(kUser).error(), Error::too_many_generations);
    ASSERT_TRUE(run(engine_->cancel(kUser, g2->id())));
    EXPECT_TRUE(engine_->reserve(kUser));
    EXPECT_FALSE(g->finishing());
}

}  // namespace
}  // namespace chatd::engine

namespace chatd::engine {
namespace {

TEST_F(EngineTest, ALaggingStoreStopsTheProviderInsteadOfBufferingWithoutBound) {
    start_engine({.tokens_per_second = 0, .min_tokens = 200000, .max_tokens = 200000});
    faulty_.fail_next_commits = 1000000;
    auto g = start_turn("q");
    constexpr std::size_t kBound = 1024 * 1024 + 64;  // the engine's limit plus one token
    wait_until([&] { return g->uncommitted_bytes() >= 1024 * 1024; });
    int failures = faulty_.failed_commits;
    wait_until([&] { return faulty_.failed_commits >= failures + 2; });
    EXPECT_LE(g->uncommitted_bytes(), kBound);
    EXPECT_TRUE(g->committed().empty());
    faulty_.fail_next_commits = 0;
    wait_until([&] { return g->ended(); });
    EXPECT_EQ(stored(g->id()).content, answer_text(sim_, "q"));
}

// Text inside a commit in flight is as uncommitted as text waiting for one:
// while a commit holding the whole bound hangs, the provider is not read.
TEST_F(EngineTest, TextInAHangingCommitCountsAgainstTheBound) {
    start_engine({.tokens_per_second = 0, .min_tokens = 200000, .max_tokens = 200000});
    faulty_.fail_next_commits = 1000000;
    auto g = start_turn("q");
    constexpr std::size_t kBound = 1024 * 1024 + 64;
    wait_until([&] { return g->uncommitted_bytes() >= 1024 * 1024; });
    // The next commit takes all of it and hangs.
    std::size_t in_flight = 0;
    faulty_.on_commit_start = [&](const store::Batch& b) {
        if (!b.writes.empty()) in_flight = b.writes[0].text.size();
    };
    faulty_.hold_commits = true;
    faulty_.fail_next_commits = 0;
    wait_until([&] { return in_flight >= 1024 * 1024; });
    // However much work the loop gets, the provider is not read meanwhile.
    for (int i = 0; i < 100000; ++i) io_.poll_one();
    EXPECT_LE(g->uncommitted_bytes(), kBound);
    faulty_.hold_commits = false;
    wait_until([&] { return g->ended(); });
    EXPECT_EQ(stored(g->id()).content, answer_text(sim_, "q"));
}

// A write the store refuses ends its own generation, with what is stored;
// the other generations of the same commits go on to the end.
TEST_F(EngineTest, AWriteTheStoreRefusesEndsOnlyItsOwnGeneration) {
    start_engine({.tokens_per_second = 0, .min_tokens = 50, .max_tokens = 50});
    faulty_.hold_commits = true;
    auto refused = start_turn("a");
    auto fine = start_turn("b");
    {
        store::sqlite::Database db((dir_.path() / "db.sqlite3").string(),
                                   store::sqlite::Database::Mode::read_write);
        db.exec("CREATE TRIGGER refuse BEFORE INSERT ON ai_chat_message_chunks WHEN "
                "NEW.message_id = '" + refused->id().value + "' BEGIN SELECT RAISE(ABORT, 'no'); END");
    }
    faulty_.hold_commits = false;
    wait_until([&] { return refused->ended() && fine->ended(); });
    auto r = stored(refused->id());
    EXPECT_EQ(r.status, store::MessageStatus::error);
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->code, "store_failure");
    EXPECT_EQ(r.content, refused->committed());
    EXPECT_EQ(stored(fine->id()).content, answer_text(sim_, "b"));
    EXPECT_EQ(stored(fine->id()).status, store::MessageStatus::completed);
    EXPECT_EQ(engine_->active_in(kUser, refused->session_id()), nullptr);
    EXPECT_GE(engine_->persister_stats().refused_writes, 1u);
}

// A provider whose stream throws: a bug, not an upstream failure.
class ThrowingProvider final : public llm::Provider {
public:
    std::string_view name() const override { return "throwing"; }
    bool can_continue() const override { return false; }
    std::unique_ptr<llm::ProviderStream> start(net::any_io_executor, llm::GenerationRequest) override {
        struct Stream final : llm::ProviderStream {
            net::awaitable<llm::StreamEvent> next() override {
                throw std::logic_error("a bug in the provider");
                co_return llm::StreamEvent{};
            }
            void cancel() override {}
        };
        return std::make_unique<Stream>();
    }
};

// A generation whose driver throws ends (error, internal_error) instead of
// staying generating and blocking its session until a restart.
TEST_F(EngineTest, AGenerationWhoseDriverThrowsEndsAndFreesItsSession) {
    ThrowingProvider provider;
    Engine engine(io_.get_executor(), faulty_, provider, EngineConfig{});
    net::co_spawn(io_, engine.run(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    auto session = run(store_.create_session(kUser, store::NewSession{.title = "t"}));
    auto outcome =
        run(store_.begin_turn(kUser, session->id, store::NewTurn{.content = "q"}));
    auto g = engine.start(kUser, *outcome->turn, *engine.reserve(kUser));
    wait_until([&] { return g->ended(); });
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::error);
    EXPECT_EQ(m.error->code, "internal_error");
    auto next = run(store_.begin_turn(kUser, session->id, store::NewTurn{.content = "again"}));
    ASSERT_TRUE(next);
    EXPECT_TRUE(next->turn);
    run(engine.shutdown(Shutdown::end_interrupted));
}

// A graceful stop stores what each live answer has and leaves it generating:
// the next start continues it to the very answer an uninterrupted run gives.
TEST_F(EngineTest, ShutdownHandsLiveGenerationsOverToTheNextStart) {
    start_engine({.tokens_per_second = 0, .min_tokens = 40, .max_tokens = 40, .stall_after = 5});
    auto g = start_turn("q");
    wait_until([&] { return g->settled() && g->produced_bytes() > 0 && g->message().version > 1; });
    run(engine_->shutdown(Shutdown::hand_over));
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::generating);
    EXPECT_EQ(m.content, g->committed());
    EXPECT_FALSE(m.content.empty());
    // Its lease is released: another node takes it at its next scan, not a
    // lease later.
    engine_.reset();
    lease_ = {.node = "node-b", .ttl = std::chrono::seconds(30)};
    start_engine({.tokens_per_second = 0, .min_tokens = 40, .max_tokens = 40});
    auto claims = run(store_.claim_orphans(lease_, {}));
    ASSERT_EQ(claims->continued.size(), 1u);
    ASSERT_TRUE(run(store_.release_leases("node-b", {})));
    spawn(engine_->adopt_orphans());
    wait_until([&] { return engine_->find(kUser, g->id()) != nullptr; });
    auto resumed = engine_->find(kUser, g->id());
    wait_until([&] { return resumed->ended(); });
    EXPECT_EQ(stored(g->id()).content, answer_text(sim_, "q"));
    EXPECT_EQ(stored(g->id()).status, store::MessageStatus::completed);
    run(engine_->shutdown(Shutdown::hand_over));
}

// While every commit fails, a shutdown still ends within its timeout.
TEST_F(EngineTest, ShutdownEndsWithinItsTimeoutWhileTheStoreFails) {
    shutdown_timeout_ = std::chrono::milliseconds(300);
    start_engine({.tokens_per_second = 0, .stall_after = 5});
    faulty_.fail_next_commits = 1000000;
    auto g = start_turn("q");
    wait_until([&] { return g->produced_bytes() > 0 && faulty_.failed_commits > 0; });
    run(engine_->shutdown(Shutdown::hand_over));
    EXPECT_FALSE(g->settled());
    wait_until([&] { return engine_stopped_; });
    EXPECT_EQ(stored(g->id()).status, store::MessageStatus::generating);
}

// A cancel while every commit fails stops the upstream at once and answers
// store_failure after its deadline instead of never.
TEST_F(EngineTest, CancelAnswersWithinItsDeadlineWhileCommitsFail) {
    cancel_timeout_ = std::chrono::milliseconds(200);
    start_engine({.tokens_per_second = 20, .min_tokens = 400, .max_tokens = 400});
    auto g = start_turn("q");
    wait_until([&] { return g->message().version > 1; });
    faulty_.fail_next_commits = 1000000;
    auto cancelled = run(engine_->cancel(kUser, g->id()));
    ASSERT_FALSE(cancelled);
    EXPECT_EQ(cancelled.error(), Error::store_failure);
    EXPECT_TRUE(g->finishing());
    wait_until([&] { return g->stream() == nullptr; });  // the upstream is closed
    // The end is stored once the store takes it.
    faulty_.fail_next_commits = 0;
    wait_until([&] { return g->ended(); });
    EXPECT_EQ(stored(g->id()).status, store::MessageStatus::cancelled);
}

// A send whose turn is stored just as the shutdown begins: its message is
// left generating for the next start, not registered and never ended.
TEST_F(EngineTest, ATurnStoredDuringShutdownIsLeftForTheNextStart) {
    start_engine({.tokens_per_second = 0});
    auto slot = engine_->reserve(kUser);
    ASSERT_TRUE(slot);
    auto session = run(store_.create_session(kUser, store::NewSession{.title = "t"}));
    auto outcome = run(
        store_.begin_turn(kUser, session->id, store::NewTurn{.content = "q", .lease = lease_}));
    run(engine_->shutdown(Shutdown::hand_over));
    auto g = engine_->start(kUser, *outcome->turn, std::move(*slot));
    EXPECT_TRUE(g->finishing());
    EXPECT_EQ(engine_->find(kUser, g->id()), nullptr);
    // Handed over with the rest: any node takes it at once.
    auto left = run(store_.claim_orphans({.node = "node-b"}, {}));
    ASSERT_EQ(left->continued.size(), 1u);
    EXPECT_EQ(left->continued[0].message.id, g->id());
}

}  // namespace
}  // namespace chatd::engine

namespace chatd::engine {
namespace {

// Commits fail for longer than the outage timeout: live answers stop reading
// their provider, drop what was never stored (nor shown), and end with what
// was stored once the store takes writes again.
TEST_F(EngineTest, AStoreOutageLongerThanItsTimeoutEndsLiveAnswersWithWhatWasStored) {
    start_engine({.tokens_per_second = 50, .min_tokens = 400, .max_tokens = 400},
                 PersisterConfig{.outage_timeout = std::chrono::milliseconds(200)});
    auto g = start_turn("q");
    wait_until([&] { return g->message().version > 2; });
    faulty_.fail_next_commits = 1000000;
    wait_until([&] { return g->finishing(); });
    wait_until([&] { return g->stream() == nullptr; });  // the upstream is closed
    EXPECT_EQ(g->uncommitted_bytes(), 0u);
    EXPECT_TRUE(engine_->find(kUser, g->id()));  // its end is not stored yet
    faulty_.fail_next_commits = 0;
    wait_until([&] { return g->ended(); });
    auto m = stored(g->id());
    EXPECT_EQ(m.status, store::MessageStatus::error);
    ASSERT_TRUE(m.error);
    EXPECT_EQ(m.error->code, "store_unavailable");
    EXPECT_EQ(m.content, g->committed());
    EXPECT_FALSE(m.content.empty());
    EXPECT_TRUE(answer_text(sim_, "q").starts_with(m.content));
}

// An answer whose provider is paused for room (the bound is full) stops at
// once when the outage ends it, not when the store comes back.
TEST_F(EngineTest, AnOutageEndsAnAnswerWaitingForRoomAtOnce) {
    start_engine({.tokens_per_second = 0, .min_tokens = 200000, .max_tokens = 200000},
                 PersisterConfig{.outage_timeout = std::chrono::milliseconds(200)});
    faulty_.hold_commits = true;  // the bound fills up first
    auto g = start_turn("q");
    wait_until([&] { return g->uncommitted_bytes() >= 1024 * 1024; });
    faulty_.fail_next_commits = 1000000;
    faulty_.hold_commits = false;
    wait_until([&] { return g->finishing(); });
    wait_until([&] { return g->stream() == nullptr; });
    EXPECT_EQ(g->uncommitted_bytes(), 0u);
    faulty_.fail_next_commits = 0;
    wait_until([&] { return g->ended(); });
    EXPECT_EQ(stored(g->id()).error->code, "store_unavailable");
}

}  // namespace
}  // namespace chatd::engine
