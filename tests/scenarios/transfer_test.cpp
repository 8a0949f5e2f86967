// Leadership transfer (issue 9; leader.cpp "leadership transfer"): the leader stops proposing,
// waits until the target durably holds and a quorum has committed its whole history, sends
// TRANSFER and follows the target, which runs discovery and synchronization for a new epoch.
// No acknowledged write is lost, and no epoch ever has two established leaders (the world
// records every establishment and e.consistent() checks the applied histories).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

using core::TransferOutcome;

std::vector<std::string> values_from(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back("v" + std::to_string(i));
  return v;
}

Sid other_than(Sid a, Sid b = 0) {
  for (Sid s : {1, 2, 3}) {
    if (s != a && s != b) return s;
  }
  return 0;
}

TEST(Transfer, HandsLeadershipToTheNamedFollowerWithoutAnElection) {
  Ensemble e(Spec::majority(3));
  const auto old_leader = e.start_and_elect();
  ASSERT_TRUE(old_leader.has_value());
  const std::vector<std::string> written = values_from(0, 5);
  e.propose(*old_leader, written);
  e.settle();
  const Sid target = other_than(*old_leader);
  const std::int64_t epoch = e.node(*old_leader).current_epoch().value;
  std::uint64_t elections_before = 0;
  for (Sid s : {1, 2, 3}) elections_before += e.node(s).counters().elections_started;

  const auto tag = e.transfer(*old_leader, target);
  e.settle();  // no tick: the hand-over needs none
  EXPECT_EQ(e.transfer_outcome(tag), std::optional(TransferOutcome::handed_off))
      << e.transcript().dump();
  EXPECT_EQ(e.state(target), PeerState::leading);
  EXPECT_TRUE(e.serving(target)) << e.transcript().dump();
  EXPECT_EQ(e.node(target).current_epoch().value, epoch + 1);
  for (Sid s : {1, 2, 3}) {
    if (s == target) continue;
    EXPECT_EQ(e.state(s), PeerState::following) << s;
    EXPECT_EQ(e.node(s).leader(), ServerId{target}) << s;
  }
  std::uint64_t elections_after = 0;
  for (Sid s : {1, 2, 3}) elections_after += e.node(s).counters().elections_started;
  EXPECT_EQ(elections_after, elections_before) << "a transfer runs no election";

  const auto more = e.propose(target, {"after"});
  e.settle();
  e.tick();
  ASSERT_TRUE(e.accepted(more[0]).has_value());
  std::vector<std::string> all = written;
  all.push_back("after");
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), all) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(Transfer, DuringLoadEveryAcceptedWriteCommitsAndNewOnesAreRefused) {
  // Proposals are still in flight (no follower has them) when the transfer is asked for: the
  // leader waits for them to commit, refuses what comes meanwhile, then hands over.
  Ensemble e(Spec::majority(5));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const auto first = e.propose(*leader, values_from(0, 20));
  const auto tag = e.transfer(*leader);
  const auto refused = e.propose(*leader, {"during"});
  EXPECT_EQ(e.rejected(refused[0]), std::optional(core::RejectReason::transferring));
  EXPECT_FALSE(e.transfer_outcome(tag).has_value()) << "it must wait for the in-flight writes";
  e.settle();
  ASSERT_EQ(e.transfer_outcome(tag), std::optional(TransferOutcome::handed_off))
      << e.transcript().dump();
  const auto next = e.elect(50);
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(*next, *leader);
  e.tick(2);
  for (std::uint64_t t : first) EXPECT_TRUE(e.accepted(t).has_value());
  for (Sid s : e.sids()) EXPECT_EQ(e.values(s), values_from(0, 20)) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(Transfer, ChoosesACaughtUpFollowerWhenNoneIsNamed) {
  // One follower's disk is held, so it cannot acknowledge; the leader picks the other one.
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid lagging = other_than(*leader);
  const Sid ready = other_than(*leader, lagging);
  e.hold_disk(lagging);
  e.propose(*leader, values_from(0, 3));
  e.settle();
  const auto tag = e.transfer(*leader);
  e.settle();
  EXPECT_EQ(e.transfer_outcome(tag), std::optional(TransferOutcome::handed_off));
  EXPECT_EQ(e.state(ready), PeerState::leading) << e.transcript().dump();
  e.hold_disk(lagging, false);
  e.settle();
  const auto next = e.elect(50);
  ASSERT_EQ(next, std::optional<Sid>(ready));
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), values_from(0, 3)) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(Transfer, RefusedWhenItCannotStart) {
  Spec spec = Spec::majority(3, 1);  // n4 observes
  Ensemble e(spec);
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid follower = other_than(*leader);
  EXPECT_EQ(e.transfer_outcome(e.transfer(follower)), std::optional(TransferOutcome::not_leader));
  EXPECT_EQ(e.transfer_outcome(e.transfer(*leader, 4)),
            std::optional(TransferOutcome::no_candidate));  // an observer never leads
  EXPECT_EQ(e.transfer_outcome(e.transfer(*leader, *leader)),
            std::optional(TransferOutcome::no_candidate));
  EXPECT_EQ(e.transfer_outcome(e.transfer(*leader, 99)),
            std::optional(TransferOutcome::no_candidate));
  EXPECT_EQ(e.state(*leader), PeerState::leading);
  const auto tags = e.propose(*leader, {"still"});
  e.settle();
  EXPECT_TRUE(e.accepted(tags[0]).has_value()) << "a refused transfer leaves the leader as it was";
}

