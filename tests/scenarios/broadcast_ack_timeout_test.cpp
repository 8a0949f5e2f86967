// §4.5 per-learner transaction timeout (reference §7 item 28, Zab1_0Test.testTxnTimeout;
// SyncLimitCheck LH:153-203): a learner that answers pings but never acks a proposal is dropped
// after about syncLimit ticks; the rest of the ensemble is not disturbed.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

// n1 and n2 real (n2 leads), n3 a fake follower that completed synchronization.
Ensemble with_fake_follower() {
  Spec spec = Spec::majority(3);
  spec.fake({3});
  Ensemble e(spec);
  e.start(1);
  e.start(2);
  EXPECT_EQ(e.elect(), std::optional<Sid>(2));
  e.fake_follow(3, 2, Epoch{1}, z(0, 0), -1, z(0, 0));  // already promised epoch 1
  EXPECT_EQ(e.received(3, PacketType::uptodate).size(), 1u) << e.transcript().dump();
  e.fake_answers_pings(3);
  return e;
}

TEST(BroadcastAckTimeout, S7_28_Zab1_0Test_testTxnTimeout) {
  Ensemble e = with_fake_follower();
  e.auto_reconnect = false;
  e.tick(3 * e.config(2).sync_limit_ticks);  // pings alone keep it in
  EXPECT_EQ(e.node(2).counters().learners_dropped, 0u);
  e.propose(2, {"x"});
  e.settle();
  EXPECT_EQ(e.received(3, PacketType::proposal).size(), 1u);
  EXPECT_EQ(e.values(2), std::vector<std::string>{"x"});  // n1's ack made the quorum
  int waited = 0;
  while (waited < 100 && e.connected(2, 3)) {
    e.tick();
    ++waited;
  }
  EXPECT_FALSE(e.connected(2, 3));
  EXPECT_EQ(e.node(2).counters().learners_dropped, 1u);
  EXPECT_GT(waited, e.config(2).sync_limit_ticks - 1);
  EXPECT_LE(waited, e.config(2).sync_limit_ticks + 1);
  // The leader and the acking follower carry on.
  EXPECT_EQ(e.leader(), std::optional<Sid>(2));
  e.commit(2, {"y"});
  EXPECT_EQ(e.values(1), (std::vector<std::string>{"x", "y"}));
}

TEST(BroadcastAckTimeout, S7_28_LearnerThatAcksIsNeverDropped) {
  Ensemble e = with_fake_follower();
  for (int i = 0; i < 5; ++i) {
    e.propose(2, {"v" + std::to_string(i)});
    e.settle();
    for (const Heard& h : e.take(3)) {
      if (h.is(PacketType::proposal)) e.fake_packet(3, 2, PacketType::ack, h.zxid);
    }
    e.tick(e.config(2).sync_limit_ticks / 2);
  }
  e.tick(3 * e.config(2).sync_limit_ticks);
  EXPECT_EQ(e.node(2).counters().learners_dropped, 0u);
  EXPECT_TRUE(e.connected(2, 3));
}

TEST(BroadcastAckTimeout, S7_28_SilentLearnerIsDroppedAfterSyncLimit) {
  // No pings answered, nothing sent: dropped for silence after syncLimit ticks.
  Ensemble e = with_fake_follower();
  e.fake_answers_pings(3, false);
  e.auto_reconnect = false;
  int waited = 0;
  while (waited < 100 && e.connected(2, 3)) {
    e.tick();
    ++waited;
  }
  EXPECT_EQ(e.node(2).counters().learners_dropped, 1u);
  EXPECT_LE(waited, e.config(2).sync_limit_ticks + 1);
  EXPECT_EQ(e.leader(), std::optional<Sid>(2));
}

}  // namespace
}  // namespace fastzab::test
