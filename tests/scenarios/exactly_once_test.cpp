// Exactly-once writes (leader.cpp leader_propose, client_table.h): a write with an id is in
// the agreed sequence at most once, however often and wherever its client retries it. A retry
// of a committed write ends committed at the original zxid; one of a write still in flight
// ends with it; an older sequence than the client's last is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

using core::WriteId;
using core::WriteOutcome;

std::size_t copies(const Ensemble& e, Sid s, const std::string& v) {
  const auto values = e.values(s);
  return static_cast<std::size_t>(std::count(values.begin(), values.end(), v));
}

TEST(ExactlyOnce, ARetryOfACommittedWriteEndsAtTheOriginalZxidOnAnyServer) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const std::uint64_t first = e.propose_as(*leader, WriteId{7, 1}, "pay-1");
  e.settle();
  const auto done = e.write_done(first);
  ASSERT_TRUE(done.has_value());
  ASSERT_EQ(done->first, WriteOutcome::committed);
  // The client did not hear the answer and retries, at the leader and through a follower.
  const std::uint64_t again = e.propose_as(*leader, WriteId{7, 1}, "pay-1");
  const std::uint64_t via = e.propose_as(e.follower_of(*leader), WriteId{7, 1}, "pay-1");
  e.settle();
  for (std::uint64_t t : {again, via}) {
    const auto d = e.write_done(t);
    ASSERT_TRUE(d.has_value()) << e.transcript().dump();
    EXPECT_EQ(d->first, WriteOutcome::committed);
    EXPECT_EQ(d->second, done->second);
  }
  for (Sid s : e.sids()) EXPECT_EQ(copies(e, s, "pay-1"), 1u) << s;
  // A new sequence is a new write; an older one than the last is refused.
  const std::uint64_t next = e.propose_as(*leader, WriteId{7, 2}, "pay-2");
  e.settle();
  ASSERT_EQ(e.write_done(next)->first, WriteOutcome::committed);
  const std::uint64_t stale = e.propose_as(*leader, WriteId{7, 1}, "pay-1");
  EXPECT_EQ(e.rejected(stale), std::optional(core::RejectReason::stale_sequence));
  EXPECT_TRUE(e.consistent());
}

// The leader dies after proposing; its client's outcome is unknown. The retry goes to the new
// leader, which holds the proposal in its history: it commits it once, and the retry ends there.
TEST(ExactlyOnce, ARetryAfterTheLeaderDiedCommitsTheWriteOnce) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid f = e.follower_of(*leader);
  const std::uint64_t first = e.propose_as(f, WriteId{9, 4}, "once");
  // The REQUEST reaches the leader, which proposes it to both followers; it dies before any
  // commit reaches them.
  ASSERT_TRUE(e.deliver(f, *leader));
  for (Sid s : e.sids()) {
    if (s != *leader) e.hold_link(s, *leader);
  }
  e.settle();
  e.crash(*leader);
  e.settle();
  const auto next = e.elect();
  ASSERT_TRUE(next.has_value());
  ASSERT_NE(*next, *leader);
  ASSERT_TRUE(e.write_done(first).has_value());
  EXPECT_EQ(e.write_done(first)->first, WriteOutcome::unknown_outcome);
  const std::uint64_t retry = e.propose_as(*next, WriteId{9, 4}, "once");
  e.settle();
  const auto d = e.write_done(retry);
  ASSERT_TRUE(d.has_value()) << e.transcript().dump();
  EXPECT_EQ(d->first, WriteOutcome::committed);
  EXPECT_EQ(e.accepted(retry), std::optional(d->second)) << "ends with the earlier proposal";
  for (Sid s : e.sids()) {
    if (s != *leader) e.hold_link(s, *leader, false);
  }
  e.restart(*leader);
  ASSERT_TRUE(e.run_until([&] { return e.values(*leader) == e.values(*next); }));
  for (Sid s : e.sids()) EXPECT_EQ(copies(e, s, "once"), 1u) << s;
  EXPECT_TRUE(e.consistent());
}

// A client that gives up waiting retries while the write is still in flight: the leader holds
// the first proposal, uncommitted (no acknowledgement reached it yet), and the retry ends with
// it instead of becoming a second entry.
TEST(ExactlyOnce, ARetryOfAWriteStillInFlightEndsWithIt) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid f = e.follower_of(*leader);
  for (Sid s : e.sids()) {
    if (s != *leader) e.hold_link(s, *leader);
  }
  const std::uint64_t first = e.propose_as(f, WriteId{3, 1}, "slow");
  ASSERT_TRUE(e.deliver(f, *leader));  // the REQUEST; the ACKs stay held
  e.settle();
  EXPECT_FALSE(e.write_done(first).has_value());
  const std::uint64_t retry = e.propose_as(*leader, WriteId{3, 1}, "slow");
  for (Sid s : e.sids()) {
    if (s != *leader) e.hold_link(s, *leader, false);
  }
  e.settle();
  const auto a = e.write_done(first);
  const auto b = e.write_done(retry);
  ASSERT_TRUE(a.has_value() && b.has_value()) << e.transcript().dump();
  EXPECT_EQ(a->first, WriteOutcome::committed);
  EXPECT_EQ(b->first, WriteOutcome::committed);
  EXPECT_EQ(a->second, b->second);
  for (Sid s : e.sids()) EXPECT_EQ(copies(e, s, "slow"), 1u) << s;
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
