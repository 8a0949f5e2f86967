// §4.5 tryToCommit and §6.2 quorum systems, end to end (reference §7 items 35 and 36;
// QuorumMajorityTest, HierarchicalQuorumTest; I7). A real leader, fake followers that ack when
// the test says so: a proposal commits exactly when the acking set (leader included) is a quorum
// of voters; observers and members outside the synced set never count.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

// Discovery and synchronization of every fake in `learners` (participants and observers)
// against real leader n1, stepping them together so the epoch quorums form.
void join_all(Ensemble& e, const std::vector<Sid>& participants, const std::vector<Sid>& observers) {
  for (Sid f : participants) e.fake_followerinfo(f, 1, Epoch{0});
  for (Sid f : observers) e.fake_followerinfo(f, 1, Epoch{0}, PacketType::observerinfo);
  e.settle();
  for (Sid f : participants) e.fake_ackepoch(f, 1, z(0, 0), 0, z(0, 0));
  for (Sid f : observers) e.fake_ackepoch(f, 1, z(0, 0), 0, z(0, 0));
  e.settle();
  for (Sid f : participants) e.fake_packet(f, 1, PacketType::ack, z(1, 0));
  for (Sid f : observers) e.fake_packet(f, 1, PacketType::ack, z(1, 0));
  e.settle();
  for (Sid f : participants) e.fake_answers_pings(f);
  for (Sid f : observers) e.fake_answers_pings(f);
}

bool commit_sent(const Ensemble& e, Sid to, Zxid zxid) {
  for (const Heard& h : e.received(to, PacketType::commit)) {
    if (h.zxid == zxid) return true;
  }
  return false;
}

TEST(QuorumAck, S7_35_QuorumMajorityTest_AckTrackingOverFiveVoters) {
  Spec spec = Spec::majority(5, 1);
  spec.fake({2, 3, 4, 5, 6});
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2, 3});
  join_all(e, {2, 3, 4}, {6});  // n5 never joins
  ASSERT_EQ(e.node(1).phase(), ZabPhase::broadcast) << e.transcript().dump();
  e.propose(1, {"x"});
  e.settle();  // the leader's own ack: its log is durable

  e.fake_packet(2, 1, PacketType::ack, z(1, 1));  // 2 acks: {1, 2}
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(0, 0));
  EXPECT_FALSE(commit_sent(e, 2, z(1, 1)));

  e.fake_packet(6, 1, PacketType::ack, z(1, 1));  // an observer: never counts
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(0, 0));

  e.fake_packet(5, 1, PacketType::ack, z(1, 1));  // a voter outside the synced view
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(0, 0));
  EXPECT_EQ(e.node(1).counters().learners_dropped, 1u);

  e.fake_packet(3, 1, PacketType::ack, z(1, 1));  // 3 acks: {1, 2, 3}
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(1, 1));
  for (Sid f : {2, 3, 4}) EXPECT_TRUE(commit_sent(e, f, z(1, 1))) << f;
  ASSERT_EQ(e.received(6, PacketType::inform).size(), 1u);
  EXPECT_EQ(e.values(1), std::vector<std::string>{"x"});
}

TEST(QuorumAck, S7_35_QuorumMajorityTest_LeadersOwnAckNeedsItsDisk) {
  // The leader counts itself only once its own log is durable (I4).
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2, 3});
  join_all(e, {2, 3}, {});
  ASSERT_EQ(e.node(1).phase(), ZabPhase::broadcast);
  e.hold_disk(1);
  e.propose(1, {"x"});
  e.settle();
  e.fake_packet(2, 1, PacketType::ack, z(1, 1));
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(0, 0));  // {2} alone
  e.complete_disk(1);
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(1, 1));  // {1, 2}
}

TEST(QuorumAck, S7_35_QuorumMajorityTest_CommitsInZxidOrderWithCumulativeAcks) {
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2, 3});
  join_all(e, {2, 3}, {});
  e.propose(1, {"a"});
  e.propose(1, {"b"});
  e.propose(1, {"c"});
  e.settle();
  e.fake_packet(3, 1, PacketType::ack, z(1, 3));  // acks are cumulative: covers 1:1..1:3
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(1, 3));
  EXPECT_EQ(e.values(1), (std::vector<std::string>{"a", "b", "c"}));
}

Spec nine_hierarchical() {
  return Spec::hierarchical({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}});
}

