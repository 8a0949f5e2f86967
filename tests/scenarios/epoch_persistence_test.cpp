// §4.1 and I16: epochs are persisted before they are used (reference §7 items 16 and 17;
// EpochWriteFailureTest, ZOOKEEPER-2307; Zab1_0Test.testInitialAcceptedCurrent). A learner's
// ACKEPOCH leaves only once its acceptedEpoch is durable, ACK(NEWLEADER) only once its
// currentEpoch is; an epoch write that never completes means the node never finishes joining,
// and after a crash the old epoch is what it remembers. A learner asked to promise an epoch it
// already promised answers -1.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

// n2 real; n1 fake leader, n3 fake follower of it.
Ensemble learner_n2(const DurableImage& n2, Epoch announced) {
  Spec spec = Spec::majority(3);
  spec.fake({1, 3});
  Ensemble e(spec);
  e.disk(2) = n2;
  e.start(2);
  e.fakes_lead(1, 2, {3}, announced);
  return e;
}

TEST(EpochPersistence, S7_16_EpochWriteFailureTest_ZOOKEEPER_2307_NoAckEpochUntilTheWriteCompletes) {
  Ensemble e = learner_n2(DurableImage{}, Epoch{0});
  ASSERT_EQ(e.state(2), PeerState::following) << e.transcript().dump();
  e.hold_disk(2);
  ByteBuffer info;
  core::encode_int32_packet(PacketType::leaderinfo, z(1, 0), 0x10000, info);
  e.fake_send(1, 2, info);
  e.settle();
  EXPECT_TRUE(e.transcript().contains("n2 epochs a1 c0"));
  EXPECT_TRUE(e.received(1, PacketType::ackepoch).empty());
  EXPECT_EQ(e.gate_held(2), 1u);
  EXPECT_EQ(e.disk(2).accepted, Epoch{0});
  // The write never completes: n2 never finishes joining; the leader's silence ends the try.
  ASSERT_TRUE(e.run_until([&] { return e.state(2) == PeerState::looking; }, 40));
  EXPECT_TRUE(e.received(1, PacketType::ackepoch).empty());
  // A failed write is a crash: the durable promise is the old one.
  e.crash(2);
  e.restart(2);
  EXPECT_EQ(e.node(2).accepted_epoch(), Epoch{0});
  EXPECT_EQ(e.disk(2).accepted, Epoch{0});
}

TEST(EpochPersistence, S7_16_EpochWriteFailureTest_AckEpochLeavesOnceDurable) {
  Ensemble e = learner_n2(DurableImage::with(1, 1, {{z(1, 1), "a"}}, z(1, 1)), Epoch{1});
  e.hold_disk(2);
  ByteBuffer info;
  core::encode_int32_packet(PacketType::leaderinfo, z(2, 0), 0x10000, info);
  e.fake_send(1, 2, info);
  e.settle();
  EXPECT_TRUE(e.received(1, PacketType::ackepoch).empty());
  e.complete_disk(2);
  e.settle();
  const auto ack = e.received(1, PacketType::ackepoch);
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0].zxid, z(1, 1));  // its last logged zxid
  EXPECT_EQ(ack[0].int32(), 1);     // its currentEpoch before the promise
  EXPECT_EQ(e.disk(2).accepted, Epoch{2});
  EXPECT_EQ(e.disk(2).current, Epoch{1});
}

TEST(EpochPersistence, S7_16_LeaderNeverSendsLeaderInfoBeforeItsPromiseIsDurable) {
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2, 3});
  ASSERT_EQ(e.state(1), PeerState::leading);
  e.hold_disk(1);
  e.fake_answers_pings(2);
  e.fake_followerinfo(2, 1, Epoch{0});
  e.settle();
  ASSERT_TRUE(e.run_until([&] { return e.state(1) == PeerState::looking; }, 40));
  EXPECT_TRUE(e.received(2, PacketType::leaderinfo).empty());
  e.crash(1);
  e.restart(1);
  EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{0});
}

TEST(EpochPersistence, S7_16_AckEpochMinusOneWhenTheEpochWasAlreadyPromised) {
  // Reference §4.3 learner step 3: LEADERINFO(e) with e == acceptedEpoch: nothing to persist,
  // ACKEPOCH carries -1 ("not an ack, but sync me").
  Ensemble e = learner_n2(DurableImage::with(3, 2, {{z(2, 1), "a"}}, z(2, 1)), Epoch{2});
  ByteBuffer info;
  core::encode_int32_packet(PacketType::leaderinfo, z(3, 0), 0x10000, info);
  e.fake_send(1, 2, info);
  e.settle();
  const auto ack = e.received(1, PacketType::ackepoch);
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0].int32(), -1);
  EXPECT_EQ(ack[0].zxid, z(2, 1));
  EXPECT_FALSE(e.transcript().contains("n2 epochs"));
}

