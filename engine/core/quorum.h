// Cluster membership and quorum systems (reference §6.2). Every quorum decision of the core goes
// through QuorumVerifier, so majority and hierarchical (group/weight) configs share one code path.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "expected.h"
#include "types.h"

namespace fastzab::core {

inline constexpr std::size_t kMaxMembers = 64;

// A set of members, by their index in the ClusterConfig (not by server id).
using MemberSet = std::bitset<kMaxMembers>;

struct Member {
  ServerId id;
  bool observer = false;
  std::int64_t weight = 1;  // hierarchical configs only; 0 = may relay votes but never lead
  std::int32_t group = -1;  // hierarchical configs only; -1 = no group
};

enum class ConfigError : std::uint8_t {
  empty,
  too_many_members,
  duplicate_server_id,
  no_voters,
  negative_weight,
  member_without_group,
  observer_in_group,
  weight_overflow,  // a group's total weight does not fit in int64
};
const char* to_string(ConfigError e) noexcept;

// The quorum test of one configuration.
class QuorumVerifier {
 public:
  enum class Kind : std::uint8_t { majority, hierarchical };

  // Majority over the non-observer members.
  static Expected<QuorumVerifier, ConfigError> majority(const std::vector<Member>& members);
  // ZooKeeper's QuorumHierarchical: a set is a quorum iff more than half of the groups with
  // non-zero weight have more than half of their weight in the set.
  static Expected<QuorumVerifier, ConfigError> hierarchical(const std::vector<Member>& members);

  bool is_quorum(const MemberSet& set) const noexcept;
  bool is_voter(std::size_t index) const noexcept { return voters_.test(index); }
  // Weight 0 members never win an election (FLEZeroWeightTest).
  std::int64_t weight(std::size_t index) const noexcept;
  const MemberSet& voters() const noexcept { return voters_; }
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_ = Kind::majority;
  MemberSet voters_;
  std::size_t voter_count_ = 0;
  std::vector<std::int64_t> weights_;          // by member index
  std::vector<std::int32_t> group_of_;         // by member index
  std::vector<std::int64_t> group_weight_;     // by group index (dense)
  std::size_t nonzero_groups_ = 0;
};

// Membership plus its quorum verifier. Member indices are positions in `members`.
class ClusterConfig {
 public:
  static Expected<ClusterConfig, ConfigError> make(std::vector<Member> members,
                                                   QuorumVerifier::Kind kind);

  const std::vector<Member>& members() const noexcept { return members_; }
  std::size_t size() const noexcept { return members_.size(); }
  std::optional<std::size_t> index_of(ServerId id) const noexcept;
  const QuorumVerifier& verifier() const noexcept { return verifier_; }
  bool is_voter(ServerId id) const noexcept;

 private:
  std::vector<Member> members_;
  QuorumVerifier verifier_;
};

// The commit point of a leader: the largest zxid that a quorum of voters has durably acked
// (acks are cumulative). `acked[i]` is member i's highest acked zxid; only members in `eligible`
// count. Returns kNoZxid when no zxid has a quorum.
Zxid quorum_acked_zxid(const QuorumVerifier& verifier, const std::vector<Zxid>& acked,
                       const MemberSet& eligible);

}  // namespace fastzab::core
