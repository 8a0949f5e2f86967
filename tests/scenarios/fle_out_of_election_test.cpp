// §2.5 handle_established and §2.8 vote equality (reference §7 item 7, FLEOutOfElectionTest;
// ZOOKEEPER-1732, ZOOKEEPER-3537). Which votes count together toward a quorum:
//  * FOLLOWING/LEADING votes for the same leader and peerEpoch agree, whatever zxid and round;
//  * LOOKING votes agree only when cast in the same round;
//  * one legacy (version 0) and one current vote compare by leader only;
//  * following someone needs that leader's own LEADING vote (checkLeader).
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

TEST(FleOutOfElection, S7_7_FLEOutOfElectionTest_EstablishedVotesAgreeByLeaderAndEpoch) {
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(3, 1, PeerState::following, 2, z(1, 9), 3, Epoch{1});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::looking);  // one vote, no quorum
  e.fake_notify(2, 1, PeerState::leading, 2, z(1, 5), 7, Epoch{1});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::following) << e.transcript().dump();
  EXPECT_EQ(e.node(1).leader(), ServerId{2});
  EXPECT_EQ(e.node(1).round(), 7);  // joined through the out-of-election quorum: its round
  EXPECT_EQ(e.received(2, PacketType::followerinfo).size(), 1u);
}

TEST(FleOutOfElection, S7_7_FLEOutOfElectionTest_DifferentPeerEpochsDoNotAgree) {
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(3, 1, PeerState::following, 2, z(1, 9), 3, Epoch{1});
  e.fake_notify(2, 1, PeerState::leading, 2, z(2, 0), 7, Epoch{2});
  e.settle();
  e.tick(20);
  EXPECT_EQ(e.state(1), PeerState::looking) << e.transcript().dump();
}

TEST(FleOutOfElection, S7_7_FLEOutOfElectionTest_LookingVotesOfDifferentRoundsDoNotAgree) {
  Spec spec = Spec::majority(5);
  spec.fake({2, 3, 4, 5});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(2, 1, PeerState::looking, 5, z(0, 0), 5, Epoch{0});
  e.settle();
  EXPECT_EQ(e.node(1).round(), 5);
  EXPECT_EQ(e.node(1).vote().leader, ServerId{5});
  e.fake_notify(3, 1, PeerState::looking, 5, z(0, 0), 6, Epoch{0});
  e.settle();
  EXPECT_EQ(e.node(1).round(), 6);
  // n1 and n3 agree in round 6; n2's vote of round 5 was dropped with the round, and repeating
  // it changes nothing: three equal votes of different rounds are no quorum.
  e.fake_notify(2, 1, PeerState::looking, 5, z(0, 0), 5, Epoch{0});
  e.settle();
  e.tick(30);
  EXPECT_EQ(e.state(1), PeerState::looking);
  // A third vote of round 6 makes the quorum; n1 follows n5 after the finalize wait.
  e.fake_notify(4, 1, PeerState::looking, 5, z(0, 0), 6, Epoch{0});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::looking);  // finalize wait
  e.tick(e.config(1).finalize_wait_ticks);
  EXPECT_EQ(e.state(1), PeerState::following) << e.transcript().dump();
  EXPECT_EQ(e.node(1).leader(), ServerId{5});
}

TEST(FleOutOfElection, S7_7_FLEOutOfElectionTest_CheckLeaderNeedsTheLeadersOwnLeadingVote) {
  Spec spec = Spec::majority(5);
  spec.fake({2, 3, 4, 5});
  Ensemble e(spec);
  e.start(1);
  for (Sid f : {2, 3, 4}) e.fake_notify(f, 1, PeerState::following, 5, z(1, 3), 4, Epoch{1});
  e.settle();
  e.tick(30);
  // A quorum says "n5 leads", but n5 itself never said so: it may have crashed.
  EXPECT_EQ(e.state(1), PeerState::looking);
  e.fake_notify(5, 1, PeerState::leading, 5, z(1, 3), 4, Epoch{1});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::following) << e.transcript().dump();
  EXPECT_EQ(e.node(1).leader(), ServerId{5});
}