TEST(Transfer, TwoRacingTransfersOnlyOneRuns) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid a = other_than(*leader);
  const Sid b = other_than(*leader, a);
  e.hold_disk(a);  // a cannot acknowledge yet: the first transfer stays in progress
  e.propose(*leader, {"x"});
  const auto first = e.transfer(*leader, a);
  const auto second = e.transfer(*leader, b);
  EXPECT_EQ(e.transfer_outcome(second), std::optional(TransferOutcome::in_progress));
  EXPECT_FALSE(e.transfer_outcome(first).has_value());
  e.hold_disk(a, false);
  e.settle();
  EXPECT_EQ(e.transfer_outcome(first), std::optional(TransferOutcome::handed_off));
  ASSERT_EQ(e.elect(50), std::optional<Sid>(a));
  // The new leader hands on at once to b: a transfer right after a transfer.
  const auto third = e.transfer(a, b);
  e.settle();
  EXPECT_EQ(e.transfer_outcome(third), std::optional(TransferOutcome::handed_off))
      << e.transcript().dump();
  ASSERT_EQ(e.elect(50), std::optional<Sid>(b));
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), std::vector<std::string>{"x"}) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(Transfer, TargetThatCannotCatchUpTimesOutAndTheLeaderGoesOn) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid target = other_than(*leader);
  e.hold_disk(target);
  e.propose(*leader, {"x"});
  const auto tag = e.transfer(*leader, target);
  e.settle();
  ASSERT_FALSE(e.transfer_outcome(tag).has_value());
  ASSERT_TRUE(e.run_until([&] { return e.transfer_outcome(tag).has_value(); },
                          e.config(*leader).transfer_timeout_ticks + 2));
  EXPECT_EQ(e.transfer_outcome(tag), std::optional(TransferOutcome::aborted));
  EXPECT_EQ(e.state(*leader), PeerState::leading);
  e.hold_disk(target, false);
  const auto after = e.commit(*leader, {"y"});
  EXPECT_TRUE(e.accepted(after[0]).has_value());
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), (std::vector<std::string>{"x", "y"})) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(Transfer, TargetLostBeforeTheHandOverAbortsIt) {
  Ensemble e(Spec::majority(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const Sid target = other_than(*leader);
  e.hold_disk(target);
  e.propose(*leader, {"x"});
  const auto tag = e.transfer(*leader, target);
  e.settle();
  e.crash(target);
  e.settle();
  EXPECT_EQ(e.transfer_outcome(tag), std::optional(TransferOutcome::aborted));
  EXPECT_EQ(e.state(*leader), PeerState::leading);
  const auto after = e.propose(*leader, {"y"});
  e.settle();
  EXPECT_TRUE(e.accepted(after[0]).has_value());
  e.hold_disk(target, false);
  e.restart(target);
  ASSERT_TRUE(e.elect().has_value());
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), (std::vector<std::string>{"x", "y"})) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(Transfer, TargetDeadRightAfterTheHandOverTheOthersElectAndKeepEverything) {
  // TRANSFER reached everyone, then the target crashed before it established: the others follow
  // a dead leader, give it up (closed session, or initLimit) and elect one of themselves.
  Ensemble e(Spec::majority(5));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  e.propose(*leader, values_from(0, 4));
  e.settle();
  Sid target = 0;
  for (Sid s : e.sids()) {
    if (s != *leader) target = s;
  }
  // Stop everything from the target once the TRANSFER is delivered: it never answers.
  e.filter = [&](Sid from, Sid, ByteBuffer&) { return from != target; };
  const auto tag = e.transfer(*leader, target);
  e.settle();
  ASSERT_EQ(e.transfer_outcome(tag), std::optional(TransferOutcome::handed_off));
  e.crash(target);
  e.filter = nullptr;
  const auto next = e.elect();
  ASSERT_TRUE(next.has_value()) << e.transcript().dump();
  EXPECT_NE(*next, target);
  e.tick(2);
  for (Sid s : e.sids()) {
    if (s == target) continue;
    EXPECT_EQ(e.values(s), values_from(0, 4)) << s;
  }
  EXPECT_TRUE(e.consistent());
}

TEST(Transfer, ATransferNamingTheLeaderItselfIsAProtocolError) {
  // A TRANSFER names a voter other than the sender; n1 (following fake n3, before LEADERINFO)
  // treats anything else as a broken leader and leaves it.
  Spec spec = Spec::majority(3);
  spec.fake({3});
  Ensemble e(spec);
  e.start(1);
  e.start(2);
  for (Sid to : {1, 2}) e.fake_notify(3, to, PeerState::looking, 3, z(0, 0), 1, Epoch{0});
  e.settle();
  ASSERT_EQ(e.node(1).leader(), ServerId{3});
  ByteBuffer b;
  core::encode_transfer(z(0, 0), ServerId{3}, b);
  e.fake_send(3, 1, b);
  e.settle();
  EXPECT_GT(e.node(1).counters().protocol_errors, 0u);
  EXPECT_NE(e.node(1).leader(), ServerId{3});
}

}  // namespace
}  // namespace fastzab::test