TEST(QuorumAck, S7_36_HierarchicalQuorumTest_AckTrackingByGroups) {
  // Groups A {1,2,3}, B {4,5,6}, C {7,8,9}: a quorum is two groups each with two members.
  Spec spec = nine_hierarchical();
  for (Sid s = 2; s <= 9; ++s) spec.fakes.insert(s);
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2, 4, 5});
  ASSERT_EQ(e.state(1), PeerState::leading) << e.transcript().dump();
  join_all(e, {2, 3, 4, 5, 6, 7, 8, 9}, {});
  ASSERT_EQ(e.node(1).phase(), ZabPhase::broadcast) << e.transcript().dump();
  e.propose(1, {"x"});
  e.settle();
  // {1, 2} cover A; 4 alone does not cover B; 7 alone does not cover C: one group, no quorum.
  for (Sid f : {2, 4, 7}) {
    e.fake_packet(f, 1, PacketType::ack, z(1, 1));
    e.settle();
    EXPECT_EQ(e.node(1).committed(), z(0, 0)) << "after the ack of n" << f;
  }
  // 8 completes C: five acks {1, 2, 4, 7, 8} cover A and C.
  e.fake_packet(8, 1, PacketType::ack, z(1, 1));
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(1, 1));
}

TEST(QuorumAck, S7_36_HierarchicalQuorumTest_FiveAcksSpreadThinAreNoQuorum) {
  Spec spec = nine_hierarchical();
  for (Sid s = 2; s <= 9; ++s) spec.fakes.insert(s);
  Ensemble e(spec);
  e.start(1);
  e.fakes_elect(1, {2, 4, 5});
  join_all(e, {2, 3, 4, 5, 6, 7, 8, 9}, {});
  e.propose(1, {"x"});
  e.settle();
  // {1} of A, {4} of B, {7} of C: no group covered.
  for (Sid f : {4, 7}) e.fake_packet(f, 1, PacketType::ack, z(1, 1));
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(0, 0));
  e.fake_packet(5, 1, PacketType::ack, z(1, 1));  // B covered; A is not: {1} only
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(0, 0));
  e.fake_packet(3, 1, PacketType::ack, z(1, 1));  // A covered: A and B
  e.settle();
  EXPECT_EQ(e.node(1).committed(), z(1, 1));
}

TEST(QuorumAck, S7_36_HierarchicalQuorumTest_EndToEnd) {
  // Nine real servers in three groups: a leader survives losing one member per group and then a
  // whole group, but not a second group.
  Ensemble e(nine_hierarchical());
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(9));
  std::vector<std::string> written{"all"};
  e.propose(9, {"all"});
  e.settle();
  for (Sid s : {1, 4, 7}) e.crash(s);  // one per group
  e.tick(e.config(9).sync_limit_ticks + 2);
  ASSERT_EQ(e.leader(), std::optional<Sid>(9));
  e.propose(9, {"one-per-group-down"});
  written.push_back("one-per-group-down");
  e.settle();
  e.tick(2);
  EXPECT_EQ(e.values(2), written);
  e.crash(8);  // group C lost entirely: A and B still cover
  const auto leader = e.elect();
  ASSERT_TRUE(leader.has_value()) << e.transcript().dump();
  e.propose(*leader, {"group-c-down"});
  written.push_back("group-c-down");
  e.settle();
  e.tick(2);
  for (Sid s : {2, 3, 5, 6}) EXPECT_EQ(e.values(s), written) << s;
  e.crash(5);  // B lost too: one group of three is no quorum
  e.tick(e.config(*leader).sync_limit_ticks + 2);
  e.tick(100);
  EXPECT_FALSE(e.leader().has_value());
  EXPECT_TRUE(e.consistent());
}

TEST(QuorumAck, S7_36_HierarchicalQuorumTest_WeightsDecideGroupCoverage) {
  // Group A = {1 (weight 3), 2, 3}: n1 alone holds more than half of A's weight (3 of 5).
  Ensemble e(Spec::hierarchical({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, {{1, 3}}));
  ASSERT_TRUE(e.start_and_elect().has_value());
  for (Sid s : {2, 3, 7, 8, 9}) e.crash(s);  // A = {1}, B = {4,5,6}
  const auto leader = e.elect();
  ASSERT_TRUE(leader.has_value()) << e.transcript().dump();
  e.commit(*leader, {"weighted"});
  for (Sid s : {1, 4, 5, 6}) EXPECT_EQ(e.values(s), std::vector<std::string>{"weighted"}) << s;
  e.crash(1);  // without n1's weight, A is uncovered: no quorum
  e.tick(100);
  EXPECT_FALSE(e.leader().has_value());
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
