// Quorum systems (reference §6.2, §7 items 8, 35, 36): majority and hierarchical verifiers,
// config validation, and the leader's commit point quorum_acked_zxid().
#include "engine/core/quorum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace fastzab::core {
namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

Member voter(std::int64_t id) { return Member{ServerId{id}, false, 1, -1}; }
Member observer(std::int64_t id) { return Member{ServerId{id}, true, 1, -1}; }
Member grouped(std::int64_t id, std::int32_t group, std::int64_t weight = 1) {
  return Member{ServerId{id}, false, weight, group};
}

MemberSet set_of(std::initializer_list<std::size_t> indices) {
  MemberSet s;
  for (std::size_t i : indices) s.set(i);
  return s;
}

QuorumVerifier majority_or_die(const std::vector<Member>& members) {
  auto v = QuorumVerifier::majority(members);
  EXPECT_TRUE(v.has_value());
  return *v;
}

QuorumVerifier hierarchical_or_die(const std::vector<Member>& members) {
  auto v = QuorumVerifier::hierarchical(members);
  EXPECT_TRUE(v.has_value()) << (v ? "" : to_string(v.error()));
  return *v;
}

Zxid z(std::int64_t v) { return Zxid{v}; }

// ---------------------------------------------------------------------------------------------
// ConfigError

TEST(ConfigErrorTest, EveryErrorHasADistinctMessage) {
  const ConfigError all[] = {
      ConfigError::empty,           ConfigError::too_many_members,
      ConfigError::duplicate_server_id, ConfigError::no_voters,
      ConfigError::negative_weight, ConfigError::member_without_group,
      ConfigError::observer_in_group, ConfigError::weight_overflow,
  };
  std::set<std::string> seen;
  for (ConfigError e : all) {
    const char* msg = to_string(e);
    ASSERT_NE(msg, nullptr);
    EXPECT_GT(std::strlen(msg), 10u);
    EXPECT_TRUE(seen.insert(msg).second) << msg;
  }
}

// ---------------------------------------------------------------------------------------------
// Majority

// Exhaustively checks every subset of an n-voter, k-observer config (observers interleaved).
void check_majority_exhaustive(std::size_t voters, std::size_t observers) {
  std::vector<Member> members;
  std::size_t v = 0;
  std::size_t o = 0;
  while (v < voters || o < observers) {
    const std::int64_t id = static_cast<std::int64_t>(members.size()) + 1;
    if (v < voters && (o == observers || members.size() % 2 == 0)) {
      members.push_back(voter(id));
      ++v;
    } else {
      members.push_back(observer(id));
      ++o;
    }
  }
  const QuorumVerifier q = majority_or_die(members);
  EXPECT_EQ(q.kind(), QuorumVerifier::Kind::majority);
  EXPECT_EQ(q.voters().count(), voters);
  for (std::size_t i = 0; i < members.size(); ++i) {
    EXPECT_EQ(q.is_voter(i), !members[i].observer) << i;
    EXPECT_EQ(q.weight(i), members[i].observer ? 0 : 1) << i;
  }
  const std::size_t n = members.size();
  for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << n); ++bits) {
    MemberSet s(bits);
    std::size_t voting = 0;
    for (std::size_t i = 0; i < n; ++i) voting += (s.test(i) && !members[i].observer) ? 1 : 0;
    EXPECT_EQ(q.is_quorum(s), voting > voters / 2)
        << "voters=" << voters << " observers=" << observers << " set=" << s.to_string();
  }
}

TEST(MajorityTest, OneVoter) {
  check_majority_exhaustive(1, 0);
  check_majority_exhaustive(1, 2);
}
TEST(MajorityTest, ThreeVoters) {
  check_majority_exhaustive(3, 0);
  check_majority_exhaustive(3, 2);
}
TEST(MajorityTest, FourVotersNeedThree) {
  check_majority_exhaustive(4, 0);
  check_majority_exhaustive(4, 3);
  const QuorumVerifier q = majority_or_die({voter(1), voter(2), voter(3), voter(4)});
  EXPECT_FALSE(q.is_quorum(set_of({0, 1})));
  EXPECT_TRUE(q.is_quorum(set_of({0, 1, 3})));
}
TEST(MajorityTest, FiveVoters) {
  check_majority_exhaustive(5, 0);
  check_majority_exhaustive(5, 2);
}
TEST(MajorityTest, SevenVoters) {
  check_majority_exhaustive(7, 0);
  check_majority_exhaustive(7, 3);
}

