// Node behaviour on a perfect network and disk (everything arrives, in order, at once), driven
// by hand. The deterministic simulator covers faults; these pin down the happy paths.
#include "engine/core/node.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/host.h"

namespace fastzab::core {
namespace {

struct Frame {
  std::size_t from;
  std::size_t to;
  SessionId session;
  ByteBuffer bytes;
};

// A tiny world: one session per pair, instant FIFO delivery, a disk that completes on demand.
// Each member is the Effects of a core::Host.
class Cluster {
 public:
  struct DiskOp {
    OutputKind kind;
    Zxid zxid;
    Epoch accepted, current;
  };
  struct Member final : Effects {
    Cluster* world = nullptr;
    std::size_t index = 0;
    std::deque<DiskOp> disk;
    std::vector<std::pair<Zxid, std::string>> delivered;

    void send(ServerId peer, SessionId s, Bytes b) override {
      world->net.push_back(Frame{index, *world->config.index_of(peer), s, ByteBuffer(b.begin(), b.end())});
    }
    void close_session(ServerId, SessionId) override {}
    void append(Zxid first, const EntryRange& entries) override {
      disk.push_back({OutputKind::append, Zxid{first.value + static_cast<std::int64_t>(entries.size()) - 1}, {}, {}});
    }
    void truncate(Zxid) override {}
    void persist_epochs(Epoch a, Epoch c) override { disk.push_back({OutputKind::persist_epochs, kNoZxid, a, c}); }
    void install_snapshot(Zxid at, Bytes, Bytes) override {
      disk.push_back({OutputKind::install_snapshot, at, {}, {}});
    }
    void snapshot_state(Zxid, ByteBuffer&) override {}
    void apply(Zxid first, const EntryRange& values) override {
      Zxid z = first;
      for (Bytes e : values) {
        delivered.emplace_back(z, std::string(reinterpret_cast<const char*>(e.data()), e.size()));
        z = z.next();
      }
    }
    void role_change(const Output& o) override {
      if (o.established && o.role == PeerState::leading) world->established.push_back({o.accepted.value, index});
    }
    void write_done(const Output&) override {}
  };

  Cluster(std::size_t voters, std::size_t observers = 0, std::uint32_t max_counter = kMaxZxidCounter) {
    std::vector<core::Member> members;
    for (std::size_t i = 0; i < voters + observers; ++i) {
      members.push_back(core::Member{ServerId{static_cast<std::int64_t>(i + 1)}, i >= voters, 1, -1});
    }
    auto cfg = ClusterConfig::make(members, QuorumVerifier::Kind::majority);
    EXPECT_TRUE(cfg.has_value());
    config = *cfg;
    const std::size_t n = members.size();
    world_members.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      world_members[i].world = this;
      world_members[i].index = i;
      NodeConfig nc{config, members[i].id};
      nc.max_zxid_counter = max_counter;
      hosts.push_back(std::make_unique<Host>(nc, DurableState{}, world_members[i]));
    }
    up.assign(n, true);
  }

  void connect_all() {
    for (std::size_t a = 0; a < hosts.size(); ++a)
      for (std::size_t b = a + 1; b < hosts.size(); ++b) connect(a, b);
  }
  void connect(std::size_t a, std::size_t b) {
    const SessionId s{++next_session};
    session[{a, b}] = s;
    step(a, input::SessionUp{id(b), s});
    step(b, input::SessionUp{id(a), s});
  }
  ServerId id(std::size_t i) const { return config.members()[i].id; }
  const Node& node(std::size_t i) const { return hosts[i]->node(); }
  const std::vector<std::pair<Zxid, std::string>>& delivered(std::size_t i) const {
    return world_members[i].delivered;
  }

  void step(std::size_t i, const Input& in) {
    if (up[i]) hosts[i]->step(in);
  }

  // Completes every pending disk op of every node, then delivers every frame; repeats until quiet.
  void settle(int max_rounds = 10000) {
    for (int r = 0; r < max_rounds; ++r) {
      bool work = false;
      for (std::size_t i = 0; i < hosts.size(); ++i) {
        auto& disk = world_members[i].disk;
        while (!disk.empty()) {
          work = true;
          const DiskOp o = disk.front();
          disk.pop_front();
          if (o.kind == OutputKind::append) {
            step(i, input::LogDurable{o.zxid});
          } else if (o.kind == OutputKind::persist_epochs) {
            step(i, input::EpochsDurable{o.accepted, o.current});
          } else {
            step(i, input::SnapshotInstalled{o.zxid});
          }
        }
      }
      while (!net.empty()) {
        work = true;
        Frame f = std::move(net.front());
        net.pop_front();
        const auto key = std::make_pair(std::min(f.from, f.to), std::max(f.from, f.to));
        if (session[key] != f.session || !up[f.to]) continue;
        step(f.to, input::Message{id(f.from), f.session, Bytes(f.bytes)});
      }
      if (!work) return;
    }
    FAIL() << "cluster did not settle";
  }

