// §4.4 learner side of synchronization, 3.9.4+ order (reference §7 items 19-21; Zab1_0Test
// testNormalFollowerRun / testNormalFollowerRunWithDiff / testUnnecessarySnap; I5, I6, I18).
// A real follower n2 syncs from a fake leader n1. What it received (snapshot or DIFF entries)
// must be durable, then currentEpoch, and only then does ACK(NEWLEADER) leave; proposals of the
// session are acked after it; data is delivered from UPTODATE on and survives a restart.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

// n2 real (from `image`); n1 a fake leader announcing `epoch` with fake n3 following it.
Ensemble follower_n2(const DurableImage& image, Epoch announced) {
  Spec spec = Spec::majority(3);
  spec.fake({1, 3});
  Ensemble e(spec);
  e.disk(2) = image;
  e.start(2);
  e.fakes_lead(1, 2, {3}, announced);
  EXPECT_EQ(e.state(2), PeerState::following) << e.transcript().dump();
  return e;
}

void leaderinfo(Ensemble& e, Epoch epoch) {
  ByteBuffer b;
  core::encode_int32_packet(PacketType::leaderinfo, Zxid::make(epoch, 0), 0x10000, b);
  e.fake_send(1, 2, b);
  e.settle();
}

TEST(LearnerSync, S7_19_Zab1_0Test_testNormalFollowerRun_Snap) {
  Ensemble e = follower_n2(DurableImage{}, Epoch{1});
  leaderinfo(e, Epoch{2});
  const auto ackepoch = e.received(1, PacketType::ackepoch);
  ASSERT_EQ(ackepoch.size(), 1u);
  EXPECT_EQ(ackepoch[0].zxid, z(0, 0));
  EXPECT_EQ(e.disk(2).accepted, Epoch{2});

  e.hold_disk(2);
  const std::vector<Entry> snapshot{{z(1, 1), "a"}, {z(1, 2), "b"}, {z(1, 3), "c"}};
  e.fake_snap(1, 2, z(1, 3), snapshot);
  e.fake_packet(1, 2, PacketType::newleader, z(2, 0));
  e.settle();
  EXPECT_TRUE(e.transcript().in_order({"n2 snapshot 1:3", "n2 epochs a2 c2"}));
  EXPECT_TRUE(e.received(1, PacketType::ack).empty());
  // The snapshot is on disk; currentEpoch is not: still no ACK.
  e.complete_disk(2, 1);
  e.settle();
  EXPECT_EQ(e.disk(2).log_base, z(1, 3));
  EXPECT_EQ(e.disk(2).app, snapshot);
  EXPECT_TRUE(e.received(1, PacketType::ack).empty());
  // currentEpoch on disk: ACK(NEWLEADER).
  e.complete_disk(2, 1);
  e.settle();
  ASSERT_FALSE(e.received(1, PacketType::ack).empty());
  EXPECT_EQ(e.received(1, PacketType::ack)[0].zxid, z(2, 0));
  EXPECT_EQ(e.disk(2).accepted, Epoch{2});
  EXPECT_EQ(e.disk(2).current, Epoch{2});

  // Broadcast: PROPOSAL, COMMIT, UPTODATE.
  e.hold_disk(2, false);
  e.fake_batch(1, 2, PacketType::proposal, z(2, 1), {"d"});
  e.fake_packet(1, 2, PacketType::commit, z(2, 1));
  e.settle();
  EXPECT_EQ(e.values(2), (std::vector<std::string>{"a", "b", "c"}));  // nothing new before UPTODATE
  e.fake_packet(1, 2, PacketType::uptodate, Zxid{-1});
  e.settle();
  EXPECT_TRUE(e.transcript().in_order({"n2>n1 ACK 2:0", "n2>n1 ACK 2:1", "n2 FOLLOWING n1 e2 established",
                                       "n2 deliver 2:1"}));
  EXPECT_EQ(e.values(2), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(e.state(2), PeerState::following);
  EXPECT_EQ(e.node(2).phase(), ZabPhase::broadcast);

  // Persisted across a reload.
  e.crash(2);
  e.restart(2);
  EXPECT_EQ(e.values(2), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(e.node(2).applied(), z(2, 1));
  EXPECT_EQ(e.node(2).last_logged(), z(2, 1));
  EXPECT_EQ(e.node(2).current_epoch(), Epoch{2});
  EXPECT_TRUE(e.consistent());
}

TEST(LearnerSync, S7_20_Zab1_0Test_testNormalFollowerRunWithDiff) {
  Ensemble e = follower_n2(DurableImage::with(1, 1, {{z(1, 1), "a"}, {z(1, 2), "b"}}, z(1, 2)),
                           Epoch{1});
  leaderinfo(e, Epoch{2});
  ASSERT_EQ(e.received(1, PacketType::ackepoch).size(), 1u);
  EXPECT_EQ(e.received(1, PacketType::ackepoch)[0].zxid, z(1, 2));
  e.hold_disk(2);
  e.fake_packet(1, 2, PacketType::diff, z(1, 4));
  e.fake_batch(1, 2, PacketType::proposal, z(1, 3), {"c", "d"});
  e.fake_packet(1, 2, PacketType::commit, z(1, 4));
  e.fake_packet(1, 2, PacketType::newleader, z(2, 0));
  e.settle();
  EXPECT_TRUE(e.transcript().in_order({"n2 append 1:3-1:4", "n2 epochs a2 c2"}));
  EXPECT_FALSE(e.transcript().contains("n2 snapshot"));
  EXPECT_TRUE(e.received(1, PacketType::ack).empty());
  e.complete_disk(2, 1);  // the DIFF entries are durable
  e.settle();
  EXPECT_TRUE(e.disk(2).logs(z(1, 4)));
  EXPECT_TRUE(e.received(1, PacketType::ack).empty());
  e.complete_disk(2, 1);  // currentEpoch is durable
  e.settle();
  const auto acks = e.received(1, PacketType::ack);
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks[0].zxid, z(2, 0));  // I6: the first ACK of the session is NEWLEADER's
  e.hold_disk(2, false);
  e.fake_packet(1, 2, PacketType::uptodate, Zxid{-1});
  e.settle();
  EXPECT_EQ(e.values(2), (std::vector<std::string>{"a", "b", "c", "d"}));
  e.crash(2);
  e.restart(2);
  EXPECT_EQ(e.values(2), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(e.node(2).last_logged(), z(1, 4));
  EXPECT_EQ(e.node(2).current_epoch(), Epoch{2});
}

TEST(LearnerSync, S7_20_ZOOKEEPER_4685_FirstAckOfTheSessionIsTheNewLeaderAck) {
  // Proposals arriving during synchronization are not acked before NEWLEADER is (I6).
  Ensemble e = follower_n2(DurableImage::with(1, 1, {{z(1, 1), "a"}}, z(1, 1)), Epoch{1});
  leaderinfo(e, Epoch{2});
  e.fake_packet(1, 2, PacketType::diff, z(1, 1));
  e.fake_batch(1, 2, PacketType::proposal, z(2, 1), {"x"});
  e.fake_batch(1, 2, PacketType::proposal, z(2, 2), {"y"});
  e.settle();
  EXPECT_TRUE(e.disk(2).logs(z(2, 2)));  // logged...
  EXPECT_TRUE(e.received(1, PacketType::ack).empty());  // ...but not acked
  e.fake_packet(1, 2, PacketType::newleader, z(2, 0));
  e.settle();
  const auto acks = e.received(1, PacketType::ack);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].zxid, z(2, 0));
  EXPECT_EQ(acks[1].zxid, z(2, 2));  // cumulative
}

