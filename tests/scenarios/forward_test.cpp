// Client writes on learners (writes.cpp): a follower or observer in broadcast forwards them to
// its leader in REQUEST packets; the leader proposes them and answers in REPLY once committed,
// or at once when it refuses them. Every write ends in exactly one write_done (the world
// records a second one as a violation): committed only once the learner has delivered it,
// refused when nothing was proposed, unknown_outcome when the learner lost its leader first.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

using core::WriteOutcome;

TEST(Forward, AFollowersWritesCommitThroughTheLeaderAndEndOnlyOnceItAppliedThem) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid f = e.follower_of(*leader);
  ASSERT_NE(f, 0);
  // Hold the leader's frames to the follower: the write commits (the leader and the third
  // server are a quorum), but the follower hears neither the COMMIT nor the REPLY.
  e.hold_link(*leader, f);
  const auto tags = e.propose(f, {"a", "b", "c"});
  e.settle();
  for (std::uint64_t t : tags) {
    EXPECT_FALSE(e.write_done(t).has_value()) << "ended before the follower applied it";
  }
  EXPECT_EQ(e.values(*leader), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(e.values(f).empty());
  e.hold_link(*leader, f, false);
  e.settle();
  ASSERT_EQ(e.values(f), (std::vector<std::string>{"a", "b", "c"}));
  for (std::size_t i = 0; i < tags.size(); ++i) {
    const auto done = e.write_done(tags[i]);
    ASSERT_TRUE(done.has_value()) << e.transcript().dump();
    EXPECT_EQ(done->first, WriteOutcome::committed);
    EXPECT_EQ(done->second, e.app(f)[i].zxid);
  }
  EXPECT_FALSE(e.accepted(tags[0]).has_value()) << "proposal_accepted is the leader's own";
  EXPECT_TRUE(e.consistent());
}

TEST(Forward, AnObserversWriteCommitsToo) {
  Ensemble e(Spec::majority(3, 1));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  Sid observer = 0;
  for (Sid s : e.sids()) {
    if (e.state(s) == PeerState::observing) observer = s;
  }
  ASSERT_NE(observer, 0);
  const auto tags = e.propose(observer, {"seen"});
  e.settle();
  const auto done = e.write_done(tags[0]);
  ASSERT_TRUE(done.has_value()) << e.transcript().dump();
  EXPECT_EQ(done->first, WriteOutcome::committed);
  EXPECT_EQ(e.values(observer), std::vector<std::string>{"seen"});
  EXPECT_TRUE(e.consistent());
}

TEST(Forward, AWriteTheLeaderRefusesEndsRefusedOnTheFollower) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid f = e.follower_of(*leader);
  Sid target = 0;
  for (Sid s : e.sids()) {
    if (s != *leader && s != f) target = s;
  }
  // Hold the target's frames to the leader: it cannot acknowledge the in-flight write, so the
  // transfer to it waits, and meanwhile the leader refuses the follower's forwarded write as it
  // would its own.
  e.hold_link(target, *leader);
  const auto first = e.propose(*leader, {"pending"});
  e.settle();
  const auto transfer = e.transfer(*leader, target);
  const auto tags = e.propose(f, {"during-transfer"});
  e.settle();
  EXPECT_FALSE(e.transfer_outcome(transfer).has_value());
  const auto done = e.write_done(tags[0]);
  ASSERT_TRUE(done.has_value()) << e.transcript().dump();
  EXPECT_EQ(done->first, WriteOutcome::no_leader);  // refused: nothing proposed
  EXPECT_EQ(e.rejected(tags[0]), std::optional(core::RejectReason::transferring));
  e.hold_link(target, *leader, false);
  e.settle();
  for (Sid s : e.sids()) {
    for (const std::string& v : e.values(s)) EXPECT_NE(v, "during-transfer") << s;
  }
  ASSERT_TRUE(e.write_done(first[0]).has_value());
  EXPECT_TRUE(e.consistent());
}

TEST(Forward, AFollowerThatLosesItsLeaderEndsItsForwardedWritesAsUnknownOutcome) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid f = e.follower_of(*leader);
  const auto tags = e.propose(f, {"maybe"});
  // The REQUEST reaches the leader, which proposes it; then the leader dies before any reply.
  ASSERT_TRUE(e.deliver(f, *leader));
  e.crash(*leader);
  e.settle();
  e.tick(40);
  const auto done = e.write_done(tags[0]);
  ASSERT_TRUE(done.has_value()) << e.transcript().dump();
  EXPECT_EQ(done->first, WriteOutcome::unknown_outcome);
  EXPECT_TRUE(e.consistent());
}

TEST(Forward, AWriteToALookingServerOrATooLargeOneIsRefusedAtOnce) {
  Ensemble e(Spec::majority(3));
  e.start_all();
  const auto looking = e.propose(1, {"early"});
  ASSERT_TRUE(e.write_done(looking[0]).has_value());
  EXPECT_EQ(e.rejected(looking[0]), std::optional(core::RejectReason::not_leader));
  const auto leader = e.elect();
  ASSERT_TRUE(leader.has_value());
  const Sid f = e.follower_of(*leader);
  const auto big = e.propose(f, {std::string(core::kMaxEntryBytes + 1, 'x'), "small"});
  EXPECT_EQ(e.rejected(big[0]), std::optional(core::RejectReason::too_large));
  e.settle();
  const auto small = e.write_done(big[1]);
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(small->first, WriteOutcome::committed);
  EXPECT_EQ(e.values(f), std::vector<std::string>{"small"});
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
