// §2.2 totalOrderPredicate, seen through whole elections (reference §7 item 1, FLEPredicateTest;
// ZOOKEEPER-1419). Votes are ordered by (peerEpoch, zxid, sid), strictly and lexicographically:
// the member with the most recent durable state wins, whatever its server id, and the sid only
// breaks ties. Each test starts the members from different durable states and lets them elect.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

std::vector<Entry> log_of(std::initializer_list<Entry> entries) { return entries; }

TEST(FleVoteOrder, S7_1_FLEPredicate_HigherEpochWinsOverHigherSid) {
  // n1 has currentEpoch 2; n2 and n3 never left epoch 0. Lower sid, higher epoch: n1 wins.
  Ensemble e(Spec::majority(3));
  e.disk(1) = DurableImage::with(2, 2, {}, z(0, 0));
  const auto leader = e.start_and_elect();
  ASSERT_EQ(leader, std::optional<Sid>(1)) << e.transcript().dump();
  EXPECT_EQ(e.node(1).current_epoch(), Epoch{3});  // max acceptedEpoch + 1
  for (Sid s : {2, 3}) {
    EXPECT_EQ(e.state(s), PeerState::following);
    EXPECT_EQ(e.node(s).leader(), ServerId{1});
  }
  EXPECT_FALSE(e.transcript().contains("n3 LEADING"));
  EXPECT_TRUE(e.consistent());
}

TEST(FleVoteOrder, S7_1_FLEPredicate_HigherEpochWinsWithLowerSidAndLowerZxid) {
  // n3 led epoch 1 and logged 1:4 and 1:5 alone; n1 and n2 then formed epoch 2 on 1:1..1:3.
  // n1 (sid 1, zxid 1:3, epoch 2) must beat n3 (sid 3, zxid 1:5, epoch 1).
  const auto committed = log_of({{z(1, 1), "a"}, {z(1, 2), "b"}, {z(1, 3), "c"}});
  auto longer = committed;
  longer.push_back({z(1, 4), "lone-4"});
  longer.push_back({z(1, 5), "lone-5"});
  Ensemble e(Spec::majority(3));
  e.disk(1) = DurableImage::with(2, 2, committed, z(1, 3));
  e.disk(2) = DurableImage::with(2, 2, committed, z(1, 3));
  e.disk(3) = DurableImage::with(1, 1, longer, z(1, 3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value()) << e.transcript().dump();
  EXPECT_NE(*leader, 3);
  EXPECT_EQ(e.node(*leader).current_epoch(), Epoch{3});
  // The loser's tail beyond the winner's history is truncated.
  EXPECT_TRUE(e.transcript().contains("n3 truncate 1:3")) << e.transcript().dump();
  EXPECT_EQ(e.node(3).last_logged(), z(1, 3));
  EXPECT_FALSE(e.disk(3).logs(z(1, 4)));
  EXPECT_TRUE(e.consistent());
}

TEST(FleVoteOrder, S7_1_FLEPredicate_EqualEpochHigherZxidWins) {
  const auto two = log_of({{z(1, 1), "a"}, {z(1, 2), "b"}});
  auto three = two;
  three.push_back({z(1, 3), "c"});
  Ensemble e(Spec::majority(3));
  e.disk(1) = DurableImage::with(1, 1, three, z(1, 2));
  e.disk(2) = DurableImage::with(1, 1, two, z(1, 2));
  e.disk(3) = DurableImage::with(1, 1, two, z(1, 2));
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(1)) << e.transcript().dump();
  // 1:3 is in the new leader's initial history: it is committed everywhere.
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), (std::vector<std::string>{"a", "b", "c"})) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(FleVoteOrder, S7_1_FLEPredicate_EqualEpochAndZxidHigherSidWins) {
  const auto two = log_of({{z(1, 1), "a"}, {z(1, 2), "b"}});
  Ensemble e(Spec::majority(3));
  for (Sid s : {1, 2, 3}) e.disk(s) = DurableImage::with(1, 1, two, z(1, 2));
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3)) << e.transcript().dump();
  EXPECT_EQ(e.transcript().count(" LEADING"), 2u);  // n3 only: "LEADING", then established
  EXPECT_TRUE(e.consistent());
}

TEST(FleVoteOrder, S7_1_FLEPredicate_FiveMixedStatesConvergeOnTheMaximum_ZOOKEEPER_1419) {
  // Mixed (epoch, zxid, sid) across five members, the shape that made a non-transitive
  // comparison cycle forever. The unique maximum (2, 2:1, 4) wins and the election ends.
  const auto epoch1 = log_of({{z(1, 1), "a"}, {z(1, 2), "b"}, {z(1, 3), "c"}});
  auto epoch2 = epoch1;
  epoch2.push_back({z(2, 1), "d"});
  Ensemble e(Spec::majority(5));
  e.disk(1) = DurableImage::with(2, 2, epoch2, z(1, 3));
  e.disk(2) = DurableImage::with(2, 2, epoch1, z(1, 3));
  e.disk(3) = DurableImage::with(1, 1, epoch1, z(1, 3));
  e.disk(4) = DurableImage::with(2, 2, epoch2, z(1, 3));
  e.disk(5) = DurableImage::with(1, 1, log_of({{z(1, 1), "a"}}), z(1, 1));
  e.start_all();
  ASSERT_EQ(e.elect(100), std::optional<Sid>(4)) << e.transcript().dump();
  for (Sid s : {1, 2, 3, 5}) EXPECT_EQ(e.node(s).leader(), ServerId{4}) << s;
  EXPECT_EQ(e.transcript().grep(" LEADING").size(), 2u) << e.transcript().dump();
  e.tick(2);
  for (Sid s : {1, 2, 3, 4, 5}) {
    EXPECT_EQ(e.values(s), (std::vector<std::string>{"a", "b", "c", "d"})) << s;
  }
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
