// §2.5 election termination under repeated leader loss (reference §7 item 2, FLETest
// testSingleElection / testDoubleElection / testTripleElection). Seven peers start together; in
// each round the elected leader is killed. Every round must end with one leader that is LEADING,
// every survivor FOLLOWING it, a fresh epoch, and all committed data still there.
#include <gtest/gtest.h>

#include <set>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

void kill_the_leader_rounds(int rounds) {
  Ensemble e(Spec::majority(7));
  e.start_all();
  std::set<Sid> dead;
  std::set<Sid> leaders;
  std::int64_t last_epoch = 0;
  std::vector<std::string> written;
  for (int r = 0; r <= rounds; ++r) {
    SCOPED_TRACE("round " + std::to_string(r));
    const auto leader = e.elect();
    ASSERT_TRUE(leader.has_value()) << e.transcript().dump();
    EXPECT_FALSE(dead.count(*leader));
    EXPECT_TRUE(leaders.insert(*leader).second) << "a killed leader came back";
    EXPECT_EQ(e.state(*leader), PeerState::leading);
    const std::int64_t epoch = e.node(*leader).current_epoch().value;
    EXPECT_GT(epoch, last_epoch);
    last_epoch = epoch;
    for (Sid s = 1; s <= 7; ++s) {
      if (dead.count(s) || s == *leader) continue;
      EXPECT_EQ(e.state(s), PeerState::following) << s;
      EXPECT_EQ(e.node(s).leader(), ServerId{*leader}) << s;
      EXPECT_EQ(e.node(s).current_epoch().value, epoch) << s;
    }
    const std::string value = "round-" + std::to_string(r);
    e.propose(*leader, {value});
    written.push_back(value);
    e.settle();
    e.tick(2);
    for (Sid s = 1; s <= 7; ++s) {
      if (!dead.count(s)) {
        EXPECT_EQ(e.values(s), written) << s;
      }
    }
    if (r < rounds) {
      e.crash(*leader);
      dead.insert(*leader);
    }
  }
  EXPECT_TRUE(e.consistent());
}

TEST(FleLeaderLoss, S7_2_FLETest_testSingleElection) { kill_the_leader_rounds(0); }
TEST(FleLeaderLoss, S7_2_FLETest_testDoubleElection) { kill_the_leader_rounds(1); }
TEST(FleLeaderLoss, S7_2_FLETest_testTripleElection) { kill_the_leader_rounds(2); }
TEST(FleLeaderLoss, S7_2_FLETest_KillUntilOnlyAQuorumRemains) { kill_the_leader_rounds(3); }

TEST(FleLeaderLoss, S7_2_FLETest_NoLeaderOnceTheQuorumIsGone) {
  // Four of seven alive is the last quorum; with three, nobody may lead.
  Ensemble e(Spec::majority(7));
  e.start_all();
  for (int r = 0; r < 4; ++r) {
    const auto leader = e.elect();
    ASSERT_TRUE(leader.has_value());
    e.crash(*leader);
  }
  e.tick(200);
  EXPECT_FALSE(e.leader().has_value());
  for (Sid s = 1; s <= 7; ++s) {
    if (e.up(s)) {
      EXPECT_NE(e.state(s), PeerState::leading) << s;
    }
  }
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
