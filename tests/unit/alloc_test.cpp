// The core's steady state allocates nothing: a 3-node cluster on a perfect network commits
// thousands of batched proposals, and the heap is only counted inside Node::step. At every
// value size from 100 B to 64 KiB (232 B is where fastzab::Node's ring slot stops holding a
// value inline: the core must not have a threshold of its own).
#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <new>
#include <string>
#include <vector>

#include "engine/core/history.h"
#include "engine/core/node.h"
#include "engine/core/send_gate.h"

namespace {
bool g_counting = false;
std::size_t g_allocations = 0;
std::size_t g_frees = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting) ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (g_counting && p != nullptr) ++g_frees;
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  if (g_counting && p != nullptr) ++g_frees;
  std::free(p);
}

namespace fastzab::core {
namespace {

// A host's SendGate holds every ACK a follower sends until its append is durable. Once its queue
// has grown, holding and releasing frames reuses their buffers (a deque of byte vectors made two
// allocations per held frame in a running server).
TEST(SendGate, HeldFramesReuseTheirBuffersInTheSteadyState) {
  SendGate gate;
  gate.reset(kZeroZxid, Epoch{1}, Epoch{1});
  Outputs outs;
  std::size_t sent = 0;
  const auto emit = [&](ServerId, SessionId, Bytes frame) { sent += frame.size(); };
  const auto round = [&](std::int64_t counter, std::size_t bytes) {
    // Append entry `counter`, then an ACK held until it is durable; then its completion.
    outs.clear();
    const Zxid zxid = Zxid::make(Epoch{1}, static_cast<std::uint32_t>(counter));
    {
      Output& append = outs.items.emplace_back();  // a reference only until the next emplace
      append.kind = OutputKind::append;
      append.zxid = zxid;
      append.count = 1;
      gate.on_output(outs, append, emit);
    }
    Output& ack = outs.items.emplace_back();
    ack.kind = OutputKind::send_after_durable;
    ack.peer = ServerId{2};
    ack.session = SessionId{1};
    ack.barrier.log_zxid = zxid;
    ack.offset = outs.arena.size();
    outs.arena.resize(outs.arena.size() + bytes, std::byte{7});
    ack.length = bytes;
    gate.on_output(outs, ack, emit);
    EXPECT_EQ(gate.held(), 1u);
    gate.on_log_durable(zxid, emit);
    EXPECT_EQ(gate.held(), 0u);
  };
  std::int64_t z = 0;
  for (int i = 0; i < 100; ++i) round(++z, 200);  // grows the queue and its buffers
  g_allocations = 0;
  g_counting = true;
  for (int i = 0; i < 10000; ++i) round(++z, 100 + static_cast<std::size_t>(i % 100));
  g_counting = false;
  EXPECT_EQ(g_allocations, 0u);
  EXPECT_EQ(sent, 100u * 200u + 10000u * 100u + 100u * (99u * 100u / 2u));
}

TEST(History, EvictedEntriesGiveTheirMemoryBack) {
  // A restart replays a long log into the history; once applied, all but the window is evicted.
  // The ring keeps a popped slot's value until the slot is reused, so an evicted entry's bytes
  // stayed alive (309 MB after replaying 100k 1 KiB records) unless freed on eviction.
  History h;
  const ByteBuffer payload(1024, std::byte{0x5a});
  constexpr std::uint32_t kEntries = 10000;
  for (std::uint32_t i = 1; i <= kEntries; ++i) h.append(Zxid::make(Epoch{1}, i), Bytes(payload));
  g_frees = 0;
  g_counting = true;
  h.evict(h.last(), 16);
  g_counting = false;
  EXPECT_EQ(h.size(), 16u);
  // All but the few kept for reuse are freed.
  EXPECT_GE(g_frees, std::size_t{kEntries} - 16 - 64);
}

struct Frame {
  std::size_t from, to;
  SessionId session;
  ByteBuffer bytes;
};

class SteadyState : public ::testing::TestWithParam<std::size_t> {};

TEST_P(SteadyState, StepAllocatesNothingPerMessage) {
  std::vector<Member> members{Member{ServerId{1}}, Member{ServerId{2}}, Member{ServerId{3}}};
  auto cfg = *ClusterConfig::make(members, QuorumVerifier::Kind::majority);
  std::vector<Node> nodes;
  std::vector<Outputs> outs(3);
  for (const Member& m : members) nodes.emplace_back(NodeConfig{cfg, m.id}, DurableState{});
  std::deque<Frame> net;
  std::vector<std::deque<Output>> disk(3);
  std::vector<SessionId> pair_session{SessionId{1}, SessionId{2}, SessionId{3}};  // 01, 02, 12
  auto session_of = [&](std::size_t a, std::size_t b) {
    return pair_session[a + b - 1];
  };
  auto step = [&](std::size_t i, const Input& in) {
    outs[i].clear();
    g_counting = true;
    nodes[i].step(in, outs[i]);
    g_counting = false;
    for (const Output& o : outs[i].items) {
      if (o.kind == OutputKind::send || o.kind == OutputKind::send_after_durable) {
        const Bytes b = outs[i].bytes(o);
        net.push_back(Frame{i, static_cast<std::size_t>(o.peer.value - 1), o.session, ByteBuffer(b.begin(), b.end())});
      } else if (o.kind == OutputKind::append || o.kind == OutputKind::persist_epochs) {
        disk[i].push_back(o);
      }
    }
  };
  // Durability completes before the frames move, so gated sends may go at once.
  auto settle = [&] {
    for (bool work = true; work;) {
      work = false;
      for (std::size_t i = 0; i < 3; ++i) {
        while (!disk[i].empty()) {
          work = true;
          const Output o = disk[i].front();
          disk[i].pop_front();
          if (o.kind == OutputKind::append) step(i, input::LogDurable{Zxid{o.zxid.value + o.count - 1}});
          else step(i, input::EpochsDurable{o.accepted, o.current});
        }
      }
      while (!net.empty()) {
        work = true;
        Frame f = std::move(net.front());
        net.pop_front();
        step(f.to, input::Message{members[f.from].id, f.session, Bytes(f.bytes)});
      }
    }
  };
  for (std::size_t a = 0; a < 3; ++a)
    for (std::size_t b = a + 1; b < 3; ++b) {
      step(a, input::SessionUp{members[b].id, session_of(a, b)});
      step(b, input::SessionUp{members[a].id, session_of(a, b)});
    }
  for (int t = 0; t < 20; ++t) {
    for (std::size_t i = 0; i < 3; ++i) step(i, input::Tick{});
    settle();
  }
  std::size_t leader = 3;
  for (std::size_t i = 0; i < 3; ++i)
    if (nodes[i].state() == PeerState::leading && nodes[i].phase() == ZabPhase::broadcast) leader = i;
  ASSERT_LT(leader, 3u);

  const std::string payload(GetParam(), 'p');
  std::vector<ClientProposal> batch(8, ClientProposal{0, Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size()), {}});
  auto run = [&](int rounds) {
    for (int r = 0; r < rounds; ++r) {
      step(leader, input::ClientProposals{batch});
      settle();
      if (r % 16 == 0)
        for (std::size_t i = 0; i < 3; ++i) step(i, input::Tick{});
      settle();
    }
  };
  g_allocations = 0;
  run(1000);  // warm up: buffers, rings and the history window reach their working size
  EXPECT_GT(g_allocations, 0u) << "the counter must see the warm-up growing its buffers";
  g_allocations = 0;
  run(1000);
  EXPECT_EQ(g_allocations, 0u) << "allocations inside Node::step over 8000 committed entries";
  EXPECT_EQ(nodes[0].applied().counter(), 16000u);
}

INSTANTIATE_TEST_SUITE_P(ValueSizes, SteadyState, ::testing::Values(100, 232, 233, 1024, 16384, 65536),
                         [](const ::testing::TestParamInfo<std::size_t>& p) { return "bytes" + std::to_string(p.param); });

}  // namespace
}  // namespace fastzab::core
