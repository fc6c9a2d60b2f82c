#include "engine/registry.hpp"

#include <gtest/gtest.h>

namespace chatd::engine {
namespace {

const UserId kAlice{"usr_alice"};
const UserId kBob{"usr_bob"};

std::shared_ptr<Generation> generation(std::string id, std::string session,
                                       const UserId& user = kAlice) {
    store::Message m{.id = MessageId{std::move(id)},
                     .session_id = SessionId{std::move(session)},
                     .role = store::Role::assistant,
                     .status = store::MessageStatus::generating};
    return std::make_shared<Generation>(std::move(m), user, GenerationSlots::Slot{});
}

TEST(Registry, FindsAGenerationByMessageAndSessionForItsUserOnly) {
    Registry r;
    auto g = generation("msg_1", "ses_1");
    r.add(g);
    EXPECT_EQ(r.find(kAlice, g->id()), g);
    EXPECT_EQ(r.active_in(kAlice, g->session_id()), g);
    EXPECT_EQ(r.find(kBob, g->id()), nullptr);
    EXPECT_EQ(r.active_in(kBob, g->session_id()), nullptr);
    EXPECT_EQ(r.live(g->id()), g);
    EXPECT_EQ(r.all().size(), 1u);
}

// A generation that ends after another took its session's place (the next
// turn) or its message's (a takeover by this node) removes only itself.
TEST(Registry, RemovingAGenerationLeavesTheOneThatTookItsPlace) {
    Registry r;
    auto first = generation("msg_1", "ses_1");
    auto next = generation("msg_2", "ses_1");
    r.add(first);
    r.add(next);
    r.remove(first);
    EXPECT_EQ(r.active_in(kAlice, SessionId{"ses_1"}), next);
    EXPECT_EQ(r.live(MessageId{"msg_1"}), nullptr);

    auto again = generation("msg_2", "ses_1");
    r.add(again);
    r.remove(next);
    EXPECT_EQ(r.live(MessageId{"msg_2"}), again);
    EXPECT_EQ(r.active_in(kAlice, SessionId{"ses_1"}), again);
    r.remove(again);
    EXPECT_TRUE(r.all().empty());
}

}  // namespace
}  // namespace chatd::engine
