// The core's steady state allocates nothing: a 3-node cluster on a perfect network commits
// thousands of batched proposals, and the heap is only counted inside Node::step. At every
// value size from 100 B to 64 KiB (232 B is where fastzab::Node's ring slot stops holding a
// value inline: the core must not have a threshold of its own).
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/history.h"
#include "engine/core/node.h"
#include "engine/core/host.h"
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
  DurablePoint durable{kZeroZxid, Epoch{1}, Epoch{1}};
  Outputs outs;
  std::size_t sent = 0;
  const auto emit = [&](ServerId, SessionId, Bytes frame) { sent += frame.size(); };
  const auto round = [&](std::int64_t counter, std::size_t bytes) {
    // An ACK for entry `counter`, held until that entry is durable; then its completion.
    outs.clear();
    const Zxid zxid = Zxid::make(Epoch{1}, static_cast<std::uint32_t>(counter));
    Output& ack = outs.items.emplace_back();
    ack.kind = OutputKind::send_after_durable;
    ack.peer = ServerId{2};
    ack.session = SessionId{1};
    ack.barrier.log_zxid = zxid;
    ack.offset = outs.arena.size();
    outs.arena.resize(outs.arena.size() + bytes, std::byte{7});
    ack.length = bytes;
    gate.on_output(outs, ack, durable, emit);
    EXPECT_EQ(gate.held(), 1u);
    durable.log_zxid = zxid;
    gate.release(durable, emit);
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

// Fills a history with `entries` values of `bytes` each, evicts all but 16, and returns how many
// buffers the eviction freed.
std::size_t frees_evicting_all_but_16(std::size_t bytes, std::uint32_t entries) {
  History h;
  const ByteBuffer payload(bytes, std::byte{0x5a});
  for (std::uint32_t i = 1; i <= entries; ++i) h.append(Zxid::make(Epoch{1}, i), Bytes(payload));
  g_frees = 0;
  g_counting = true;
  h.evict(h.last(), 16);
  g_counting = false;
  EXPECT_EQ(h.size(), 16u);
  return g_frees;
}

TEST(History, EvictedEntriesGiveTheirMemoryBack) {
  // A restart replays a long log into the history; once applied, all but the window is evicted.
  // The ring keeps a popped slot's value until the slot is reused, so an evicted entry's bytes
  // stayed alive (309 MB after replaying 100k 1 KiB records) unless freed on eviction. All but
  // the spares kept for reuse (History::kMaxSpare at most) are freed.
  EXPECT_GE(frees_evicting_all_but_16(1024, 10000), 10000u - 16 - History::kMaxSpare);
}

TEST(History, SparesOfLargeEntriesStayWithinTheirByteBudget) {
  // 1000 entries of 64 KiB: the spares keep at most History::kMaxSpareBytes of them.
  EXPECT_GE(frees_evicting_all_but_16(64 << 10, 1000), 1000u - 16 - History::kMaxSpareBytes / (64 << 10));
}

struct Frame {
  std::size_t from, to;
  SessionId session;
  ByteBuffer bytes;
};

// Allocations of the test world itself (its network and disk queues) are not the host's.
struct NotCounted {
  bool was = std::exchange(g_counting, false);
  ~NotCounted() { g_counting = was; }
};

// One member of a 3-server world on a perfect network and an instant disk: the Effects of a
// core::Host.
struct World;
struct Member final : Effects {
  World* world = nullptr;
  std::size_t index = 0;
  std::deque<std::pair<OutputKind, Output>> disk;
  void send(ServerId peer, SessionId s, Bytes b) override;
  void close_session(ServerId, SessionId, Cause) override {}
  void append(Zxid first, const EntryRange& entries) override {
    NotCounted n;
    Output o;
    o.zxid = Zxid{first.value + static_cast<std::int64_t>(entries.size()) - 1};
    disk.emplace_back(OutputKind::append, o);
  }
  void truncate(Zxid) override {}
  void persist_epochs(Epoch a, Epoch c) override {
    NotCounted n;
    Output o;
    o.accepted = a;
    o.current = c;
    disk.emplace_back(OutputKind::persist_epochs, o);
  }
  void install_snapshot(Zxid, Bytes, Bytes) override {}
  void snapshot_state(Zxid, ByteBuffer&) override {}
  void apply(Zxid, const EntryRange&) override {}
  void role_change(const Output&) override {}
  void write_done(const Output&) override {}
};

struct World {
  std::deque<Frame> net;
  std::array<Member, 3> members;
  std::vector<std::unique_ptr<Host>> hosts;
};

void Member::send(ServerId peer, SessionId s, Bytes b) {
  NotCounted n;
  world->net.push_back(Frame{index, static_cast<std::size_t>(peer.value - 1), s, ByteBuffer(b.begin(), b.end())});
}

struct SteadyCase {
  std::size_t value_bytes;
  bool identified;  // writes carry write ids of 8 clients (exactly-once), else anonymous
  std::size_t batch = 8;     // writes per ClientProposals input
  int rounds = 1000;         // batches in the warm-up, and again in the measured part
};

class SteadyState : public ::testing::TestWithParam<SteadyCase> {};

TEST_P(SteadyState, HostStepAllocatesNothingPerMessage) {
  std::vector<core::Member> members{core::Member{ServerId{1}}, core::Member{ServerId{2}},
                                    core::Member{ServerId{3}}};
  auto cfg = *ClusterConfig::make(members, QuorumVerifier::Kind::majority);
  World w;
  for (std::size_t i = 0; i < 3; ++i) {
    w.members[i].world = &w;
    w.members[i].index = i;
    w.hosts.push_back(std::make_unique<Host>(NodeConfig{cfg, members[i].id}, DurableState{}, w.members[i]));
  }
  std::vector<SessionId> pair_session{SessionId{1}, SessionId{2}, SessionId{3}};  // 01, 02, 12
  auto session_of = [&](std::size_t a, std::size_t b) {
    return pair_session[a + b - 1];
  };
  auto step = [&](std::size_t i, const Input& in) {
    g_counting = true;
    w.hosts[i]->step(in);
    g_counting = false;
  };
  // Durability completes before the frames move, so gated sends may go at once.
  auto settle = [&] {
    for (bool work = true; work;) {
      work = false;
      for (std::size_t i = 0; i < 3; ++i) {
        auto& disk = w.members[i].disk;
        while (!disk.empty()) {
          work = true;
          const auto [kind, o] = disk.front();
          disk.pop_front();
          if (kind == OutputKind::append) step(i, input::LogDurable{o.zxid});
          else step(i, input::EpochsDurable{o.accepted, o.current});
        }
      }
      while (!w.net.empty()) {
        work = true;
        Frame f = std::move(w.net.front());
        w.net.pop_front();
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
  for (std::size_t i = 0; i < 3; ++i) {
    const Node& n = w.hosts[i]->node();
    if (n.state() == PeerState::leading && n.phase() == ZabPhase::broadcast) leader = i;
  }
  ASSERT_LT(leader, 3u);

  const std::string payload(GetParam().value_bytes, 'p');
  std::vector<ClientProposal> batch(GetParam().batch, ClientProposal{0, Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size()), {}});
  std::uint64_t seq = 0;
  auto run = [&](int rounds) {
    for (int r = 0; r < rounds; ++r) {
      if (GetParam().identified) {
        ++seq;
        for (std::size_t k = 0; k < batch.size(); ++k) batch[k].id = WriteId{k + 1, seq};
      }
      step(leader, input::ClientProposals{batch});
      settle();
      if (r % 16 == 0)
        for (std::size_t i = 0; i < 3; ++i) step(i, input::Tick{});
      settle();
    }
  };
  const int rounds = GetParam().rounds;
  const std::size_t entries = static_cast<std::size_t>(rounds) * batch.size();
  g_allocations = 0;
  run(rounds);  // warm up: buffers, rings and the history window reach their working size
  EXPECT_GT(g_allocations, 0u) << "the counter must see the warm-up growing its buffers";
  g_allocations = 0;
  run(rounds);
  EXPECT_EQ(g_allocations, 0u) << "allocations inside Host::step over " << entries
                               << " committed entries";
  EXPECT_EQ(w.hosts[0]->node().applied().counter(), 2 * entries);
  if (GetParam().identified) {
    EXPECT_EQ(w.hosts[0]->node().clients().size(), batch.size());
    EXPECT_EQ(w.hosts[0]->node().clients().find(batch.size())->seq, 2u * static_cast<std::uint64_t>(rounds));
  }
}

INSTANTIATE_TEST_SUITE_P(
    ValueSizes, SteadyState,
    ::testing::Values(SteadyCase{100, false}, SteadyCase{232, false}, SteadyCase{233, false},
                      SteadyCase{1024, false}, SteadyCase{16384, false}, SteadyCase{65536, false},
                      SteadyCase{100, true}, SteadyCase{65536, true},
                      // Batches larger than the 64 spare buffers the history once kept.
                      SteadyCase{16384, false, 128, 100}),
    [](const ::testing::TestParamInfo<SteadyCase>& p) {
      return "bytes" + std::to_string(p.param.value_bytes) + (p.param.identified ? "_ids" : "") +
             (p.param.batch != 8 ? "_batch" + std::to_string(p.param.batch) : "");
    });

}  // namespace
}  // namespace fastzab::core
