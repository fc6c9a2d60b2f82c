#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <set>

namespace chatd {
namespace {

TEST(Ids, AreWellFormedAndPrefixed) {
    auto id = new_message_id().value;
    EXPECT_TRUE(is_well_formed_id(id, "msg_")) << id;
    EXPECT_FALSE(is_well_formed_id(id, "ses_"));
    EXPECT_TRUE(is_well_formed_id(new_session_id().value, "ses_"));
}

TEST(Ids, SortInCreationOrderAndNeverRepeat) {
    std::string previous;
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) {
        auto id = new_message_id().value;
        EXPECT_LT(previous, id);
        EXPECT_TRUE(seen.insert(id).second);
        previous = id;
    }
}

TEST(Ids, RejectsMalformedIds) {
    for (auto bad : {"", "msg_", "msg_123", "msg_01JABCDEFGHJKMNPQRSTVWXYZI",
                     "msg_01jabcdefghjkmnpqrstvwxyz0", "xmsg_01JABCDEFGHJKMNPQRSTVWXYZ"})
        EXPECT_FALSE(is_well_formed_id(bad, "msg_")) << bad;
}

}  // namespace
}  // namespace chatd
