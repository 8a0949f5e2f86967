// §4.3 discovery, leader side: the new epoch is one more than every acceptedEpoch of a quorum
// that includes the leader; the leader persists acceptedEpoch before LEADERINFO leaves
// (ZOOKEEPER-1291) and currentEpoch once a quorum acked the epoch (reference §7 items 11-13,
// Zab1_0Test testNormalRun / testLeaderBehind / testLastAcceptedEpoch, ZOOKEEPER-1343).
// n1 is real and leads; the other members are fake followers scripted by the test.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

Ensemble leader_n1_with_fakes(std::size_t members, const DurableImage& n1) {
  Spec spec = Spec::majority(members);
  for (Sid s = 2; s <= static_cast<Sid>(members); ++s) spec.fakes.insert(s);
  Ensemble e(spec);
  e.disk(1) = n1;
  e.start(1);
  std::vector<Sid> fakes;
  for (Sid s = 2; s <= static_cast<Sid>(members); ++s) fakes.push_back(s);
  e.fakes_elect(1, fakes);
  return e;
}

TEST(DiscoveryEpoch, S7_11_Zab1_0Test_testNormalRun) {
  Ensemble e = leader_n1_with_fakes(3, DurableImage{});
  ASSERT_EQ(e.state(1), PeerState::leading) << e.transcript().dump();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::discovery);
  EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{0});
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{0});

  // FOLLOWERINFO(0): with the leader, a quorum contributed; epoch 1 is chosen and its promise
  // persisted before LEADERINFO may leave.
  e.hold_disk(1);
  e.fake_followerinfo(2, 1, Epoch{0});
  e.settle();
  EXPECT_TRUE(e.transcript().contains("n1 epochs a1 c0"));
  EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{1});
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{0});
  EXPECT_TRUE(e.received(2, PacketType::leaderinfo).empty());
  e.complete_disk(1);
  e.settle();
  const auto info = e.received(2, PacketType::leaderinfo);
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0].zxid, z(1, 0));
  EXPECT_EQ(info[0].int32(), 0x10000);
  EXPECT_EQ(e.disk(1).accepted, Epoch{1});
  EXPECT_EQ(e.disk(1).current, Epoch{0});

  // ACKEPOCH: the epoch has a quorum; currentEpoch = 1 is persisted before NEWLEADER leaves.
  e.fake_ackepoch(2, 1, z(0, 0), 0, z(0, 0));
  e.settle();
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{1});
  EXPECT_TRUE(e.transcript().contains("n1 epochs a1 c1"));
  EXPECT_EQ(e.received(2, PacketType::diff).size(), 1u);
  EXPECT_TRUE(e.received(2, PacketType::newleader).empty());
  e.complete_disk(1);
  e.settle();
  const auto newleader = e.received(2, PacketType::newleader);
  ASSERT_EQ(newleader.size(), 1u);
  EXPECT_EQ(newleader[0].zxid, z(1, 0));
  EXPECT_EQ(e.received(2, PacketType::diff)[0].zxid, z(0, 0));  // the leader's last zxid

  // ACK(NEWLEADER): established; UPTODATE.
  e.hold_disk(1, false);
  e.fake_packet(2, 1, PacketType::ack, z(1, 0));
  e.settle();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::broadcast);
  EXPECT_EQ(e.received(2, PacketType::uptodate).size(), 1u);
  EXPECT_TRUE(e.transcript().in_order({"n1 LEADING", "n2>n1 FOLLOWERINFO 0:0", "n1 epochs a1 c0",
                                       "n1>n2 LEADERINFO 1:0", "n2>n1 ACKEPOCH 0:0",
                                       "n1 epochs a1 c1", "n1>n2 DIFF 0:0", "n1>n2 NEWLEADER 1:0",
                                       "n2>n1 ACK 1:0", "n1 LEADING e1 established",
                                       "n1>n2 UPTODATE -1"}));
}

TEST(DiscoveryEpoch, S7_11_Zab1_0Test_testNormalRun_GoldenTranscript) {
  // The whole exchange, as the paper tells it (CEPOCH, NEWEPOCH, ACK-E, NEWLEADER, ACK-LD,
  // COMMIT-LD), line by line.
  Ensemble e = leader_n1_with_fakes(3, DurableImage{});
  const std::size_t mark = e.transcript().size();
  e.fake_follow(2, 1, Epoch{0}, z(0, 0), 0, z(0, 0));
  const auto& lines = e.transcript().lines();
  const std::vector<std::string> run(lines.begin() + static_cast<std::ptrdiff_t>(mark), lines.end());
  EXPECT_EQ(run, (std::vector<std::string>{
                     "n2>n1 FOLLOWERINFO 0:0",
                     "n1 epochs a1 c0",
                     "n1>n2 LEADERINFO 1:0",
                     "n2>n1 ACKEPOCH 0:0",
                     "n1 epochs a1 c1",
                     "n1>n2 DIFF 0:0",
                     "n1>n2 NEWLEADER 1:0",
                     "n2>n1 ACK 1:0",
                     "n1 LEADING e1 established",
                     "n1>n2 COMMIT 0:0",
                     "n1>n2 UPTODATE -1",
                 }));
}

TEST(DiscoveryEpoch, S7_12_Zab1_0Test_testLeaderBehind) {
  // The follower has promised epoch 20: the new epoch must be above it.
  Ensemble e = leader_n1_with_fakes(3, DurableImage{});
  const auto got = e.fake_follow(2, 1, Epoch{20}, z(0, 0), 0, z(0, 0));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().type, PacketType::leaderinfo);
  EXPECT_EQ(got.front().zxid, z(21, 0));
  EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{21});
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{21});
  EXPECT_EQ(e.disk(1).current, Epoch{21});
  EXPECT_TRUE(e.transcript().in_order({"n1>n2 LEADERINFO 21:0", "n1>n2 NEWLEADER 21:0",
                                       "n1 LEADING e21 established", "n1>n2 UPTODATE"}));
}

