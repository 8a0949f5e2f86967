// The election shortcut (issue 9; election.cpp settle_early): a LOOKING voter whose vote a
// quorum shares decides at once, without the finalize wait, when every voter it has a session
// with already agrees: only a connected voter could still bring a better vote. Otherwise it
// waits the finalize wait as ZooKeeper does.
#include <gtest/gtest.h>

#include "tests/scenarios/harness.h"

namespace fastzab::scenario {
namespace {

TEST(ElectionSettle, AfterALeaderCrashTheSurvivorsDecideWithoutATick) {
  Ensemble e(Spec::majority(3));
  e.start_all();
  const auto leader = e.elect();
  ASSERT_TRUE(leader.has_value());
  e.propose(*leader, {"a", "b"});
  e.settle();
  e.crash(*leader);
  e.settle();  // session downs, notifications, discovery, sync: no tick at all
  const auto next = e.leader();
  ASSERT_TRUE(next.has_value()) << e.transcript().dump();
  EXPECT_NE(*next, *leader);
  for (Sid s : {1, 2, 3}) {
    if (s == *leader) continue;
    EXPECT_TRUE(e.serving(s)) << s;
    EXPECT_GE(e.node(s).counters().elections_settled_early, 1u) << s;
    EXPECT_EQ(e.values(s), (std::vector<std::string>{"a", "b"})) << s;
  }
  EXPECT_TRUE(e.consistent());
}

TEST(ElectionSettle, AConnectedVoterThatHasNotVotedHoldsTheFinalizeWait) {
  // n1 and fake n2 agree on n3; fake n3 is connected but silent. n3 could still send a better
  // vote, so n1 waits the whole finalize wait.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(2, 1, PeerState::looking, 3, z(0, 0), 1, Epoch{0});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::looking);
  EXPECT_EQ(e.node(1).counters().elections_settled_early, 0u);
  // Once n3 also agrees, nothing better can come: decided at once.
  e.fake_notify(3, 1, PeerState::looking, 3, z(0, 0), 1, Epoch{0});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::following) << e.transcript().dump();
  EXPECT_EQ(e.node(1).counters().elections_settled_early, 1u);
}

TEST(ElectionSettle, TheSilentVoterLeavingSettlesIt) {
  // As above, but n3's session goes down instead: it can no longer speak, so the finalize wait
  // is cut short by its leaving.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.auto_reconnect = false;
  e.start(1);
  e.fake_notify(2, 1, PeerState::looking, 2, z(0, 0), 1, Epoch{0});
  e.settle();
  ASSERT_EQ(e.state(1), PeerState::looking);
  e.disconnect(1, 3);
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::following) << e.transcript().dump();
  EXPECT_EQ(e.node(1).leader(), ServerId{2});
}

TEST(ElectionSettle, ABetterVoteFromAConnectedVoterStillWins) {
  // n1 and n2 agree on n2 while n3 (connected) has a longer log: its vote arrives and wins, as
  // without the shortcut.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(2, 1, PeerState::looking, 2, z(0, 0), 1, Epoch{0});
  e.fake_notify(3, 1, PeerState::looking, 3, z(0, 5), 1, Epoch{0});
  e.settle();
  EXPECT_EQ(e.node(1).vote().leader, ServerId{3});
}

}  // namespace
}  // namespace fastzab::scenario
