// The host-side persist-before-ack gate: held frames leave only once durable, in FIFO order.
#include "engine/core/send_gate.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

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
  void disk(OutputKind kind, Zxid zxid, std::uint32_t count) {
    Outputs o;
    o.items.emplace_back();
    o.items.back().kind = kind;
    o.items.back().zxid = zxid;
    o.items.back().count = count;
    gate.on_output(o, o.items.back(), emit());
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
    gate.on_output(outs, o, emit());
  }
  std::vector<std::string> bodies() const {
    std::vector<std::string> r;
    for (const auto& s : sent) r.push_back(s.body);
    return r;
  }
  SendGate gate;
  Outputs outs;
  std::vector<Sent> sent;
};

TEST_F(GateTest, PlainSendLeavesAtOnce) {
  gate.reset(Zxid{0}, Epoch{0}, Epoch{0});
  send("ping", nullptr);
  EXPECT_EQ(bodies(), std::vector<std::string>{"ping"});
}

TEST_F(GateTest, AckWaitsForLogDurabilityAndKeepsLaterFramesBehindIt) {
  gate.reset(Zxid{0}, Epoch{0}, Epoch{0});
  disk(OutputKind::append, Zxid{1}, 4);
  disk(OutputKind::append, Zxid{5}, 1);
  const DurableBarrier b{Zxid{5}, kNoEpoch, kNoEpoch};
  send("ack5", &b);
  send("ping", nullptr);  // must not overtake the held ack
  EXPECT_TRUE(sent.empty());
  gate.on_log_durable(Zxid{4}, emit());
  EXPECT_TRUE(sent.empty());
  gate.on_log_durable(Zxid{5}, emit());
  EXPECT_EQ(bodies(), (std::vector<std::string>{"ack5", "ping"}));
  EXPECT_EQ(gate.held(), 0u);
}

// A learner's forwarded writes (REQUEST) depend on nothing sent before them: they do not wait
// behind the ACK a follower holds until its fsync, which would add an fsync to every forwarded
// write's latency; the frames that follow them still keep their order.
TEST_F(GateTest, AMayOvertakeSendLeavesWhileAnAckIsHeld) {
  gate.reset(Zxid{0}, Epoch{0}, Epoch{0});
  disk(OutputKind::append, Zxid{1}, 1);
  const DurableBarrier b{Zxid{1}, kNoEpoch, kNoEpoch};
  send("ack1", &b);
  send("request", nullptr, true);
  send("ping", nullptr);
  EXPECT_EQ(bodies(), std::vector<std::string>{"request"});
  gate.on_log_durable(Zxid{1}, emit());
  EXPECT_EQ(bodies(), (std::vector<std::string>{"request", "ack1", "ping"}));
}

TEST_F(GateTest, EpochBarrierNeedsBothEpochFiles) {
  gate.reset(Zxid{0}, Epoch{1}, Epoch{1});
  const DurableBarrier b{kNoZxid, Epoch{2}, Epoch{2}};
  send("newleader-ack", &b);
  gate.on_epochs_durable(Epoch{2}, Epoch{1}, emit());
  EXPECT_TRUE(sent.empty());
  gate.on_epochs_durable(Epoch{2}, Epoch{2}, emit());
  EXPECT_EQ(bodies(), std::vector<std::string>{"newleader-ack"});
}

// A completion for an append issued before TRUNC(t) vouches only for entries <= t: the new
// entries that reuse those zxids are not durable until their own append completes.
TEST_F(GateTest, CompletionOfAnAppendBeforeATruncateDoesNotCoverNewEntries) {
  gate.reset(Zxid{4}, Epoch{1}, Epoch{1});
  disk(OutputKind::append, Zxid{5}, 3);    // old 5..7
  disk(OutputKind::truncate, Zxid{4}, 0);  // TRUNC(4)
  disk(OutputKind::append, Zxid{5}, 1);    // new 5
  const DurableBarrier b{Zxid{5}, kNoEpoch, kNoEpoch};
  send("ack5", &b);
  gate.on_log_durable(Zxid{7}, emit());  // the old append
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(gate.log_durable(), Zxid{4});
  gate.on_log_durable(Zxid{5}, emit());  // the new one
  EXPECT_EQ(bodies(), std::vector<std::string>{"ack5"});
}

TEST_F(GateTest, NothingIsDurableBetweenSnapshotInstallAndItsCompletion) {
  gate.reset(Zxid{3}, Epoch{1}, Epoch{1});
  disk(OutputKind::install_snapshot, Zxid{9}, 0);
  EXPECT_EQ(gate.log_durable(), kNoZxid);
  const DurableBarrier b{Zxid{9}, kNoEpoch, kNoEpoch};
  send("ack9", &b);
  EXPECT_TRUE(sent.empty());
  gate.on_snapshot_installed(Zxid{9}, emit());
  EXPECT_EQ(bodies(), std::vector<std::string>{"ack9"});
}

TEST_F(GateTest, ResetDropsHeldFrames) {
  gate.reset(Zxid{0}, Epoch{0}, Epoch{0});
  disk(OutputKind::append, Zxid{1}, 5);
  const DurableBarrier b{Zxid{5}, kNoEpoch, kNoEpoch};
  send("ack5", &b);
  gate.reset(Zxid{0}, Epoch{0}, Epoch{0});
  EXPECT_EQ(gate.held(), 0u);
  EXPECT_TRUE(sent.empty());
}

}  // namespace
}  // namespace fastzab::core