  void tick(int n) {
    for (int t = 0; t < n; ++t) {
      for (std::size_t i = 0; i < hosts.size(); ++i) step(i, input::Tick{});
      settle();
    }
  }

  std::optional<std::size_t> leader() const {
    for (std::size_t i = 0; i < hosts.size(); ++i)
      if (up[i] && node(i).state() == PeerState::leading && node(i).phase() == ZabPhase::broadcast) return i;
    return std::nullopt;
  }

  void propose(std::size_t i, const std::vector<std::string>& values) {
    std::vector<ClientProposal> ps;
    for (const auto& v : values) ps.push_back(ClientProposal{++next_tag, Bytes(reinterpret_cast<const std::byte*>(v.data()), v.size()), {}});
    step(i, input::ClientProposals{ps});
  }

  ClusterConfig config;
  std::vector<Member> world_members;  // sized once: the hosts hold references
  std::vector<std::unique_ptr<Host>> hosts;
  std::vector<std::pair<std::int64_t, std::size_t>> established;
  std::vector<bool> up;
  std::deque<Frame> net;
  std::map<std::pair<std::size_t, std::size_t>, SessionId> session;
  std::uint64_t next_session = 0;
  std::uint64_t next_tag = 0;
};

TEST(NodeStartup, RefusesCurrentEpochAboveAcceptedEpoch) {
  auto cfg = ClusterConfig::make({Member{ServerId{1}}}, QuorumVerifier::Kind::majority);
  DurableState st;
  st.accepted_epoch = Epoch{1};
  st.current_epoch = Epoch{2};
  EXPECT_THROW(Node(NodeConfig{*cfg, ServerId{1}}, st), std::invalid_argument);
}

TEST(NodeStartup, RefusesLogNewerThanCurrentEpoch) {
  auto cfg = ClusterConfig::make({Member{ServerId{1}}}, QuorumVerifier::Kind::majority);
  DurableState st;
  st.accepted_epoch = Epoch{1};
  st.current_epoch = Epoch{1};
  st.tail.push_back(LoggedEntry{Zxid::make(Epoch{2}, 1), {}});
  EXPECT_THROW(Node(NodeConfig{*cfg, ServerId{1}}, st), std::invalid_argument);
}

TEST(NodeStartup, RefusesServerIdOutsideConfig) {
  auto cfg = ClusterConfig::make({Member{ServerId{1}}}, QuorumVerifier::Kind::majority);
  EXPECT_THROW(Node(NodeConfig{*cfg, ServerId{7}}, DurableState{}), std::invalid_argument);
}

TEST(NodeCluster, SingleNodeLeadsAndCommitsOnItsOwnDurableLog) {
  Cluster c(1);
  c.tick(5);
  ASSERT_TRUE(c.leader().has_value());
  c.propose(0, {"a", "b"});
  c.settle();
  ASSERT_EQ(c.delivered(0).size(), 2u);
  EXPECT_EQ(c.delivered(0)[0].first, Zxid::make(Epoch{1}, 1));
  EXPECT_EQ(c.delivered(0)[1].second, "b");
}

TEST(NodeCluster, ThreeNodesElectTheLargestIdWhenLogsAreEqual) {
  Cluster c(3);
  c.connect_all();
  c.tick(10);
  const auto l = c.leader();
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(*l, 2u);
  EXPECT_EQ(c.node(0).state(), PeerState::following);
  EXPECT_EQ(c.node(1).state(), PeerState::following);
  EXPECT_EQ(c.node(0).phase(), ZabPhase::broadcast);
  ASSERT_EQ(c.established.size(), 1u);
  EXPECT_EQ(c.established[0].first, 1);
}

TEST(NodeCluster, BatchedProposalCommitsEverywhereInOrder) {
  Cluster c(3);
  c.connect_all();
  c.tick(10);
  const std::size_t l = *c.leader();
  c.propose(l, {"x", "y", "z"});
  c.settle();
  c.propose(l, {"w"});
  c.settle();
  c.tick(2);  // followers learn the last commit
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(c.delivered(i).size(), 4u) << "node " << i;
    EXPECT_EQ(c.delivered(i)[3].second, "w");
    EXPECT_EQ(c.delivered(i)[3].first, Zxid::make(Epoch{1}, 4));
  }
}