TEST(MajorityTest, EmptySetIsNeverAQuorum) {
  EXPECT_FALSE(majority_or_die({voter(1)}).is_quorum(MemberSet{}));
  EXPECT_TRUE(majority_or_die({voter(1)}).is_quorum(set_of({0})));
}

TEST(MajorityTest, ObserversNeverCountEvenAllOfThem) {
  // 3 voters, 4 observers: all observers plus one voter is not a quorum.
  const QuorumVerifier q = majority_or_die(
      {observer(1), voter(2), observer(3), voter(4), observer(5), voter(6), observer(7)});
  EXPECT_FALSE(q.is_quorum(set_of({0, 2, 4, 6})));
  EXPECT_FALSE(q.is_quorum(set_of({0, 1, 2, 4, 6})));
  EXPECT_TRUE(q.is_quorum(set_of({1, 3})));
}

TEST(MajorityTest, IndicesOutsideTheConfigNeverCount) {
  const QuorumVerifier q = majority_or_die({voter(1), voter(2), voter(3)});
  EXPECT_FALSE(q.is_quorum(set_of({0, 3, 4, 5, 63})));
  EXPECT_TRUE(q.is_quorum(set_of({0, 2, 63})));
  EXPECT_EQ(q.weight(3), 0);
  EXPECT_EQ(q.weight(1000), 0);
  EXPECT_FALSE(q.is_voter(3));
  EXPECT_FALSE(q.is_voter(63));
}

TEST(MajorityTest, IgnoresWeightsAndGroups) {
  // weight/group are hierarchical-only fields; a majority config does not look at them.
  const QuorumVerifier q = majority_or_die(
      {grouped(1, 5, 0), grouped(2, -1, -7), Member{ServerId{3}, true, 9, 4}});
  EXPECT_EQ(q.weight(0), 1);
  EXPECT_EQ(q.weight(1), 1);
  EXPECT_EQ(q.weight(2), 0);
  EXPECT_TRUE(q.is_quorum(set_of({0, 1})));
  EXPECT_FALSE(q.is_quorum(set_of({0, 2})));
}

// §7 item 35 (QuorumMajorityTest): ack tracking over 5 voters.
TEST(MajorityTest, ProposalAckTrackingOverFiveVoters) {
  auto config = ClusterConfig::make(
      {voter(1), voter(2), voter(3), voter(4), voter(5), observer(6), observer(7)},
      QuorumVerifier::Kind::majority);
  ASSERT_TRUE(config.has_value());
  const QuorumVerifier& q = config->verifier();

  MemberSet acks = set_of({0, 1});
  EXPECT_FALSE(q.is_quorum(acks)) << "2 of 5 acks";

  // An ack from a sid outside the voting view: an unknown server has no index, and a stray
  // index outside the config does not count.
  EXPECT_FALSE(config->index_of(ServerId{42}).has_value());
  EXPECT_FALSE(config->is_voter(ServerId{42}));
  acks.set(9);
  EXPECT_FALSE(q.is_quorum(acks)) << "2 acks + 1 from outside the config";

  // Observers' acks never count.
  acks.set(5);
  acks.set(6);
  EXPECT_FALSE(q.is_quorum(acks)) << "2 acks + both observers";

  acks.set(2);
  EXPECT_TRUE(q.is_quorum(acks)) << "3 of 5 acks";

  // The same through the commit-point computation.
  const Zxid p = Zxid::make(Epoch{1}, 7);
  std::vector<Zxid> acked(7, kZeroZxid);
  acked[0] = acked[1] = acked[5] = acked[6] = p;
  EXPECT_EQ(quorum_acked_zxid(q, acked, set_of({0, 1, 2, 3, 4, 5, 6})), kZeroZxid);
  acked[2] = p;
  EXPECT_EQ(quorum_acked_zxid(q, acked, set_of({0, 1, 2, 3, 4, 5, 6})), p);
}

