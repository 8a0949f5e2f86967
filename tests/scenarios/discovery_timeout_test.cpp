// §4.3 discovery deadlines (reference §7 items 14 and 15; Zab1_0Test
// testLeaderInConnectingFollowers / testLeaderInElectingFollowers / testAbandonBeforeACKEpoch,
// ZOOKEEPER-1191/1192). Every wait of discovery ends after initLimit ticks; an abandoned
// discovery changes no currentEpoch.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

TEST(DiscoveryTimeout, S7_14_Zab1_0Test_testLeaderInConnectingFollowers) {
  // n1 and n2 elect n3 (fake, voting for itself) and send it FOLLOWERINFO. n3 never leads: the
  // learners give up after initLimit ticks without promising anything. When n3 later runs for
  // real, the epoch it proposes is still acceptedEpoch + 1: the abandoned hellos left no trace.
  // (In fastzab the leader contributes its own acceptedEpoch the moment it starts leading, so
  // "the leader has not contributed yet" is the leader not running at all.)
  Spec spec = Spec::majority(3);
  spec.fake({3});
  Ensemble e(spec);
  e.start(1);
  e.start(2);
  for (Sid to : {1, 2}) e.fake_notify(3, to, PeerState::looking, 3, z(0, 0), 1, Epoch{0});
  e.settle();
  ASSERT_TRUE(e.run_until([&] {
    return e.state(1) == PeerState::following && e.state(2) == PeerState::following;
  }, 10)) << e.transcript().dump();
  EXPECT_FALSE(e.received(3, PacketType::followerinfo).empty());
  // Once they give n3 up, n1 and n2 may elect each other within the same tick (their election
  // settles at once: n3, whose sessions they closed, cannot send a better vote), so what is
  // watched is who they follow, and the first promise written is to that leader.
  const auto follow_n3 = [&](Sid s) { return e.node(s).leader() == ServerId{3}; };
  int waited = 0;
  while (waited < 100 && (follow_n3(1) || follow_n3(2))) {
    e.tick();
    ++waited;
  }
  const int limit = e.config(1).init_limit_ticks;
  EXPECT_GE(waited, limit);
  EXPECT_LE(waited, limit + 2) << e.transcript().dump();
  const std::size_t gave_up = e.transcript().find("n1 LOOKING", 2);
  EXPECT_EQ(e.transcript().find("epochs a1"), e.transcript().find("epochs a1", gave_up))
      << "nothing was promised before giving n3 up\n" << e.transcript().dump();

  e.start(3);  // the fake becomes a real server
  const auto leader = e.elect();
  ASSERT_TRUE(leader.has_value()) << e.transcript().dump();
  EXPECT_EQ(e.node(*leader).current_epoch(), Epoch{1});
}

TEST(DiscoveryTimeout, S7_14_Zab1_0Test_testLeaderInElectingFollowers) {
  // The leader runs, but its followers are still electing: it waits at most initLimit ticks for
  // a quorum of FOLLOWERINFO, then gives up leadership without having chosen an epoch.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2, 3});
  ASSERT_EQ(e.state(1), PeerState::leading);
  int waited = 0;
  while (waited < 100 && e.state(1) == PeerState::leading) {
    e.tick();
    ++waited;
  }
  EXPECT_EQ(waited, e.config(1).init_limit_ticks + 1);
  EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{0});
  EXPECT_FALSE(e.transcript().contains("n1 epochs"));
}

TEST(DiscoveryTimeout, S7_15_Zab1_0Test_testAbandonBeforeACKEpoch_ZOOKEEPER_1192) {
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2, 3});
  ASSERT_EQ(e.state(1), PeerState::leading);
  e.fake_answers_pings(2);  // alive, but never sends ACKEPOCH
  e.fake_followerinfo(2, 1, Epoch{0});
  e.settle();
  ASSERT_EQ(e.received(2, PacketType::leaderinfo).size(), 1u);
  int waited = 0;
  while (waited < 100 && e.state(1) == PeerState::leading) {
    e.tick();
    ++waited;
  }
  EXPECT_LE(waited, e.config(1).init_limit_ticks + 1);
  EXPECT_EQ(e.state(1), PeerState::looking);
  // The epoch was promised (acceptedEpoch 1) but never became current.
  EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{1});
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{0});
  EXPECT_EQ(e.disk(1).current, Epoch{0});
  EXPECT_FALSE(e.transcript().contains("n1 epochs a1 c1"));
  EXPECT_TRUE(e.received(2, PacketType::newleader).empty());
  EXPECT_TRUE(e.received(2, PacketType::diff).empty());
}

TEST(DiscoveryTimeout, S7_15_AbandonBeforeNewLeaderAck_LeaderKeepsNoEstablishment) {
  // Same deadline one step later: ACKEPOCH came, ACK(NEWLEADER) never does. The epoch became
  // current (it had a quorum of promises) but the leader never establishes or commits.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.disk(1) = DurableImage::with(1, 1, {{z(1, 1), "a"}, {z(1, 2), "uncommitted"}}, z(1, 1));
  e.start(1);
  e.fakes_elect(1, {2, 3});
  e.fake_answers_pings(2);
  e.fake_followerinfo(2, 1, Epoch{1});
  e.settle();
  e.fake_ackepoch(2, 1, z(1, 1), 1, z(1, 1));
  e.settle();
  ASSERT_EQ(e.received(2, PacketType::newleader).size(), 1u);
  EXPECT_EQ(e.node(1).phase(), ZabPhase::synchronization);
  ASSERT_TRUE(e.run_until([&] { return e.state(1) == PeerState::looking; }, 30));
  EXPECT_EQ(e.values(1), std::vector<std::string>{"a"});  // 1:2 was never committed
  EXPECT_FALSE(e.transcript().contains("established"));
}

}  // namespace
}  // namespace fastzab::test
