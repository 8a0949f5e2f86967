// Quorum decisions of the core (engine/core/quorum.h), on majority configurations of 3 and 5
// voters and a hierarchical one of 3 groups of 3 (ZooKeeper's group.G/weight.N example shape).
//
// BM_IsQuorum: QuorumVerifier::is_quorum on a member set, the test behind every election,
//   epoch, NEWLEADER and heartbeat decision.
// BM_QuorumAckedZxid: quorum_acked_zxid, the leader's commit point (the highest zxid a quorum
//   has durably acked), computed on every ack that moves a learner forward.
//
// Inputs cycle through 64 cases drawn once from a fixed seed: the same case every time would let
// the branch predictor learn the answer, which a leader facing live acks does not get to do.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/quorum.h"
#include "micro_main.h"

namespace {

using fastzab::core::ClusterConfig;
using fastzab::core::Epoch;
using fastzab::core::Member;
using fastzab::core::MemberSet;
using fastzab::core::QuorumVerifier;
using fastzab::core::ServerId;
using fastzab::core::Zxid;

constexpr std::size_t kCases = 64;  // a power of two: the next case is one mask away
constexpr std::uint64_t kSeed = 20240607;

struct Shape {
  const char* name;
  std::size_t groups;  // 0: majority
  std::size_t members;
};

constexpr Shape kShapes[] = {
    {"majority3", 0, 3},
    {"majority5", 0, 5},
    {"hier3x3", 3, 9},
};

ClusterConfig make_config(const Shape& shape) {
  std::vector<Member> members;
  for (std::size_t i = 0; i < shape.members; ++i) {
    Member m{ServerId{static_cast<std::int64_t>(i + 1)}};
    if (shape.groups != 0) m.group = static_cast<std::int32_t>(i % shape.groups);
    members.push_back(m);
  }
  const auto kind =
      shape.groups == 0 ? QuorumVerifier::Kind::majority : QuorumVerifier::Kind::hierarchical;
  auto config = ClusterConfig::make(std::move(members), kind);
  if (!config) {  // the shapes above are valid: a failure is a bug in this file
    std::fprintf(stderr, "%s: %s\n", shape.name, fastzab::core::to_string(config.error()));
    std::abort();
  }
  return *config;
}

void BM_IsQuorum(benchmark::State& state, Shape shape) {
  const ClusterConfig config = make_config(shape);
  const QuorumVerifier& verifier = config.verifier();
  std::mt19937_64 rng(kSeed);
  std::array<MemberSet, kCases> sets;
  for (MemberSet& set : sets) {
    for (std::size_t i = 0; i < shape.members; ++i) set[i] = (rng() & 1) != 0;
  }
  std::size_t next = 0;
  std::size_t quorums = 0;
  for (auto _ : state) {
    const bool quorum = verifier.is_quorum(sets[next]);
    benchmark::DoNotOptimize(quorum);
    quorums += quorum ? 1 : 0;
    next = (next + 1) & (kCases - 1);
  }
  benchmark::DoNotOptimize(quorums);
  state.SetItemsProcessed(state.iterations());
}

void BM_QuorumAckedZxid(benchmark::State& state, Shape shape) {
  const ClusterConfig config = make_config(shape);
  const QuorumVerifier& verifier = config.verifier();
  std::mt19937_64 rng(kSeed);
  // As the leader's try_commit builds them: each member's highest durable ack (the leader's own
  // log among them) within a window of recent zxids, and about one member in eight not counted
  // (down, or not yet through NEWLEADER).
  struct Case {
    std::vector<Zxid> acked;
    MemberSet eligible;
  };
  std::vector<Case> cases(kCases);
  for (Case& c : cases) {
    for (std::size_t i = 0; i < shape.members; ++i) {
      const bool counted = rng() % 8 != 0;
      c.acked.push_back(counted
                            ? Zxid::make(Epoch{3}, static_cast<std::uint32_t>(1000 + rng() % 64))
                            : fastzab::core::kNoZxid);
      c.eligible[i] = counted;
    }
  }
  std::size_t next = 0;
  for (auto _ : state) {
    const Case& c = cases[next];
    const Zxid commit = fastzab::core::quorum_acked_zxid(verifier, c.acked, c.eligible);
    benchmark::DoNotOptimize(commit);
    next = (next + 1) & (kCases - 1);
  }
  state.SetItemsProcessed(state.iterations());
}

void register_all() {
  for (const Shape& shape : kShapes) {
    benchmark::RegisterBenchmark((std::string("BM_IsQuorum/") + shape.name).c_str(), BM_IsQuorum,
                                 shape);
  }
  for (const Shape& shape : kShapes) {
    benchmark::RegisterBenchmark((std::string("BM_QuorumAckedZxid/") + shape.name).c_str(),
                                 BM_QuorumAckedZxid, shape);
  }
}

}  // namespace

int main(int argc, char** argv) { return fastzab::bench::run_main(argc, argv, register_all); }