TEST(DiscoveryEpoch, S7_13_Zab1_0Test_testLastAcceptedEpoch_ZOOKEEPER_1343) {
  // The leader promised 5 (candidate 6); a follower that promised 6 joins: the epoch becomes 7,
  // strictly above every contributed acceptedEpoch.
  Ensemble e = leader_n1_with_fakes(5, DurableImage::with(5, 4, {}, z(0, 0)));
  ASSERT_EQ(e.state(1), PeerState::leading) << e.transcript().dump();
  e.fake_followerinfo(2, 1, Epoch{3});
  e.settle();
  // Two of five contributed: no epoch yet, nothing promised to anyone.
  EXPECT_TRUE(e.received(2, PacketType::leaderinfo).empty());
  EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{5});
  e.fake_followerinfo(3, 1, Epoch{6});
  e.settle();
  for (Sid f : {2, 3}) {
    const auto info = e.received(f, PacketType::leaderinfo);
    ASSERT_EQ(info.size(), 1u) << f;
    EXPECT_EQ(info[0].zxid, z(7, 0)) << f;
  }
  EXPECT_EQ(e.disk(1).accepted, Epoch{7});
  // A later learner gets the same epoch, whatever it promised before.
  e.fake_followerinfo(4, 1, Epoch{1});
  e.settle();
  ASSERT_EQ(e.received(4, PacketType::leaderinfo).size(), 1u);
  EXPECT_EQ(e.received(4, PacketType::leaderinfo)[0].zxid, z(7, 0));
}

TEST(DiscoveryEpoch, S7_13_Zab1_0Test_testLastAcceptedEpoch_LeaderPromiseIsTheFloor) {
  // Followers that promised less than the leader: the leader's own acceptedEpoch + 1.
  Ensemble e = leader_n1_with_fakes(3, DurableImage::with(5, 4, {}, z(0, 0)));
  const auto got = e.fake_follow(2, 1, Epoch{2}, z(0, 0), 0, z(0, 0));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().zxid, z(6, 0));
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{6});
}

TEST(DiscoveryEpoch, S7_11_AckEpochMinusOneNeverCountsButIsSynced) {
  // Reference §4.3 step 5: ACKEPOCH with currentEpoch -1 ("already promised") is not an epoch
  // ack; the learner is still synchronized once a quorum acked.
  Ensemble e = leader_n1_with_fakes(3, DurableImage{});
  e.fake_followerinfo(2, 1, Epoch{0});
  e.settle();
  ASSERT_EQ(e.received(2, PacketType::leaderinfo).size(), 1u);
  e.fake_ackepoch(2, 1, z(0, 0), -1, z(0, 0));
  e.settle();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::discovery);
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{0});
  EXPECT_TRUE(e.received(2, PacketType::newleader).empty());
  const auto got = e.fake_follow(3, 1, Epoch{0}, z(0, 0), 0, z(0, 0));
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{1});
  EXPECT_EQ(e.received(2, PacketType::newleader).size(), 1u);  // n2 synced too
}

TEST(DiscoveryEpoch, AckEpochNamingAnEarlierLeaderInfoIsNoPromise) {
  // Sim seed 2061: a learner's ACKEPOCH to LEADERINFO(e) waited for its promise to be durable,
  // the learner meanwhile gave that attempt up, and the leader (on the same session, now
  // offering e+1) must not count the late frame as a promise for e+1: the learner's durable
  // acceptedEpoch is only e.
  Ensemble e = leader_n1_with_fakes(3, DurableImage::with(1, 1, {}, z(0, 0)));
  e.fake_followerinfo(2, 1, Epoch{1});
  e.settle();
  const auto info = e.received(2, PacketType::leaderinfo);
  ASSERT_EQ(info.size(), 1u);
  ASSERT_EQ(info[0].zxid, z(2, 0));
  e.fake_ackepoch(2, 1, z(0, 0), 1, z(0, 0), /*answered=*/1);
  e.settle();
  EXPECT_EQ(e.node(1).counters().ignored_packets, 1u);
  EXPECT_EQ(e.node(1).phase(), ZabPhase::discovery);
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{1});
  EXPECT_TRUE(e.received(2, PacketType::newleader).empty());
  EXPECT_TRUE(e.connected(1, 2));  // a race, not a protocol error: the session stays

  // The answer to this LEADERINFO still counts.
  e.fake_ackepoch(2, 1, z(0, 0), 1, z(0, 0), /*answered=*/2);
  e.settle();
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{2});
  EXPECT_EQ(e.received(2, PacketType::newleader).size(), 1u);
}

TEST(DiscoveryEpoch, S7_11_LearnerAheadOfTheLeaderIsRefused) {
  // Reference §4.3 step 5 (L:1514-1520): a learner whose (currentEpoch, lastZxid) is above the
  // leader's cannot be synchronized by it and is dropped; it never counts.
  Ensemble e = leader_n1_with_fakes(3, DurableImage::with(1, 1, {{z(1, 1), "a"}}, z(1, 1)));
  e.fake_followerinfo(2, 1, Epoch{1});
  e.settle();
  ASSERT_EQ(e.received(2, PacketType::leaderinfo).size(), 1u);
  e.fake_ackepoch(2, 1, z(1, 2), 1, z(1, 1));
  e.settle();
  EXPECT_EQ(e.node(1).counters().learners_dropped, 1u);
  EXPECT_FALSE(e.connected(1, 2));
  EXPECT_EQ(e.node(1).phase(), ZabPhase::discovery);
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{1});
}

}  // namespace
}  // namespace fastzab::test
