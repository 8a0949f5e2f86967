// §2.5 checkLeader when the winner is me (reference §7 item 5, FLEBackwardElectionRoundTest,
// ZOOKEEPER-1514): FOLLOWING votes for me count only if they were cast in my current round. Two
// fake peers replay "FOLLOWING, leader n1" from round 1: the first time n1 may lead; once it runs
// a newer round, the same stale messages must not end the election.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

TEST(FleBackwardRound, S7_5_FLEBackwardElectionRoundTest_ZOOKEEPER_1514) {
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  ASSERT_EQ(e.node(1).round(), 1);
  auto replay_stale_votes = [&] {
    for (Sid fake : {2, 3}) e.fake_notify(fake, 1, PeerState::following, 1, z(0, 0), 1, Epoch{0});
    e.settle();
  };

  // Round 1: the FOLLOWING votes are of n1's own round; n1 may become leader.
  replay_stale_votes();
  EXPECT_EQ(e.state(1), PeerState::leading) << e.transcript().dump();

  // Nobody actually follows: after initLimit ticks it gives up and starts round 2.
  ASSERT_TRUE(e.run_until([&] { return e.state(1) == PeerState::looking; }, 30));
  EXPECT_EQ(e.node(1).round(), 2);

  // The same round-1 messages again: a quorum of FOLLOWING votes for n1, but from an older round.
  replay_stale_votes();
  e.tick(40);
  replay_stale_votes();
  EXPECT_EQ(e.state(1), PeerState::looking) << e.transcript().dump();
  EXPECT_EQ(e.transcript().count("n1 LEADING"), 1u);
}

TEST(FleBackwardRound, S7_5_FLEBackwardElectionRoundTest_CurrentRoundVotesStillElect) {
  // The rule is about the round, not about FOLLOWING votes as such: the same votes cast in n1's
  // current round do elect it.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(2, 1, PeerState::following, 1, z(0, 0), 1, Epoch{0});
  e.fake_notify(3, 1, PeerState::following, 1, z(0, 0), 1, Epoch{0});
  e.settle();
  ASSERT_TRUE(e.run_until([&] { return e.state(1) == PeerState::looking; }, 30));
  const std::int64_t round = e.node(1).round();
  ASSERT_GT(round, 1);
  e.fake_notify(2, 1, PeerState::following, 1, z(0, 0), round, Epoch{0});
  e.fake_notify(3, 1, PeerState::following, 1, z(0, 0), round, Epoch{0});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::leading) << e.transcript().dump();
}

}  // namespace
}  // namespace fastzab::test
