// §6.1 observers never count in any quorum: not for the epoch, not for its acks, not for
// NEWLEADER, not for proposals; they never lead and they cannot keep a leader in office
// (reference §7 items 33 and 34; LeaderWithObserverTest; ObserverLETest, ZOOKEEPER-1294).
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

TEST(Observer, S7_33_LeaderWithObserverTest_ObserverNeverCompletesAQuorum) {
  // 1 leader (n1, real) + 1 participant (n2, fake) + 1 observer (n3, fake).
  Spec spec = Spec::majority(2, 1);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2});
  ASSERT_EQ(e.state(1), PeerState::leading) << e.transcript().dump();

  // getEpochToPropose: the observer's hello (with a high acceptedEpoch) fixes nothing.
  e.fake_followerinfo(3, 1, Epoch{9}, PacketType::observerinfo);
  e.settle();
  EXPECT_TRUE(e.received(3, PacketType::leaderinfo).empty());
  EXPECT_EQ(e.node(1).accepted_epoch(), Epoch{0});
  // The participant arrives: the epoch is acceptedEpoch + 1, not 9 + 1.
  e.fake_followerinfo(2, 1, Epoch{0});
  e.settle();
  for (Sid s : {2, 3}) {
    ASSERT_EQ(e.received(s, PacketType::leaderinfo).size(), 1u) << s;
    EXPECT_EQ(e.received(s, PacketType::leaderinfo)[0].zxid, z(1, 0)) << s;
  }

  // waitForEpochAck: the observer's ACKEPOCH does not make a quorum.
  e.fake_ackepoch(3, 1, z(0, 0), 0, z(0, 0));
  e.settle();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::discovery);
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{0});
  e.fake_ackepoch(2, 1, z(0, 0), 0, z(0, 0));
  e.settle();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::synchronization);
  EXPECT_EQ(e.received(3, PacketType::newleader).size(), 1u);  // synced all the same

  // waitForNewLeaderAck: the observer's ACK does not establish the leader.
  e.fake_packet(3, 1, PacketType::ack, z(1, 0));
  e.settle();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::synchronization);
  e.fake_packet(2, 1, PacketType::ack, z(1, 0));
  e.settle();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::broadcast);
  EXPECT_EQ(e.received(3, PacketType::uptodate).size(), 1u);

  // Broadcast: proposals go to the participant; the observer gets the committed entry as INFORM
  // and its ACKs count for nothing.
  e.propose(1, {"x"});
  e.settle();
  EXPECT_EQ(e.received(2, PacketType::proposal).size(), 1u);
  EXPECT_TRUE(e.received(3, PacketType::proposal).empty());
  e.fake_packet(3, 1, PacketType::ack, z(1, 1));
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(0, 0));
  EXPECT_TRUE(e.received(3, PacketType::inform).empty());
  e.fake_packet(2, 1, PacketType::ack, z(1, 1));
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(1, 1));
  const auto inform = e.received(3, PacketType::inform);
  ASSERT_EQ(inform.size(), 1u);
  EXPECT_EQ(inform[0].zxid, z(1, 1));
  EXPECT_EQ(inform[0].entries(), (std::vector<Entry>{{z(1, 1), "x"}}));
}

constexpr const char* kObserverStorm =
    "regression of a fixed core bug: two LOOKING observers exchange notifications forever. node.cpp on_session_up() "
    "makes a non-voter send its vote to every peer (`is_voter(peer) || !is_voter(self)`), and "
    "election.cpp on_notification() answers every notification from a non-voter with one of its "
    "own, also when it is itself a non-voter, so observer A's reply is a notification that "
    "observer B answers, and so on (ZooKeeper's observers notify only voters). The ensemble "
    "never goes quiet while both are LOOKING";

constexpr const char* kRoundStorm =
    "regression of a fixed core bug: a LOOKING observer whose round is above a LOOKING voter's ping-pongs with it "
    "forever: the voter answers the observer (a non-voter) with its own lower round and never "
    "adopts the observer's round; the observer answers every LOOKING notification of a lower "
    "round (election.cpp on_notification(), `n.round < round` reply) with its own. A voter "
    "restarted (round 1) next to an observer that has been LOOKING (round >= 2) starts it";

