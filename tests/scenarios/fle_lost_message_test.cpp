// §2.5-2.6 a LOOKING node that only ever hears one peer (reference §7 item 6, FLELostMessageTest).
// Peer n1 (fake) first votes LOOKING for itself, then says it is FOLLOWING n2: together with n2's
// own vote that is a quorum of a 3-member ensemble agreeing on n2 in n2's round, so n2 leads.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

TEST(FleLostMessage, S7_6_FLELostMessageTest_LoneVoterThenFollowingVoteElectsMe) {
  Spec spec = Spec::majority(3);
  spec.fake({1, 3});  // n3 stays silent: its messages are "lost"
  Ensemble e(spec);
  e.start(2);
  e.fake_notify(1, 2, PeerState::looking, 1, z(0, 0), 1, Epoch{0});
  e.settle();
  EXPECT_EQ(e.state(2), PeerState::looking);
  EXPECT_EQ(e.node(2).vote().leader, ServerId{2});  // n1's vote for itself loses to mine
  // n2 answered n1 with its own, better vote.
  bool answered = false;
  for (const Heard& h : e.inbox(1)) {
    if (h.kind == core::FrameKind::notification && h.leader == 2) answered = true;
  }
  EXPECT_TRUE(answered);

  e.fake_notify(1, 2, PeerState::following, 2, z(0, 0), 1, Epoch{0});
  e.settle();
  e.tick(3);
  EXPECT_EQ(e.state(2), PeerState::leading) << e.transcript().dump();
  EXPECT_EQ(e.transcript().count("n2 LEADING"), 1u);
}

TEST(FleLostMessage, S7_6_FLELostMessageTest_LoneLookingVoteIsNotAQuorum) {
  // Without the second message n2 stays LOOKING, re-sending its vote with back-off.
  Spec spec = Spec::majority(3);
  spec.fake({1, 3});
  Ensemble e(spec);
  e.start(2);
  e.fake_notify(1, 2, PeerState::looking, 1, z(0, 0), 1, Epoch{0});
  e.settle();
  e.clear_inbox(1);
  e.tick(30);
  EXPECT_EQ(e.state(2), PeerState::looking);
  std::size_t resent = 0;
  for (const Heard& h : e.inbox(1)) resent += h.kind == core::FrameKind::notification;
  EXPECT_GE(resent, 2u);  // notifications are repeated (2, 4, 8, 16 ticks: back-off)
  EXPECT_LE(resent, 5u);
}

}  // namespace
}  // namespace fastzab::test
