// The election shortcut (issue 9; election.cpp settle_early): a LOOKING voter whose vote a
// quorum shares decides at once, without the finalize wait, when every voter it has a session
// with already agrees: only a connected voter could still bring a better vote. Otherwise it
// waits the finalize wait as ZooKeeper does.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

TEST(ElectionSettle, AfterALeaderCrashTheSurvivorsDecideWithoutATick) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
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

TEST(ElectionSettle, ASilentLeaderGivenUpSettlesWithoutTheFinalizeWait) {
  // The leader stops (its links hold everything, its sessions stay up). The followers give it up
  // after leader_silence_ticks and close their sessions to it, so it can no longer vote: their
  // election settles as soon as they agree, without the finalize wait.
  //
  // n2 gives up first (a shorter silence limit): its vote reaches n1 while n1 still follows,
  // and n1 answers with its old FOLLOWING vote. When n1 gives up too, its own vote is worse
  // than n2's (equal logs, lower id), so n2 must answer it at once (AWorseVoteOfMyRound...).
  Spec spec = Spec::majority(3);
  spec.tuning.finalize_wait_ticks = 50;
  spec.tuning.notify_min_ticks = 50;
  Ensemble e(spec);
  e.config(2).leader_silence_ticks = 10;
  e.config(1).leader_silence_ticks = 14;
  const auto leader = e.start_and_elect();
  ASSERT_EQ(leader, std::optional<Sid>(3));
  e.auto_reconnect = false;
  e.freeze(*leader);
  std::optional<Sid> next;
  int ticks = 0;
  while (ticks < 200 && !next) {
    e.tick();
    ++ticks;
    for (Sid s : {1, 2, 3}) {
      if (s != *leader && e.state(s) == PeerState::leading && e.serving(s)) next = s;
    }
  }
  ASSERT_TRUE(next.has_value()) << e.transcript().dump();
  // Given up after leader_silence_ticks (+1 for the tick that counts past it); decided in that
  // same tick, not finalize_wait_ticks (50) later.
  EXPECT_LE(ticks, e.config(1).leader_silence_ticks + 2) << e.transcript().dump();
  for (Sid s : {1, 2, 3}) {
    if (s == *leader) continue;
    EXPECT_GE(e.node(s).counters().elections_settled_early, 1u) << s;
  }
}

TEST(ElectionSettle, AWorseVoteOfMyRoundIsAnsweredAtOnce) {
  // n1 (whose log is longer) is LOOKING in round 1. Fake n2 sends its own, worse vote of round
  // 1, as a server does that was FOLLOWING when n1's vote went out. n1 answers with its vote
  // at once; the notification timeout would take the whole finalize wait.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.disk(1) = DurableImage::with(1, 1, {{z(1, 1), "a"}}, z(1, 1));
  e.start(1);
  e.settle();
  e.clear_inbox(2);
  e.fake_notify(2, 1, PeerState::looking, 2, z(0, 0), e.node(1).round(), Epoch{0});
  e.settle();  // no tick
  bool answered = false;
  for (const auto& h : e.inbox(2)) {
    if (h.kind == core::FrameKind::notification && h.leader == 1) answered = true;
  }
  EXPECT_TRUE(answered) << e.transcript().dump();
}

}  // namespace
}  // namespace fastzab::test