TEST(Observer, S7_34_ObserverLETest_ZOOKEEPER_1294_LeaderAndObserverAloneStepDown) {
  // Five servers, two of them observers. Shut down all but the leader and one observer: the
  // leader must go LOOKING.
  Ensemble e(Spec::majority(3, 2));
  e.fail_on_storm = false;
  const auto leader = e.start_and_elect();
  if (e.stormed()) FAIL() << kObserverStorm;
  ASSERT_EQ(leader, std::optional<Sid>(3));
  for (Sid o : {4, 5}) {
    EXPECT_EQ(e.state(o), PeerState::observing) << o;
    EXPECT_EQ(e.node(o).leader(), ServerId{3}) << o;
  }
  for (Sid s : {1, 2, 5}) e.crash(s);
  ASSERT_TRUE(e.run_until([&] { return e.state(3) == PeerState::looking; },
                          e.config(3).sync_limit_ticks + 2));
  e.tick(100);
  EXPECT_FALSE(e.leader().has_value());
  EXPECT_FALSE(e.stormed());
}

TEST(Observer, S7_34_ObserverLETest_OneObserver_LeaderAndObserverAloneStepDown) {
  // The same with three voters and one observer.
  Ensemble e(Spec::majority(3, 1));
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  EXPECT_EQ(e.state(4), PeerState::observing);
  e.commit(3, {"a"});
  EXPECT_EQ(e.values(4), std::vector<std::string>{"a"});
  for (Sid s : {1, 2}) e.crash(s);
  int waited = 0;
  while (waited < 100 && e.state(3) == PeerState::leading) {
    e.tick();
    ++waited;
  }
  EXPECT_LE(waited, e.config(3).sync_limit_ticks + 1);
  e.tick(100);
  EXPECT_FALSE(e.leader().has_value());
  EXPECT_EQ(e.state(3), PeerState::looking);
  EXPECT_EQ(e.state(4), PeerState::looking);
  EXPECT_FALSE(e.transcript().contains("n4 LEADING"));
  EXPECT_TRUE(e.consistent());
}

TEST(Observer, S7_34_LookingObserversDoNotFloodEachOther) {
  Ensemble e(Spec::majority(3, 2));
  e.fail_on_storm = false;
  e.start(4);
  e.start(5);
  e.settle();
  if (e.stormed()) FAIL() << kObserverStorm;
  e.start(1);
  e.start(2);
  e.start(3);
  ASSERT_EQ(e.elect(), std::optional<Sid>(3));
  EXPECT_FALSE(e.stormed());
}

TEST(Observer, S7_34_LookingObserverAndRestartedVoterDoNotPingPong) {
  // n4 (observer) has been LOOKING since its leader went away; voter n1 restarts with round 1.
  Ensemble e(Spec::majority(3, 1));
  e.fail_on_storm = false;
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  for (Sid s : {1, 2, 3}) e.crash(s);
  e.tick(5);
  ASSERT_EQ(e.state(4), PeerState::looking);
  ASSERT_GE(e.node(4).round(), 2);
  e.restart(1);
  e.settle();
  if (e.stormed()) FAIL() << kRoundStorm;
  e.restart(2);
  ASSERT_TRUE(e.elect().has_value());
  EXPECT_EQ(e.state(4), PeerState::observing);
}

TEST(Observer, S7_34_ObserversNeverLeadAndNeverVote) {
  // The observer has the highest sid; it still never leads, and one voter plus the observer
  // elect nobody.
  Ensemble e(Spec::majority(3, 1));
  e.start(1);
  e.start(4);
  e.tick(60);
  EXPECT_FALSE(e.leader().has_value());
  for (Sid s : {1, 4}) EXPECT_EQ(e.state(s), PeerState::looking) << s;
  e.start(2);
  ASSERT_EQ(e.elect(), std::optional<Sid>(2));
  e.commit(2, {"o"});
  for (Sid s : {1, 2, 4}) EXPECT_EQ(e.values(s), std::vector<std::string>{"o"}) << s;
  EXPECT_FALSE(e.transcript().contains("n4 LEADING"));
}

}  // namespace
}  // namespace fastzab::test