// The leader encodes a batch's PROPOSAL once: every follower's send output points at the same
// bytes of the output arena.
TEST(NodeCluster, ProposalFramesAreEncodedOnceForAllFollowers) {
  Cluster c(5);
  c.connect_all();
  c.tick(10);
  const std::size_t l = *c.leader();
  c.propose(l, {"x", "y"});
  const Outputs& out = c.hosts[l]->last_outputs();
  std::vector<const Output*> proposals;
  for (const Output& o : out.items) {
    if (o.kind != OutputKind::send) continue;
    const auto f = decode_frame(out.bytes(o));
    if (f && f->kind == FrameKind::quorum && f->packet.type == PacketType::proposal) proposals.push_back(&o);
  }
  ASSERT_EQ(proposals.size(), 4u);
  std::vector<std::int64_t> peers;
  for (const Output* o : proposals) {
    EXPECT_EQ(o->offset, proposals[0]->offset);
    EXPECT_EQ(o->length, proposals[0]->length);
    peers.push_back(o->peer.value);
  }
  std::sort(peers.begin(), peers.end());
  EXPECT_EQ(std::adjacent_find(peers.begin(), peers.end()), peers.end()) << "one frame per follower";
  c.settle();
  c.tick(2);
  for (std::size_t i = 0; i < 5; ++i) ASSERT_EQ(c.delivered(i).size(), 2u) << "node " << i;
}

TEST(NodeCluster, ObserverGetsCommitsButNeverVotes) {
  Cluster c(3, 1);
  c.connect_all();
  c.tick(10);
  ASSERT_TRUE(c.leader().has_value());
  EXPECT_EQ(c.node(3).state(), PeerState::observing);
  c.propose(*c.leader(), {"o1", "o2"});
  c.settle();
  ASSERT_EQ(c.delivered(3).size(), 2u);
  EXPECT_EQ(c.delivered(3)[1].second, "o2");
}

TEST(NodeCluster, ZxidCounterExhaustionForcesANewEpoch) {
  Cluster c(3, 0, 3);
  c.connect_all();
  c.tick(10);
  const std::size_t l = *c.leader();
  c.propose(l, {"1", "2", "3", "4"});  // the 4th would need counter 4 > max 3
  c.settle();
  c.tick(30);
  ASSERT_TRUE(c.leader().has_value());
  EXPECT_GE(c.node(*c.leader()).current_epoch().value, 2);
  c.propose(*c.leader(), {"after"});
  c.settle();
  c.tick(2);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(c.delivered(i).size(), 4u) << "node " << i;
    EXPECT_EQ(c.delivered(i)[3].second, "after");
    EXPECT_EQ(c.delivered(i)[3].first.counter(), 1u);
  }
}


// Every append and deliver output is one batch a host can decode: at most max_batch_entries
// entries (kMaxBatchEntries at most). A server restarting with a long committed tail delivered it
// in one output of every entry, which a host's decode_batch refused above kMaxBatchEntries (found
// by a real cluster: a restarted leader with 100k entries aborted on delivery).
TEST(NodeBatches, DeliverOutputsNeverExceedTheBatchLimit) {
  auto cfg = ClusterConfig::make({Member{ServerId{1}}}, QuorumVerifier::Kind::majority);
  ASSERT_TRUE(cfg.has_value());
  NodeConfig nc{*cfg, ServerId{1}};
  nc.max_batch_entries = 16;
  DurableState st;
  st.accepted_epoch = Epoch{1};
  st.current_epoch = Epoch{1};
  for (std::uint32_t k = 1; k <= 100; ++k) {
    ByteBuffer entry;
    encode_entry_header(WriteId{}, entry);
    entry.resize(entry.size() + 3, std::byte{'x'});
    st.tail.push_back(LoggedEntry{Zxid::make(Epoch{1}, k), std::move(entry)});
  }
  Node node(nc, std::move(st));
  std::size_t delivered = 0;
  std::deque<Input> inputs;
  for (int t = 0; t < 50 && delivered < 100; ++t) {
    inputs.push_back(input::Tick{});
    while (!inputs.empty()) {
      Outputs out;
      node.step(inputs.front(), out);
      inputs.pop_front();
      for (const Output& o : out.items) {
        if (o.kind == OutputKind::deliver || o.kind == OutputKind::append) {
          ASSERT_LE(o.count, 16u) << to_string(o.kind);
          const EntryRange entries = node.entries(o);
          ASSERT_EQ(entries.size(), o.count);
          for (Bytes e : entries) {
            // Deliver outputs view the values, append outputs the whole entries.
            EXPECT_EQ(e.size(), o.kind == OutputKind::deliver ? 3u : 4u);
          }
        }
        if (o.kind == OutputKind::deliver) delivered += o.count;
        if (o.kind == OutputKind::append) {
          inputs.push_back(input::LogDurable{Zxid{o.zxid.value + static_cast<std::int64_t>(o.count) - 1}});
        }
        if (o.kind == OutputKind::persist_epochs) {
          inputs.push_back(input::EpochsDurable{o.accepted, o.current});
        }
      }
    }
  }
  EXPECT_EQ(delivered, 100u);
}
}  // namespace
}  // namespace fastzab::core