// ---------------------------------------------------------------------------------------------
// Hierarchical

// 9 servers in 3 groups of 3 (reference §6.2): quorum = 2 groups with 2 members each.
std::vector<Member> nine_in_three_groups() {
  std::vector<Member> m;
  const std::int32_t gids[] = {7, 100, 3};  // arbitrary, non-dense group ids
  for (std::int32_t g = 0; g < 3; ++g) {
    for (std::int64_t k = 0; k < 3; ++k) m.push_back(grouped(g * 3 + k + 1, gids[g]));
  }
  return m;
}

TEST(HierarchicalTest, NineServersInThreeGroupsHaveAFourServerQuorum) {
  const QuorumVerifier q = hierarchical_or_die(nine_in_three_groups());
  EXPECT_EQ(q.kind(), QuorumVerifier::Kind::hierarchical);
  EXPECT_EQ(q.voters().count(), 9u);
  EXPECT_TRUE(q.is_quorum(set_of({0, 1, 3, 4})));
  EXPECT_TRUE(q.is_quorum(set_of({1, 2, 6, 8})));
  // 4 servers but only one group covered.
  EXPECT_FALSE(q.is_quorum(set_of({0, 1, 2, 3})));
  // 5 servers, 1 in each group plus 2 more in one group: one group covered.
  EXPECT_FALSE(q.is_quorum(set_of({0, 1, 2, 3, 6})));
  // Exhaustive: the smallest quorum has 4 servers, and a set is a quorum iff >= 2 groups have
  // >= 2 members in it.
  std::size_t smallest = 99;
  for (std::uint64_t bits = 0; bits < (1u << 9); ++bits) {
    const MemberSet s(bits);
    std::size_t covered = 0;
    for (std::size_t g = 0; g < 3; ++g) {
      const std::size_t in = (s.test(3 * g) ? 1u : 0u) + (s.test(3 * g + 1) ? 1u : 0u) +
                             (s.test(3 * g + 2) ? 1u : 0u);
      covered += in >= 2 ? 1 : 0;
    }
    EXPECT_EQ(q.is_quorum(s), covered >= 2) << s.to_string();
    if (q.is_quorum(s)) smallest = std::min(smallest, s.count());
  }
  EXPECT_EQ(smallest, 4u);
}

// §7 item 8 (FLEZeroWeightTest): zero-weight servers are voters with weight 0; they relay votes
// but cannot make a group's majority, and weight() lets the election refuse them as leaders.
TEST(HierarchicalTest, ZeroWeightServers) {
  // Groups of 3 where one member of each has weight 0.
  std::vector<Member> m;
  for (std::int32_t g = 0; g < 3; ++g) {
    m.push_back(grouped(g * 3 + 1, g, 0));
    m.push_back(grouped(g * 3 + 2, g, 1));
    m.push_back(grouped(g * 3 + 3, g, 1));
  }
  const QuorumVerifier q = hierarchical_or_die(m);
  for (std::size_t i = 0; i < 9; ++i) {
    EXPECT_TRUE(q.is_voter(i));
    EXPECT_EQ(q.weight(i), i % 3 == 0 ? 0 : 1);
  }
  // Group weight 2: both weight-1 members needed; the zero-weight one never helps.
  EXPECT_FALSE(q.is_quorum(set_of({0, 1, 3, 4})));
  EXPECT_FALSE(q.is_quorum(set_of({0, 1, 3, 4, 6, 7})));
  EXPECT_TRUE(q.is_quorum(set_of({1, 2, 4, 5})));
  EXPECT_TRUE(q.is_quorum(set_of({0, 1, 2, 3, 4, 5})));

  auto config = ClusterConfig::make(m, QuorumVerifier::Kind::hierarchical);
  ASSERT_TRUE(config.has_value());
  EXPECT_TRUE(config->is_voter(ServerId{1}));
  EXPECT_EQ(config->verifier().weight(*config->index_of(ServerId{1})), 0);
  EXPECT_EQ(config->verifier().weight(*config->index_of(ServerId{2})), 1);
}

