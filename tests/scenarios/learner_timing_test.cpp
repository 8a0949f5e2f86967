// The learner's clocks (reference §4.3 "Learner", §4.5 heartbeat; issue 9, "Time in real units"):
// its hello (FOLLOWERINFO) leaves with the election's decision, not at a later tick; it is said
// again every learner_hello_retry_ticks until the leader answers; and in broadcast a silent
// leader is given up after leader_silence_ticks, a limit of its own (the leader's syncLimit is a
// different clock).
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

TEST(LearnerTiming, S4_3_HelloLeavesWithTheDecisionOfTheFinalizeWait) {
  // n1 sees a quorum for n3 (its own vote and n2's) while n3, connected, has not voted: it waits
  // the finalize wait and decides on a tick. Its FOLLOWERINFO is an output of that same tick:
  // delivering what is in flight, without another tick, brings it to n3.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  spec.tuning.learner_hello_retry_ticks = 1000;  // no re-send can stand in for the first hello
  Ensemble e(spec);
  e.start(1);
  e.fake_notify(2, 1, PeerState::looking, 3, z(0, 0), 1, Epoch{0});
  e.settle();
  ASSERT_EQ(e.state(1), PeerState::looking);  // finalize wait
  int ticks = 0;
  while (ticks < 100 && e.state(1) == PeerState::looking) {
    e.tick_only();
    ++ticks;
  }
  ASSERT_EQ(e.state(1), PeerState::following) << e.transcript().dump();
  EXPECT_EQ(ticks, e.config(1).finalize_wait_ticks);
  EXPECT_TRUE(e.received(3, PacketType::followerinfo).empty());  // still in flight
  e.settle();  // delivery only: no tick
  EXPECT_EQ(e.received(3, PacketType::followerinfo).size(), 1u) << e.transcript().dump();
}

TEST(LearnerTiming, S4_3_HelloLeavesWithAnOutOfElectionDecision) {
  // A LEADING and a FOLLOWING vote decide at once (handle_established): no tick at all.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.start(1);
  e.fakes_lead(3, 1, {2}, Epoch{1});
  e.settle();
  ASSERT_EQ(e.state(1), PeerState::following) << e.transcript().dump();
  EXPECT_EQ(e.received(3, PacketType::followerinfo).size(), 1u);
}

TEST(LearnerTiming, S4_3_HelloIsRepeatedEveryRetryPeriodUntilTheLeaderAnswers) {
  // The leader (fake n3) never answers. The learner says its hello again on every tick whose
  // count is a multiple of learner_hello_retry_ticks, and gives up only after initLimit.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  spec.tuning.learner_hello_retry_ticks = 5;
  spec.tuning.init_limit_ticks = 100;
  Ensemble e(spec);
  e.start(1);
  e.fakes_lead(3, 1, {2}, Epoch{1});
  e.settle();
  ASSERT_EQ(e.state(1), PeerState::following);
  ASSERT_EQ(e.received(3, PacketType::followerinfo).size(), 1u);
  std::vector<int> resent_at;
  std::size_t seen = 1;
  for (int t = 1; t <= 22; ++t) {
    e.tick();
    const std::size_t now_seen = e.received(3, PacketType::followerinfo).size();
    if (now_seen != seen) resent_at.push_back(t);
    seen = now_seen;
  }
  EXPECT_EQ(resent_at, (std::vector<int>{5, 10, 15, 20})) << e.transcript().dump();
  EXPECT_EQ(e.state(1), PeerState::following);
}

TEST(LearnerTiming, S4_5_SilentLeaderIsGivenUpAfterLeaderSilenceNotSyncLimit) {
  // A real ensemble; the leader's frames to one follower are held (the connection stays up, as
  // with a leader host that froze or a cut cable). The follower gives up after
  // leader_silence_ticks, well before the leader's syncLimit.
  Spec spec = Spec::majority(3);
  spec.tuning.leader_silence_ticks = 4;
  spec.tuning.sync_limit_ticks = 30;
  Ensemble e(spec);
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value()) << e.transcript().dump();
  const Sid follower = *leader == 1 ? 2 : 1;
  ASSERT_EQ(e.state(follower), PeerState::following);
  e.hold_link(*leader, follower);
  int waited = 0;
  while (waited < 100 && e.state(follower) == PeerState::following) {
    e.tick();
    ++waited;
  }
  EXPECT_EQ(waited, e.config(follower).leader_silence_ticks + 1) << e.transcript().dump();
  EXPECT_TRUE(e.transcript().contains("n" + std::to_string(follower) + " LOOKING: " +
                                      core::to_string(core::Cause::leader_silent)))
      << e.transcript().dump();
  EXPECT_EQ(e.state(*leader), PeerState::leading);  // its quorum still holds
}

}  // namespace
}  // namespace fastzab::test
