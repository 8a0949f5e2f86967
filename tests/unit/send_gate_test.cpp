// The host-side persist-before-ack gate: held frames leave only once the node's durable point
// covers their barrier, in FIFO order. What is durable is the node's DurabilityTracker (its
// truncate and snapshot rules are tested with it here, as a host would see them).
#include "engine/core/send_gate.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/core/durability.h"

namespace fastzab::core {
namespace {

struct Sent {
  std::int64_t peer;
  std::string body;
};

class GateTest : public ::testing::Test {
 protected:
  std::function<void(ServerId, SessionId, Bytes)> emit() {
    return [this](ServerId peer, SessionId, Bytes b) {
      sent.push_back(Sent{peer.value, std::string(reinterpret_cast<const char*>(b.data()), b.size())});
    };
  }
  // The node's durable state, as Node::durable() reports it.
  DurablePoint durable() const { return DurablePoint{log.durable(), accepted, current}; }
  void start(Zxid log_durable, Epoch a, Epoch c) {
    log.reset(log_durable);
    accepted = a;
    current = c;
    gate.clear();
  }
  // A completion reached the node: what it covers leaves.
  void completed_append(Zxid last) {
    ASSERT_TRUE(log.completed_append(last));
    gate.release(durable(), emit());
  }
  void completed_snapshot(Zxid at) {
    ASSERT_TRUE(log.completed_snapshot(at));
    gate.release(durable(), emit());
  }
  void completed_epochs(Epoch a, Epoch c) {
    accepted = a;
    current = c;
    gate.release(durable(), emit());
  }
  void send(const std::string& body, const DurableBarrier* barrier, bool may_overtake = false) {
    outs.clear();
    outs.items.emplace_back();
    Output& o = outs.items.back();
    o.kind = barrier ? OutputKind::send_after_durable : OutputKind::send;
    o.may_overtake = may_overtake;
    o.peer = ServerId{2};
    o.session = SessionId{9};
    if (barrier) o.barrier = *barrier;
    o.offset = 0;
    for (char c : body) outs.arena.push_back(static_cast<std::byte>(c));
    o.length = body.size();
    gate.on_output(outs, o, durable(), emit());
  }
  std::vector<std::string> bodies() const {
    std::vector<std::string> r;
    for (const auto& s : sent) r.push_back(s.body);
    return r;
  }
  SendGate gate;
  DurabilityTracker log;
  Epoch accepted = kNoEpoch;
  Epoch current = kNoEpoch;
  Outputs outs;
  std::vector<Sent> sent;
};

TEST_F(GateTest, PlainSendLeavesAtOnce) {
  start(Zxid{0}, Epoch{0}, Epoch{0});
  send("ping", nullptr);
  EXPECT_EQ(bodies(), std::vector<std::string>{"ping"});
}

TEST_F(GateTest, AckWaitsForLogDurabilityAndKeepsLaterFramesBehindIt) {
  start(Zxid{0}, Epoch{0}, Epoch{0});
  log.issued_append(Zxid{4});
  log.issued_append(Zxid{5});
  const DurableBarrier b{Zxid{5}, kNoEpoch, kNoEpoch};
  send("ack5", &b);
  send("later", nullptr);
  EXPECT_TRUE(sent.empty());
  completed_append(Zxid{4});
  EXPECT_TRUE(sent.empty());
  completed_append(Zxid{5});
  EXPECT_EQ(bodies(), (std::vector<std::string>{"ack5", "later"}));
}

TEST_F(GateTest, AMayOvertakeSendLeavesWhileAnAckIsHeld) {
  start(Zxid{0}, Epoch{0}, Epoch{0});
  log.issued_append(Zxid{1});
  const DurableBarrier b{Zxid{1}, kNoEpoch, kNoEpoch};
  send("ack1", &b);
  send("request", nullptr, /*may_overtake=*/true);
  EXPECT_EQ(bodies(), std::vector<std::string>{"request"});
  completed_append(Zxid{1});
  EXPECT_EQ(bodies(), (std::vector<std::string>{"request", "ack1"}));
}

TEST_F(GateTest, EpochBarrierNeedsBothEpochFiles) {
  start(Zxid{0}, Epoch{1}, Epoch{1});
  const DurableBarrier b{kNoZxid, Epoch{2}, Epoch{2}};
  send("newleader-ack", &b);
  completed_epochs(Epoch{2}, Epoch{1});
  EXPECT_TRUE(sent.empty());
  completed_epochs(Epoch{2}, Epoch{2});
  EXPECT_EQ(bodies(), std::vector<std::string>{"newleader-ack"});
}

// A completion for an append issued before TRUNC(t) vouches only for entries <= t: the new
// entries that reuse those zxids are not durable until their own append completes.
TEST_F(GateTest, CompletionOfAnAppendBeforeATruncateDoesNotCoverNewEntries) {
  start(Zxid{4}, Epoch{1}, Epoch{1});
  log.issued_append(Zxid{7});    // old 5..7
  log.issued_truncate(Zxid{4});  // TRUNC(4)
  log.issued_append(Zxid{5});    // new 5
  const DurableBarrier b{Zxid{5}, kNoEpoch, kNoEpoch};
  send("ack5", &b);
  completed_append(Zxid{7});  // the old append
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(durable().log_zxid, Zxid{4});
  completed_append(Zxid{5});  // the new one
  EXPECT_EQ(bodies(), std::vector<std::string>{"ack5"});
}

TEST_F(GateTest, NothingIsDurableBetweenSnapshotInstallAndItsCompletion) {
  start(Zxid{3}, Epoch{1}, Epoch{1});
  log.issued_snapshot(Zxid{9});
  EXPECT_EQ(durable().log_zxid, kNoZxid);
  const DurableBarrier b{Zxid{9}, kNoEpoch, kNoEpoch};
  send("ack9", &b);
  EXPECT_TRUE(sent.empty());
  completed_snapshot(Zxid{9});
  EXPECT_EQ(bodies(), std::vector<std::string>{"ack9"});
}

TEST_F(GateTest, ClearDropsHeldFrames) {
  start(Zxid{0}, Epoch{0}, Epoch{0});
  log.issued_append(Zxid{5});
  const DurableBarrier b{Zxid{5}, kNoEpoch, kNoEpoch};
  send("ack5", &b);
  gate.clear();
  EXPECT_EQ(gate.held(), 0u);
  completed_append(Zxid{5});
  EXPECT_TRUE(sent.empty());
}

}  // namespace
}  // namespace fastzab::core