TEST(HierarchicalTest, UnequalWeights) {
  // One group: a weight-3 server alone outweighs two weight-1 servers (3 > 5/2).
  const QuorumVerifier q =
      hierarchical_or_die({grouped(1, 0, 3), grouped(2, 0, 1), grouped(3, 0, 1)});
  EXPECT_TRUE(q.is_quorum(set_of({0})));
  EXPECT_FALSE(q.is_quorum(set_of({1, 2})));
  // Exactly half of a group's weight is not a majority of it.
  const QuorumVerifier h = hierarchical_or_die({grouped(1, 0, 2), grouped(2, 0, 2)});
  EXPECT_FALSE(h.is_quorum(set_of({0})));
  EXPECT_TRUE(h.is_quorum(set_of({0, 1})));
}

TEST(HierarchicalTest, GroupsWithZeroTotalWeightAreIgnored) {
  // Groups 0, 1, 2 have weight; group 9 has total weight 0. Three non-zero groups: 2 covered
  // groups are a quorum. Were group 9 counted (4 groups), 2 would not be enough.
  const QuorumVerifier q = hierarchical_or_die({
      grouped(1, 0), grouped(2, 1), grouped(3, 2), grouped(4, 9, 0), grouped(5, 9, 0)});
  EXPECT_TRUE(q.is_quorum(set_of({0, 1})));
  EXPECT_FALSE(q.is_quorum(set_of({0, 3, 4})));  // a zero-weight group is never covered
  EXPECT_TRUE(q.is_voter(3));
  EXPECT_EQ(q.weight(3), 0);

  // Two non-zero groups: both must be covered (2 * covered > 2).
  const QuorumVerifier two =
      hierarchical_or_die({grouped(1, 0), grouped(2, 1), grouped(3, 2, 0)});
  EXPECT_FALSE(two.is_quorum(set_of({0, 2})));
  EXPECT_TRUE(two.is_quorum(set_of({0, 1})));
}

TEST(HierarchicalTest, ObserversAndExtremeGroupIds) {
  const std::int32_t big = std::numeric_limits<std::int32_t>::max();
  const QuorumVerifier q = hierarchical_or_die(
      {grouped(1, big), observer(2), grouped(3, 0), grouped(4, big), observer(5), grouped(6, 0)});
  EXPECT_FALSE(q.is_voter(1));
  EXPECT_FALSE(q.is_voter(4));
  EXPECT_EQ(q.weight(1), 0);
  EXPECT_EQ(q.voters().count(), 4u);
  // Two groups of 2: both need both members.
  EXPECT_FALSE(q.is_quorum(set_of({0, 1, 2, 3, 4})));
  EXPECT_TRUE(q.is_quorum(set_of({0, 2, 3, 5})));
  EXPECT_FALSE(q.is_quorum(set_of({0, 1, 3, 4})));
}

TEST(HierarchicalTest, HugeWeightsDoNotOverflow) {
  // Each group total is exactly INT64_MAX; the quorum test must not overflow on 2 * weight.
  const QuorumVerifier q = hierarchical_or_die({grouped(1, 0, kInt64Max - 1), grouped(2, 0, 1),
                                                grouped(3, 1, kInt64Max)});
  EXPECT_TRUE(q.is_quorum(set_of({0, 2})));
  EXPECT_FALSE(q.is_quorum(set_of({1, 2})));
  EXPECT_FALSE(q.is_quorum(set_of({2})));
}

// ---------------------------------------------------------------------------------------------
// Config errors: every ConfigError provoked.

template <class R>
void expect_error(const R& r, ConfigError e) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), e) << to_string(r.error()) << " vs " << to_string(e);
}

