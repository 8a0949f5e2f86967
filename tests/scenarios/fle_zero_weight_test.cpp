// §2.2 and §6.2: a member with weight 0 in a hierarchical config may vote and relay votes but is
// never elected (reference §7 item 8, FLEZeroWeightTest). Three groups of three; the member with
// the highest sid of each group has weight 0, so equal-state elections would pick it if weight
// were ignored.
#include <gtest/gtest.h>

#include <set>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

Spec nine_in_three_groups() {
  return Spec::hierarchical({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, {{3, 0}, {6, 0}, {9, 0}});
}

TEST(FleZeroWeight, S7_8_FLEZeroWeightTest_ZeroWeightServerIsNeverElected) {
  Ensemble e(nine_in_three_groups());
  const auto leader = e.start_and_elect();
  ASSERT_EQ(leader, std::optional<Sid>(8)) << e.transcript().dump();
  for (Sid zero : {3, 6, 9}) {
    EXPECT_EQ(e.state(zero), PeerState::following) << zero;
    EXPECT_FALSE(e.transcript().contains(e.name(zero) + " LEADING"));
  }
  EXPECT_TRUE(e.consistent());
}

TEST(FleZeroWeight, S7_8_FLEZeroWeightTest_ZeroWeightNeverElectedAcrossLeaderLoss) {
  // Kill the leader while the hierarchical quorum survives: 8, then 7 (group 3 is then lost),
  // then 5 would break group 2. Zero-weight members stay followers throughout.
  Ensemble e(nine_in_three_groups());
  e.start_all();
  std::vector<std::string> written;
  for (Sid expected : {8, 7}) {
    const auto leader = e.elect();
    ASSERT_EQ(leader, std::optional<Sid>(expected)) << e.transcript().dump();
    written.push_back("by-" + std::to_string(expected));
    e.commit(*leader, {written.back()});
    e.crash(*leader);
  }
  // Groups 1 and 2 are whole: a quorum of groups. The best non-zero member left is 5.
  const auto leader = e.elect();
  ASSERT_EQ(leader, std::optional<Sid>(5)) << e.transcript().dump();
  e.propose(5, {"by-5"});
  written.push_back("by-5");
  e.settle();
  e.tick(2);
  for (Sid s : {1, 2, 3, 4, 5, 6, 9}) EXPECT_EQ(e.values(s), written) << s;
  for (Sid zero : {3, 6, 9}) EXPECT_FALSE(e.transcript().contains(e.name(zero) + " LEADING"));
  EXPECT_TRUE(e.consistent());
}

TEST(FleZeroWeight, S7_8_FLEZeroWeightTest_ZeroWeightMembersAloneNeverMakeAQuorum) {
  // With 8 gone, group 3 = {7, 9(w0)} cannot be covered without 7's weight. Leave alive only
  // group 1 and the zero-weight members: one covered group of three is no quorum.
  Ensemble e(nine_in_three_groups());
  ASSERT_TRUE(e.start_and_elect().has_value());
  for (Sid s : {4, 5, 7, 8}) e.crash(s);
  e.tick(100);
  EXPECT_FALSE(e.leader().has_value());
  for (Sid s : {1, 2, 3, 6, 9}) EXPECT_NE(e.state(s), PeerState::leading) << s;
}

}  // namespace
}  // namespace fastzab::test
