// The test world itself (Ensemble): the properties the unit and scenario tests rely on.
#include "tests/support/ensemble.h"

#include <gtest/gtest.h>

namespace fastzab::test {
namespace {

TEST(TestWorld, ThreeNodesElectAndReplicate) {
  Ensemble e(Spec::majority(3));
  const auto l = e.start_and_elect();
  ASSERT_TRUE(l.has_value()) << e.transcript().dump();
  EXPECT_EQ(*l, 3);
  e.commit(3, {"a", "b"});
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), (std::vector<std::string>{"a", "b"})) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(TestWorld, SameScriptSameTranscript) {
  auto run = [] {
    Ensemble e(Spec::majority(5));
    e.start_and_elect();
    e.propose(*e.leader(), {"x"});
    e.crash(*e.leader());
    e.elect();
    e.tick(3);
    return e.transcript().lines();
  };
  EXPECT_EQ(run(), run());
}

TEST(TestWorld, CrashLosesWhatTheDiskHadNotCompleted) {
  Ensemble e(Spec::majority(1));
  e.start(1);
  ASSERT_EQ(e.elect(), std::optional<Sid>(1));
  e.propose(1, {"durable"});
  e.settle();
  e.hold_disk(1);
  e.propose(1, {"lost"});
  e.settle();
  EXPECT_EQ(e.pending_disk(1), 1u);
  EXPECT_EQ(e.values(1), std::vector<std::string>{"durable"});  // a single node commits on its disk
  e.crash(1);
  EXPECT_FALSE(e.disk(1).logs(z(1, 2)));
  e.hold_disk(1, false);
  e.restart(1);
  EXPECT_EQ(e.node(1).last_logged(), z(1, 1));
  EXPECT_EQ(e.values(1), std::vector<std::string>{"durable"});
}

TEST(TestWorld, DisconnectDropsTheSessionsFramesAndReconnectIsAFreshSession) {
  Ensemble e(Spec::majority(3));
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  const SessionId before = e.session(1, 3);
  e.propose(3, {"x"});
  ASSERT_GT(e.in_flight(3, 1), 0u);
  e.disconnect(1, 3);
  EXPECT_EQ(e.in_flight(3, 1), 0u);
  EXPECT_EQ(e.state(1), PeerState::looking);
  e.tick();  // auto_reconnect
  EXPECT_TRUE(e.connected(1, 3));
  EXPECT_NE(e.session(1, 3), before);
  ASSERT_TRUE(e.run_until([&] { return e.serving(1); }, 30));
  e.tick(2);
  EXPECT_EQ(e.values(1), std::vector<std::string>{"x"});
}

TEST(TestWorld, PartitionAndHeal) {
  Ensemble e(Spec::majority(5));
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(5));
  e.partition({{1, 2}, {3, 4, 5}});
  EXPECT_FALSE(e.reachable(1, 5));
  EXPECT_TRUE(e.reachable(3, 5));
  e.tick(20);
  EXPECT_EQ(e.state(1), PeerState::looking);
  EXPECT_EQ(e.leader(), std::optional<Sid>(5));
  e.heal();
  ASSERT_EQ(e.elect(), std::optional<Sid>(5));
}

TEST(TestWorld, FakeMemberSeesWhatTheRealNodeSends) {
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  EXPECT_TRUE(e.inbox(2).empty());  // queued, not yet delivered
  e.settle();
  const auto votes = e.inbox(2);
  ASSERT_EQ(votes.size(), 1u);
  EXPECT_EQ(votes[0].kind, core::FrameKind::notification);
  EXPECT_EQ(votes[0].state, PeerState::looking);
  EXPECT_EQ(votes[0].leader, 1);
  EXPECT_EQ(votes[0].round, 1);
  e.fakes_elect(1, {2, 3});
  EXPECT_EQ(e.state(1), PeerState::leading);
  const auto got = e.fake_follow(2, 1, Epoch{0}, z(0, 0), 0, z(0, 0));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().describe(), "LEADERINFO 1:0");
  EXPECT_EQ(got.back().describe(), "UPTODATE -1");
}

TEST(TestWorld, SnapshotsCarryTheApplicationState) {
  const std::vector<Entry> app{{z(1, 1), "a"}, {z(1, 2), ""}, {z(2, 1), "ccc"}};
  const ByteBuffer bytes = encode_app_state(app);
  EXPECT_EQ(decode_app_state(Bytes(bytes)), std::optional(app));
  ByteBuffer cut(bytes.begin(), bytes.end() - 1);
  EXPECT_FALSE(decode_app_state(Bytes(cut)).has_value());
}

TEST(TestWorld, GatedFramesWaitForTheDisk) {
  // A follower's ACK is a send_after_durable: held by the SendGate until its append is durable.
  Ensemble e(Spec::majority(3));
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  e.hold_disk(1);
  e.propose(3, {"x"});
  e.settle();
  EXPECT_EQ(e.gate_held(1), 1u);
  EXPECT_FALSE(e.transcript().contains("n1>n3 ACK 1:1"));
  e.complete_disk(1);
  e.settle();
  EXPECT_TRUE(e.transcript().contains("n1>n3 ACK 1:1"));
}

}  // namespace
}  // namespace fastzab::test