TEST(ConfigErrorTest, Empty) {
  expect_error(ClusterConfig::make({}, QuorumVerifier::Kind::majority), ConfigError::empty);
  expect_error(ClusterConfig::make({}, QuorumVerifier::Kind::hierarchical), ConfigError::empty);
  expect_error(QuorumVerifier::majority({}), ConfigError::empty);
  expect_error(QuorumVerifier::hierarchical({}), ConfigError::empty);
}

TEST(ConfigErrorTest, TooManyMembers) {
  std::vector<Member> m;
  for (std::int64_t i = 0; i < 65; ++i) m.push_back(grouped(i, 0));
  expect_error(ClusterConfig::make(m, QuorumVerifier::Kind::majority),
               ConfigError::too_many_members);
  expect_error(ClusterConfig::make(m, QuorumVerifier::Kind::hierarchical),
               ConfigError::too_many_members);
  expect_error(QuorumVerifier::majority(m), ConfigError::too_many_members);
  expect_error(QuorumVerifier::hierarchical(m), ConfigError::too_many_members);
  m.pop_back();
  auto ok = ClusterConfig::make(m, QuorumVerifier::Kind::majority);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->size(), 64u);
  MemberSet all;
  all.set();
  EXPECT_TRUE(ok->verifier().is_quorum(all));
}

TEST(ConfigErrorTest, DuplicateServerId) {
  expect_error(ClusterConfig::make({voter(1), voter(2), observer(1)},
                                   QuorumVerifier::Kind::majority),
               ConfigError::duplicate_server_id);
  expect_error(ClusterConfig::make({grouped(5, 0), grouped(5, 1)},
                                   QuorumVerifier::Kind::hierarchical),
               ConfigError::duplicate_server_id);
}

TEST(ConfigErrorTest, NoVoters) {
  expect_error(ClusterConfig::make({observer(1), observer(2)}, QuorumVerifier::Kind::majority),
               ConfigError::no_voters);
  expect_error(QuorumVerifier::majority({observer(1)}), ConfigError::no_voters);
  expect_error(ClusterConfig::make({observer(1)}, QuorumVerifier::Kind::hierarchical),
               ConfigError::no_voters);
  // Hierarchical with voters but no group of non-zero weight: no set can ever be a quorum.
  expect_error(QuorumVerifier::hierarchical({grouped(1, 0, 0), grouped(2, 1, 0)}),
               ConfigError::no_voters);
}

TEST(ConfigErrorTest, NegativeWeight) {
  expect_error(QuorumVerifier::hierarchical({grouped(1, 0), grouped(2, 0, -1)}),
               ConfigError::negative_weight);
  expect_error(ClusterConfig::make({grouped(1, 0, std::numeric_limits<std::int64_t>::min())},
                                   QuorumVerifier::Kind::hierarchical),
               ConfigError::negative_weight);
}

TEST(ConfigErrorTest, MemberWithoutGroup) {
  expect_error(QuorumVerifier::hierarchical({grouped(1, 0), voter(2)}),
               ConfigError::member_without_group);
  expect_error(ClusterConfig::make({grouped(1, 0), grouped(2, -5)},
                                   QuorumVerifier::Kind::hierarchical),
               ConfigError::member_without_group);
}

TEST(ConfigErrorTest, ObserverInGroup) {
  expect_error(QuorumVerifier::hierarchical({grouped(1, 0), Member{ServerId{2}, true, 1, 0}}),
               ConfigError::observer_in_group);
  expect_error(ClusterConfig::make({grouped(1, 0), Member{ServerId{2}, true, 1, 3}},
                                   QuorumVerifier::Kind::hierarchical),
               ConfigError::observer_in_group);
}

TEST(ConfigErrorTest, WeightOverflow) {
  expect_error(QuorumVerifier::hierarchical({grouped(1, 0, kInt64Max), grouped(2, 0, 1)}),
               ConfigError::weight_overflow);
  // The same weights in different groups are fine.
  EXPECT_TRUE(QuorumVerifier::hierarchical({grouped(1, 0, kInt64Max), grouped(2, 1, 1)}));
}

// ---------------------------------------------------------------------------------------------
// ClusterConfig