TEST(FleOutOfElection, S7_7_CheckLeaderNeedsTheLeadersVoteToSayLeading) {
  // The leader's own vote is there but does not say LEADING (it is no longer leading): a quorum
  // of FOLLOWING votes for it must not be enough (checkLeader tests the state, not presence).
  Spec spec = Spec::majority(5);
  spec.fake({2, 3, 4, 5});
  Ensemble e(spec);
  e.start(1);
  for (Sid f : {2, 3, 4, 5}) e.fake_notify(f, 1, PeerState::following, 5, z(1, 3), 4, Epoch{1});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::looking) << e.transcript().dump();
  e.tick(30);
  EXPECT_EQ(e.transcript().count("n1 FOLLOWING"), 0u) << e.transcript().dump();
}

TEST(FleOutOfElection, S7_7_FLEOutOfElectionTest_LeaderAloneIsNotAQuorum) {
  Spec spec = Spec::majority(5);
  spec.fake({2, 3, 4, 5});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(5, 1, PeerState::leading, 5, z(1, 3), 4, Epoch{1});
  e.fake_notify(4, 1, PeerState::following, 5, z(1, 3), 4, Epoch{1});
  e.settle();
  e.tick(30);
  EXPECT_EQ(e.state(1), PeerState::looking);
  e.fake_notify(3, 1, PeerState::following, 5, z(1, 2), 2, Epoch{1});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::following);
}

TEST(FleOutOfElection, S7_7_FLEOutOfElectionTest_MixedFormatVersionsCompareByLeaderOnly) {
  // Reference §2.8 (Vote.equals): when exactly one of two FOLLOWING/LEADING votes has format
  // version 0, only the leader ids are compared. A 3.4-era follower (40-byte notification) that
  // still reports an older peerEpoch agrees with the leader's own vote.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(2, 1, PeerState::leading, 2, z(1, 5), 7, Epoch{1});
  e.fake_notify(3, 1, PeerState::following, 2, z(1, 5), 7, Epoch{0}, /*version=*/0);
  e.settle();
  if (e.state(1) == PeerState::looking) {
    FAIL() << "regression of a fixed core bug: election.cpp same_vote() compares (leader, peerEpoch) for two "
                    "established votes regardless of format version; reference §2.8 compares "
                    "only the leader when exactly one vote is version 0 (RecordedVote does not "
                    "keep the version)";
  }
  EXPECT_EQ(e.state(1), PeerState::following);
  EXPECT_EQ(e.node(1).leader(), ServerId{2});
}

TEST(FleOutOfElection, S7_7_FLEOutOfElectionTest_ObserverVotesNeverCount) {
  // Observers relay nothing into a quorum: two observers' FOLLOWING votes are ignored.
  Spec spec = Spec::majority(3, 2);
  spec.fake({2, 3, 4, 5});
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(2, 1, PeerState::leading, 2, z(1, 5), 7, Epoch{1});
  e.fake_notify(4, 1, PeerState::following, 2, z(1, 5), 7, Epoch{1});
  e.fake_notify(5, 1, PeerState::following, 2, z(1, 5), 7, Epoch{1});
  e.settle();
  e.tick(20);
  EXPECT_EQ(e.state(1), PeerState::looking);
  e.fake_notify(3, 1, PeerState::following, 2, z(1, 5), 7, Epoch{1});
  e.settle();
  EXPECT_EQ(e.state(1), PeerState::following);
}

TEST(FleOutOfElection, I12_ZOOKEEPER_261_VotesWithLostStateAreIgnored) {
  // Reference §2.5 handle_looking step 1: a LOOKING vote carrying zxid -1 (unknown or lost
  // state) takes no part in the election.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  for (Sid f : {2, 3}) e.fake_notify(f, 1, PeerState::looking, 1, core::kLostZxid, 1, Epoch{0});
  e.settle();
  e.tick(20);
  EXPECT_EQ(e.state(1), PeerState::looking);
  EXPECT_GE(e.node(1).counters().ignored_notifications, 2u);
  e.fakes_elect(1, {2, 3});
  EXPECT_EQ(e.state(1), PeerState::leading);
}

}  // namespace
}  // namespace fastzab::test