TEST(LearnerSync, S7_19_TruncIsDurableBeforeTheNewLeaderAck) {
  // TRUNC: the log loses the entries the leader never had; the ACK waits for the truncation
  // and currentEpoch to be on disk.
  Ensemble e = follower_n2(
      DurableImage::with(1, 1, {{z(1, 1), "a"}, {z(1, 2), "lone"}}, z(1, 1)), Epoch{1});
  leaderinfo(e, Epoch{2});
  e.hold_disk(2);
  e.fake_packet(1, 2, PacketType::trunc, z(1, 1));
  e.fake_batch(1, 2, PacketType::proposal, z(2, 1), {"b"});
  e.fake_packet(1, 2, PacketType::newleader, z(2, 0));
  e.settle();
  EXPECT_TRUE(e.transcript().in_order({"n2 truncate 1:1", "n2 append 2:1", "n2 epochs a2 c2"}));
  EXPECT_EQ(e.node(2).last_logged(), z(2, 1));
  EXPECT_TRUE(e.received(1, PacketType::ack).empty());
  e.complete_disk(2, 2);  // truncate + append
  e.settle();
  EXPECT_FALSE(e.disk(2).logs(z(1, 2)));
  EXPECT_TRUE(e.received(1, PacketType::ack).empty());
  e.complete_disk(2);
  e.settle();
  ASSERT_FALSE(e.received(1, PacketType::ack).empty());
  EXPECT_EQ(e.received(1, PacketType::ack)[0].zxid, z(2, 0));
}

TEST(LearnerSync, S7_21_Zab1_0Test_testUnnecessarySnap) {
  // Followers already at the leader's zxid get an empty DIFF, never a SNAP, however small the
  // leader's in-memory history is.
  const std::vector<Entry> log{{z(1, 1), "a"}, {z(1, 2), "b"}, {z(1, 3), "c"}};
  Ensemble e(Spec::majority(3));
  for (Sid s : {1, 2, 3}) {
    e.disk(s) = DurableImage::with(1, 1, log, z(1, 3));
    e.config(s).history_window = 0;
  }
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  EXPECT_TRUE(e.transcript().contains("n3>n1 DIFF 1:3"));
  EXPECT_TRUE(e.transcript().contains("n3>n2 DIFF 1:3"));
  EXPECT_FALSE(e.transcript().contains("SNAP"));
  EXPECT_FALSE(e.transcript().contains(" snapshot "));
  // Again after a follower restarts at the leader's zxid.
  e.crash(1);
  e.restart(1);
  ASSERT_EQ(e.elect(), std::optional<Sid>(3));
  EXPECT_EQ(e.transcript().count("n3>n1 DIFF 1:3"), 2u);
  EXPECT_FALSE(e.transcript().contains("SNAP"));
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