TEST(ClusterConfigTest, IndexAndVoterLookup) {
  auto c = ClusterConfig::make({voter(10), observer(-3), voter(7)},
                               QuorumVerifier::Kind::majority);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->size(), 3u);
  EXPECT_EQ(c->members()[1].id, ServerId{-3});
  EXPECT_EQ(c->index_of(ServerId{10}), std::optional<std::size_t>{0});
  EXPECT_EQ(c->index_of(ServerId{-3}), std::optional<std::size_t>{1});
  EXPECT_EQ(c->index_of(ServerId{7}), std::optional<std::size_t>{2});
  EXPECT_FALSE(c->index_of(ServerId{8}).has_value());
  EXPECT_FALSE(c->index_of(kNoServer).has_value());
  EXPECT_TRUE(c->is_voter(ServerId{10}));
  EXPECT_FALSE(c->is_voter(ServerId{-3}));
  EXPECT_TRUE(c->is_voter(ServerId{7}));
  EXPECT_FALSE(c->is_voter(ServerId{8}));
  EXPECT_EQ(c->verifier().kind(), QuorumVerifier::Kind::majority);

  auto h = ClusterConfig::make(nine_in_three_groups(), QuorumVerifier::Kind::hierarchical);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->verifier().kind(), QuorumVerifier::Kind::hierarchical);
  EXPECT_TRUE(h->verifier().is_quorum(set_of({0, 1, 3, 4})));
}

// ---------------------------------------------------------------------------------------------
// quorum_acked_zxid

TEST(QuorumAckedZxidTest, MajorityBasics) {
  const QuorumVerifier q = majority_or_die({voter(1), voter(2), voter(3), voter(4), voter(5)});
  const MemberSet all = set_of({0, 1, 2, 3, 4});
  EXPECT_EQ(quorum_acked_zxid(q, {z(5), z(9), z(7), z(1), z(8)}, all), z(7));
  EXPECT_EQ(quorum_acked_zxid(q, {z(5), z(5), z(5), z(5), z(5)}, all), z(5));
  // Not eligible (e.g. not yet synced) members do not count.
  EXPECT_EQ(quorum_acked_zxid(q, {z(5), z(9), z(7), z(1), z(8)}, set_of({0, 1, 2, 3})), z(5));
  EXPECT_EQ(quorum_acked_zxid(q, {z(5), z(9), z(7), z(1), z(8)}, set_of({1, 2})), kNoZxid);
  EXPECT_EQ(quorum_acked_zxid(q, {z(5), z(9), z(7), z(1), z(8)}, MemberSet{}), kNoZxid);
  // A shorter ack vector: missing members have acked nothing.
  EXPECT_EQ(quorum_acked_zxid(q, {z(5), z(9)}, all), kNoZxid);
  EXPECT_EQ(quorum_acked_zxid(q, {z(5), z(9), z(2)}, all), z(2));
  EXPECT_EQ(quorum_acked_zxid(q, {}, all), kNoZxid);
  // Negative zxids (kLostZxid) and kNoZxid are ordinary values of the order.
  EXPECT_EQ(quorum_acked_zxid(q, {kLostZxid, kLostZxid, kNoZxid, kNoZxid, kLostZxid}, all),
            kLostZxid);
}

TEST(QuorumAckedZxidTest, ObserverAcksNeverCount) {
  const QuorumVerifier q =
      majority_or_die({voter(1), observer(2), voter(3), observer(4), voter(5)});
  const MemberSet all = set_of({0, 1, 2, 3, 4});
  EXPECT_EQ(quorum_acked_zxid(q, {z(3), z(100), z(2), z(100), z(1)}, all), z(2));
  // Extra entries beyond the config are ignored.
  std::vector<Zxid> acked(64, z(100));
  acked[0] = z(3);
  acked[2] = z(2);
  acked[4] = z(1);
  MemberSet every;
  every.set();
  EXPECT_EQ(quorum_acked_zxid(q, acked, every), z(2));
}

