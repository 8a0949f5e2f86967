// §2.5-2.8 joining an established ensemble (reference §7 items 3 and 4; FLETest.testJoin,
// ZOOKEEPER-975; FLETest.testJoinInconsistentEnsemble, ZOOKEEPER-1732). A server that starts
// while a leader is serving must end up FOLLOWING it, never LEADING, even when it has the highest
// sid and even when the members report different zxids and rounds for the same leader.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

TEST(FleJoin, S7_3_FLETest_testJoin_ZOOKEEPER_975_JoinerFollowsNeverLeads) {
  Ensemble e(Spec::majority(3));
  e.start(1);
  e.start(2);
  ASSERT_EQ(e.elect(), std::optional<Sid>(2)) << e.transcript().dump();
  e.commit(2, {"before-join"});
  // n3 has the highest sid: a fresh election among equals would pick it.
  e.start(3);
  ASSERT_TRUE(e.run_until([&] { return e.serving(3); }, 10)) << e.transcript().dump();
  EXPECT_EQ(e.state(3), PeerState::following);
  EXPECT_EQ(e.node(3).leader(), ServerId{2});
  EXPECT_FALSE(e.transcript().contains("n3 LEADING"));
  EXPECT_EQ(e.values(3), std::vector<std::string>{"before-join"});
  EXPECT_EQ(e.transcript().count(" LEADING e"), 1u);  // the ensemble never re-elected
  EXPECT_TRUE(e.consistent());
}

TEST(FleJoin, S7_3_FLETest_testJoin_JoinerWaitsWhileOnlyOneMemberAnswers) {
  // The leader alone says LEADING; a single LEADING notification ends no round (ZOOKEEPER-975).
  Ensemble e(Spec::majority(3));
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  e.crash(1);
  e.tick(2);
  e.cut(2, 1);  // n1 will hear only the leader
  e.restart(1);
  e.tick(30);
  EXPECT_EQ(e.state(1), PeerState::looking) << e.transcript().dump();
  e.heal();
  ASSERT_TRUE(e.run_until([&] { return e.serving(1); }, 20)) << e.transcript().dump();
  EXPECT_EQ(e.node(1).leader(), ServerId{3});
  EXPECT_TRUE(e.consistent());
}

TEST(FleJoin, S7_4_FLETest_testJoinInconsistentEnsemble_ZOOKEEPER_1732) {
  // n1 advertises its decided vote with zxid+100 and round+100: established votes agree by
  // (leader, peerEpoch) only, so n3 still joins.
  Ensemble e(Spec::majority(3));
  e.start(1);
  e.start(2);
  ASSERT_EQ(e.elect(), std::optional<Sid>(2));
  int rewritten = 0;
  e.filter = [&](Sid from, Sid to, ByteBuffer& frame) {
    if (from != 1 || to != 3) return true;
    auto f = core::decode_frame(Bytes(frame));
    if (!f || f->kind != core::FrameKind::notification) return true;
    core::Notification n = f->notification;
    n.zxid = Zxid{n.zxid.value + 100};
    n.round += 100;
    n.config = Bytes{};
    ByteBuffer out;
    core::encode_notification(n, out);
    frame = std::move(out);
    ++rewritten;
    return true;
  };
  e.start(3);
  ASSERT_TRUE(e.run_until([&] { return e.serving(3); }, 20)) << e.transcript().dump();
  EXPECT_GT(rewritten, 0);
  EXPECT_EQ(e.state(3), PeerState::following);
  EXPECT_EQ(e.node(3).leader(), ServerId{2});
  EXPECT_FALSE(e.transcript().contains("n3 LEADING"));
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