TEST(EpochPersistence, S7_16_LeaderInfoBelowThePromiseIsAbandoned) {
  // Reference §4.3 learner step 3 and F:96-103: a leader whose epoch is below my acceptedEpoch
  // is abandoned: no ACKEPOCH, back to LOOKING.
  Ensemble e = learner_n2(DurableImage::with(5, 4, {}, z(0, 0)), Epoch{4});
  ASSERT_EQ(e.state(2), PeerState::following);
  ByteBuffer info;
  core::encode_int32_packet(PacketType::leaderinfo, z(4, 0), 0x10000, info);
  e.fake_send(1, 2, info);
  e.settle();
  EXPECT_EQ(e.state(2), PeerState::looking);
  EXPECT_TRUE(e.received(1, PacketType::ackepoch).empty());
  EXPECT_EQ(e.node(2).accepted_epoch(), Epoch{5});
}

TEST(EpochPersistence, S7_16_NewLeaderAckWaitsForCurrentEpoch) {
  Ensemble e = learner_n2(DurableImage{}, Epoch{0});
  ByteBuffer info;
  core::encode_int32_packet(PacketType::leaderinfo, z(1, 0), 0x10000, info);
  e.fake_send(1, 2, info);
  e.settle();
  ASSERT_EQ(e.received(1, PacketType::ackepoch).size(), 1u);
  e.hold_disk(2);
  e.fake_packet(1, 2, PacketType::diff, z(0, 0));
  e.fake_packet(1, 2, PacketType::newleader, z(1, 0));
  e.settle();
  EXPECT_EQ(e.node(2).current_epoch(), Epoch{1});  // issued...
  EXPECT_EQ(e.disk(2).current, Epoch{0});          // ...not yet durable
  EXPECT_TRUE(e.received(1, PacketType::ack).empty());
  e.complete_disk(2);
  e.settle();
  const auto ack = e.received(1, PacketType::ack);
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0].zxid, z(1, 0));
  EXPECT_EQ(e.disk(2).current, Epoch{1});
}

TEST(EpochPersistence, S7_17_Zab1_0Test_testInitialAcceptedCurrent_EpochsMatchingTheLog) {
  // ZooKeeper creates missing epoch files from the last logged zxid; in fastzab the host does
  // that and the core checks the result (reference §4.1): epochs 3 with a log ending at 3:3
  // start and vote (3, 3:3); a log tail above currentEpoch is dropped by recovery; a
  // currentEpoch above acceptedEpoch is refused.
  const std::vector<Entry> log{{z(3, 1), "a"}, {z(3, 2), "b"}, {z(3, 3), "c"}};
  {
    // Alone in a cluster of three, n1 keeps its first vote (a lone voter of a one-member
    // cluster decides at its first step).
    Ensemble e(Spec::majority(3));
    e.disk(1) = DurableImage::with(3, 3, log, z(3, 3));
    e.start(1);
    e.tick();
    EXPECT_EQ(e.state(1), PeerState::looking);
    EXPECT_EQ(e.node(1).vote().peer_epoch, Epoch{3});
    EXPECT_EQ(e.node(1).vote().zxid, z(3, 3));
  }
  {
    Ensemble e(Spec::majority(1));
    e.disk(1) = DurableImage::with(3, 3, log, z(3, 3));
    e.start(1);
    ASSERT_TRUE(e.up(1));
    EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{3});
    EXPECT_EQ(e.node(1).current_epoch(), Epoch{3});
    ASSERT_EQ(e.elect(), std::optional<Sid>(1));
    EXPECT_EQ(e.node(1).current_epoch(), Epoch{4});
    EXPECT_EQ(e.values(1), (std::vector<std::string>{"a", "b", "c"}));
  }
  {
    // Log entries of an epoch above currentEpoch were never acknowledged (currentEpoch is written
    // before any ACK of them): the host's recovery rule drops them before the node starts.
    Ensemble e(Spec::majority(1));
    e.disk(1) = DurableImage::with(3, 2, {{z(2, 1), "a"}, {z(3, 1), "b"}, {z(3, 2), "c"}}, z(2, 1));
    e.start(1);
    ASSERT_TRUE(e.up(1));
    EXPECT_TRUE(e.transcript().contains("n1 recovery truncate 2:1"));
    EXPECT_EQ(e.node(1).last_logged(), z(2, 1));
    EXPECT_FALSE(e.disk(1).logs(z(3, 1)));
    EXPECT_EQ(e.node(1).current_epoch(), Epoch{2});
  }
  {
    Ensemble e(Spec::majority(1));
    e.disk(1) = DurableImage::with(2, 3, log, z(3, 3));  // currentEpoch > acceptedEpoch
    e.start(1);
    EXPECT_FALSE(e.up(1));
  }
}

}  // namespace
}  // namespace fastzab::test