TEST(QuorumAckedZxidTest, Hierarchical) {
  const QuorumVerifier q = hierarchical_or_die(nine_in_three_groups());
  const MemberSet all = set_of({0, 1, 2, 3, 4, 5, 6, 7, 8});
  // Group 0 acked 9, 9, 1; group 1 acked 8, 7, 1; group 2 acked 9, 9, 9.
  // Two covered groups at zxid 9: only groups 0 and 2 -> 9.
  EXPECT_EQ(quorum_acked_zxid(q, {z(9), z(9), z(1), z(8), z(7), z(1), z(9), z(9), z(9)}, all),
            z(9));
  // Group 2 acked 9, 1, 1: at 9 only group 0 covered; at 7 groups 0 and 1.
  EXPECT_EQ(quorum_acked_zxid(q, {z(9), z(9), z(1), z(8), z(7), z(1), z(9), z(1), z(1)}, all),
            z(7));
}

// ---------------------------------------------------------------------------------------------
// Differential tests against naive references.

// Quorum test straight from the definition in §6.2, using the member list (not the verifier).
bool naive_is_quorum(const std::vector<Member>& members, QuorumVerifier::Kind kind,
                     const MemberSet& s) {
  if (kind == QuorumVerifier::Kind::majority) {
    std::size_t voters = 0;
    std::size_t in = 0;
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (members[i].observer) continue;
      ++voters;
      if (s.test(i)) ++in;
    }
    return in > voters / 2;
  }
  std::map<std::int32_t, std::pair<long double, long double>> groups;  // id -> (total, in S)
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (members[i].observer) continue;
    auto& g = groups[members[i].group];
    g.first += static_cast<long double>(members[i].weight);
    if (s.test(i)) g.second += static_cast<long double>(members[i].weight);
  }
  std::size_t nonzero = 0;
  std::size_t covered = 0;
  for (const auto& [id, g] : groups) {
    if (g.first != 0) ++nonzero;
    if (g.second > g.first / 2) ++covered;
  }
  return covered > nonzero / 2.0L;
}

// Tries every candidate zxid, builds the acking set, and keeps the largest that is a quorum.
Zxid naive_quorum_acked_zxid(const QuorumVerifier& q, const std::vector<Zxid>& acked,
                             const MemberSet& eligible) {
  Zxid best = kNoZxid;
  bool found = false;
  for (std::size_t c = 0; c < acked.size() && c < kMaxMembers; ++c) {
    if (!eligible.test(c)) continue;
    const Zxid candidate = acked[c];
    MemberSet s;
    for (std::size_t i = 0; i < acked.size() && i < kMaxMembers; ++i) {
      if (eligible.test(i) && q.is_voter(i) && acked[i] >= candidate) s.set(i);
    }
    if (q.is_quorum(s) && (!found || candidate > best)) {
      best = candidate;
      found = true;
    }
  }
  return found ? best : kNoZxid;
}

struct RandomCase {
  std::vector<Member> members;
  QuorumVerifier::Kind kind;
};

RandomCase random_config(std::mt19937_64& rng, QuorumVerifier::Kind kind) {
  auto uniform = [&rng](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  RandomCase rc{{}, kind};
  // Mostly small clusters, sometimes up to the limit.
  const std::size_t n = static_cast<std::size_t>(uniform(0, 3) == 0 ? uniform(1, 64)
                                                                    : uniform(1, 12));
  const std::int64_t observer_percent = uniform(0, 3) == 0 ? 0 : uniform(0, 60);
  const std::int64_t zero_weight_percent = uniform(0, 1) == 0 ? 0 : uniform(0, 50);
  const std::size_t group_count = static_cast<std::size_t>(uniform(1, 6));
  std::vector<std::int32_t> group_ids;
  for (std::size_t g = 0; g < group_count; ++g) {
    group_ids.push_back(static_cast<std::int32_t>(
        uniform(0, 1) == 0 ? uniform(0, 10) : uniform(0, std::numeric_limits<std::int32_t>::max())));
  }
  for (std::size_t i = 0; i < n; ++i) {
    Member m;
    m.id = ServerId{static_cast<std::int64_t>(i) * 3 - 20};
    m.observer = uniform(1, 100) <= observer_percent;
    if (kind == QuorumVerifier::Kind::hierarchical) {
      if (m.observer) {
        m.group = -1;
        m.weight = uniform(0, 3);
      } else {
        m.group = group_ids[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(group_count) - 1))];
        m.weight = uniform(1, 100) <= zero_weight_percent ? 0
                   : uniform(0, 4) == 0                  ? uniform(1, 1000)
                                                         : uniform(1, 3);
      }
    }
    rc.members.push_back(m);
  }
  if (kind == QuorumVerifier::Kind::majority && uniform(0, 1) == 0) {
    rc.members[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(n) - 1))].observer =
        false;
  }
  return rc;
}

