// Quorum systems (reference §6.2): plain majority over the voters, and ZooKeeper's hierarchical
// (group/weight) quorums. Both answer is_quorum() for a MemberSet of member indices.
#include "quorum.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

namespace fastzab::core {

const char* to_string(ConfigError e) noexcept {
  switch (e) {
    case ConfigError::empty: return "configuration has no members";
    case ConfigError::too_many_members: return "configuration has more than 64 members";
    case ConfigError::duplicate_server_id: return "configuration lists a server id twice";
    case ConfigError::no_voters:
      return "configuration has no voting member that can form a quorum";
    case ConfigError::negative_weight: return "a member has a negative weight";
    case ConfigError::member_without_group:
      return "hierarchical configuration: a voting member belongs to no group";
    case ConfigError::observer_in_group:
      return "hierarchical configuration: an observer is assigned to a group";
    case ConfigError::weight_overflow:
      return "hierarchical configuration: a group's total weight overflows int64";
  }
  return "unknown configuration error";
}

namespace {

// Checks shared by both verifier kinds; the bitset cannot hold more than kMaxMembers indices.
std::optional<ConfigError> check_size(const std::vector<Member>& members) {
  if (members.empty()) return ConfigError::empty;
  if (members.size() > kMaxMembers) return ConfigError::too_many_members;
  return std::nullopt;
}

}  // namespace

Expected<QuorumVerifier, ConfigError> QuorumVerifier::majority(
    const std::vector<Member>& members) {
  if (auto err = check_size(members)) return unexpected(*err);
  QuorumVerifier v;
  v.kind_ = Kind::majority;
  v.weights_.assign(members.size(), 0);
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (members[i].observer) continue;
    v.voters_.set(i);
    v.weights_[i] = 1;
    ++v.voter_count_;
  }
  if (v.voter_count_ == 0) return unexpected(ConfigError::no_voters);
  return v;
}

Expected<QuorumVerifier, ConfigError> QuorumVerifier::hierarchical(
    const std::vector<Member>& members) {
  if (auto err = check_size(members)) return unexpected(*err);
  QuorumVerifier v;
  v.kind_ = Kind::hierarchical;
  v.weights_.assign(members.size(), 0);
  v.group_of_.assign(members.size(), -1);

  // Configured group id of each dense group index; at most one group per voter.
  std::array<std::int32_t, kMaxMembers> group_ids{};
  std::size_t group_count = 0;

  for (std::size_t i = 0; i < members.size(); ++i) {
    const Member& m = members[i];
    if (m.weight < 0) return unexpected(ConfigError::negative_weight);
    if (m.observer) {
      if (m.group != -1) return unexpected(ConfigError::observer_in_group);
      continue;  // observers carry no weight and belong to no group
    }
    if (m.group < 0) return unexpected(ConfigError::member_without_group);

    std::size_t g = 0;
    while (g < group_count && group_ids[g] != m.group) ++g;
    if (g == group_count) {
      group_ids[group_count++] = m.group;
      v.group_weight_.push_back(0);
    }
    std::int64_t total = 0;
    if (__builtin_add_overflow(v.group_weight_[g], m.weight, &total)) {
      return unexpected(ConfigError::weight_overflow);
    }
    v.group_weight_[g] = total;
    v.group_of_[i] = static_cast<std::int32_t>(g);
    v.weights_[i] = m.weight;
    v.voters_.set(i);
    ++v.voter_count_;
  }

  v.nonzero_groups_ = static_cast<std::size_t>(
      std::count_if(v.group_weight_.begin(), v.group_weight_.end(),
                    [](std::int64_t w) { return w != 0; }));
  // Without a group of non-zero weight no set is ever a quorum.
  if (v.nonzero_groups_ == 0) return unexpected(ConfigError::no_voters);
  return v;
}

bool QuorumVerifier::is_quorum(const MemberSet& set) const noexcept {
  const MemberSet in = set & voters_;
  if (kind_ == Kind::majority) return in.count() > voter_count_ / 2;

  // Weight of `in` per group. Each group total fits in int64 (checked at construction), and a
  // partial sum never exceeds its group's total, so nothing here overflows.
  std::array<std::int64_t, kMaxMembers> in_weight{};
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    if (!in.test(i)) continue;
    in_weight[static_cast<std::size_t>(group_of_[i])] += weights_[i];
  }
  std::size_t covered = 0;
  for (std::size_t g = 0; g < group_weight_.size(); ++g) {
    // 2 * in > total, written so that it cannot overflow (in <= total).
    if (in_weight[g] > group_weight_[g] - in_weight[g]) ++covered;
  }
  return 2 * covered > nonzero_groups_;
}

std::int64_t QuorumVerifier::weight(std::size_t index) const noexcept {
  return index < weights_.size() ? weights_[index] : 0;
}

Expected<ClusterConfig, ConfigError> ClusterConfig::make(std::vector<Member> members,
                                                         QuorumVerifier::Kind kind) {
  if (members.empty()) return unexpected(ConfigError::empty);
  if (members.size() > kMaxMembers) return unexpected(ConfigError::too_many_members);
  for (std::size_t i = 0; i < members.size(); ++i) {
    for (std::size_t j = i + 1; j < members.size(); ++j) {
      if (members[i].id == members[j].id) return unexpected(ConfigError::duplicate_server_id);
    }
  }
  auto verifier = kind == QuorumVerifier::Kind::majority ? QuorumVerifier::majority(members)
                                                         : QuorumVerifier::hierarchical(members);
  if (!verifier) return unexpected(verifier.error());
  ClusterConfig config;
  config.members_ = std::move(members);
  config.verifier_ = std::move(*verifier);
  return config;
}

std::optional<std::size_t> ClusterConfig::index_of(ServerId id) const noexcept {
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].id == id) return i;
  }
  return std::nullopt;
}

bool ClusterConfig::is_voter(ServerId id) const noexcept {
  const auto index = index_of(id);
  return index.has_value() && verifier_.is_voter(*index);
}

Zxid quorum_acked_zxid(const QuorumVerifier& verifier, const std::vector<Zxid>& acked,
                       const MemberSet& eligible) {
  // Only eligible voters can be in the acking set. Because quorums are monotone (a superset of
  // a quorum is a quorum), the answer is always the ack of some eligible voter: walk those acks
  // from highest to lowest, growing the set of members that acked at least that much, and stop
  // at the first that completes a quorum.
  const MemberSet counted = eligible & verifier.voters();
  std::array<std::pair<Zxid, std::size_t>, kMaxMembers> acks;
  std::size_t n = 0;
  const std::size_t limit = std::min(acked.size(), kMaxMembers);
  for (std::size_t i = 0; i < limit; ++i) {
    if (counted.test(i)) acks[n++] = {acked[i], i};
  }
  std::sort(acks.begin(), acks.begin() + static_cast<std::ptrdiff_t>(n),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  MemberSet set;
  for (std::size_t k = 0; k < n; ++k) {
    set.set(acks[k].second);
    // Members acking the same zxid are added together before the test.
    if (k + 1 < n && acks[k + 1].first == acks[k].first) continue;
    if (verifier.is_quorum(set)) return acks[k].first;
  }
  return kNoZxid;
}

}  // namespace fastzab::core