void run_differential(QuorumVerifier::Kind kind, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&rng](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  constexpr int kCases = 20000;
  int tested = 0;
  int rejected = 0;
  int with_quorum = 0;
  while (tested < kCases) {
    const RandomCase rc = random_config(rng, kind);
    auto config = ClusterConfig::make(rc.members, kind);
    if (!config) {
      // The only way a random config can be invalid: no voter / no non-zero group.
      ASSERT_EQ(config.error(), ConfigError::no_voters);
      MemberSet all;
      all.set();
      ASSERT_FALSE(naive_is_quorum(rc.members, kind, all));
      ++rejected;
      continue;
    }
    const QuorumVerifier& q = config->verifier();
    const std::size_t n = rc.members.size();

    // is_quorum against the definition, on a few random sets (bits beyond n included).
    for (int k = 0; k < 4; ++k) {
      MemberSet s(rng());
      if (uniform(0, 1) == 0) s &= MemberSet(rng());
      ASSERT_EQ(q.is_quorum(s), naive_is_quorum(rc.members, kind, s))
          << "seed=" << seed << " case=" << tested << " set=" << s.to_string();
    }

    // Acks drawn from a small pool to create ties, including negative and sentinel zxids.
    std::vector<Zxid> pool;
    const std::size_t pool_size = static_cast<std::size_t>(uniform(1, 8));
    for (std::size_t p = 0; p < pool_size; ++p) {
      switch (uniform(0, 5)) {
        case 0: pool.push_back(kNoZxid); break;
        case 1: pool.push_back(kLostZxid); break;
        case 2: pool.push_back(kZeroZxid); break;
        default:
          pool.push_back(Zxid::make(Epoch{uniform(1, 3)},
                                    static_cast<std::uint32_t>(uniform(0, 20))));
      }
    }
    std::size_t acked_size = n;
    switch (uniform(0, 4)) {
      case 0: acked_size = static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(n))); break;
      case 1: acked_size = static_cast<std::size_t>(uniform(static_cast<std::int64_t>(n), 70)); break;
      default: break;
    }
    std::vector<Zxid> acked(acked_size);
    for (auto& a : acked) a = pool[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(pool_size) - 1))];
    MemberSet eligible(rng());
    if (uniform(0, 2) == 0) eligible |= MemberSet(rng());
    if (uniform(0, 4) == 0) eligible.set();

    const Zxid got = quorum_acked_zxid(q, acked, eligible);
    const Zxid want = naive_quorum_acked_zxid(q, acked, eligible);
    ASSERT_EQ(got.value, want.value) << "seed=" << seed << " case=" << tested << " n=" << n;
    if (want != kNoZxid) ++with_quorum;
    ++tested;
  }
  // The generator must exercise both outcomes substantially.
  EXPECT_GT(with_quorum, kCases / 10);
  EXPECT_LT(with_quorum, kCases - kCases / 10);
  if (kind == QuorumVerifier::Kind::hierarchical) {
    EXPECT_GT(rejected, 0);
  }
}

TEST(QuorumDifferentialTest, MajorityMatchesNaiveReference) {
  run_differential(QuorumVerifier::Kind::majority, 0x5eed'0001'2345'6789ULL);
}

TEST(QuorumDifferentialTest, HierarchicalMatchesNaiveReference) {
  run_differential(QuorumVerifier::Kind::hierarchical, 0x5eed'0002'9876'5432ULL);
}

}  // namespace
}  // namespace fastzab::core
