// Node behaviour on a perfect network and disk: direct Node start-up and batch checks, and small
// clusters on the shared test world (tests/support/) with its instant scheduler. The
// deterministic simulator covers faults; these pin down the happy paths.
#include "engine/core/node.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/ensemble.h"

namespace fastzab::core {
namespace {

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

// The NodeCluster tests run on the shared test world (tests/support/ensemble.h) with its instant
// scheduler: settle() completes every disk and delivers every frame until nothing moves.
using test::Ensemble;
using test::Spec;
using test::z;

TEST(NodeCluster, SingleNodeLeadsAndCommitsOnItsOwnDurableLog) {
  Ensemble e(Spec::majority(1));
  ASSERT_EQ(e.start_and_elect(), std::optional<test::Sid>(1));
  e.propose(1, {"a", "b"});
  e.settle();
  ASSERT_EQ(e.app(1).size(), 2u);
  EXPECT_EQ(e.app(1)[0].zxid, z(1, 1));
  EXPECT_EQ(e.app(1)[1].value, "b");
  EXPECT_TRUE(e.consistent());
}

TEST(NodeCluster, ThreeNodesElectTheLargestIdWhenLogsAreEqual) {
  Ensemble e(Spec::majority(3));
  ASSERT_EQ(e.start_and_elect(), std::optional<test::Sid>(3));
  EXPECT_EQ(e.state(1), PeerState::following);
  EXPECT_EQ(e.state(2), PeerState::following);
  EXPECT_EQ(e.node(1).phase(), ZabPhase::broadcast);
  EXPECT_EQ(e.transcript().grep("LEADING"), std::vector<std::string>({"n3 LEADING", "n3 LEADING e1 established"}));
}

TEST(NodeCluster, BatchedProposalCommitsEverywhereInOrder) {
  Ensemble e(Spec::majority(3));
  const auto l = e.start_and_elect();
  ASSERT_TRUE(l.has_value());
  e.propose(*l, {"x", "y", "z"});
  e.settle();
  e.propose(*l, {"w"});
  e.settle();
  e.tick(2);  // followers learn the last commit
  for (test::Sid s : {1, 2, 3}) {
    ASSERT_EQ(e.app(s).size(), 4u) << "n" << s;
    EXPECT_EQ(e.app(s)[3], (test::Entry{z(1, 4), "w"}));
  }
  EXPECT_TRUE(e.consistent());
}

// The leader encodes a batch's PROPOSAL once: every follower's send output points at the same
// bytes of the output arena.
TEST(NodeCluster, ProposalFramesAreEncodedOnceForAllFollowers) {
  Ensemble e(Spec::majority(5));
  const auto l = e.start_and_elect();
  ASSERT_TRUE(l.has_value());
  e.propose(*l, {"x", "y"});
  const Outputs& out = e.last_outputs(*l);
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
  e.settle();
  e.tick(2);
  for (test::Sid s : e.sids()) ASSERT_EQ(e.values(s), (std::vector<std::string>{"x", "y"})) << "n" << s;
}

TEST(NodeCluster, ObserverGetsCommitsButNeverVotes) {
  Ensemble e(Spec::majority(3, 1));
  const auto l = e.start_and_elect();
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(e.state(4), PeerState::observing);
  e.propose(*l, {"o1", "o2"});
  e.settle();
  EXPECT_EQ(e.values(4), (std::vector<std::string>{"o1", "o2"}));
}

TEST(NodeCluster, ZxidCounterExhaustionForcesANewEpoch) {
  Spec spec = Spec::majority(3);
  spec.tuning.max_zxid_counter = 3;
  Ensemble e(spec);
  const auto l = e.start_and_elect();
  ASSERT_TRUE(l.has_value());
  e.propose(*l, {"1", "2", "3", "4"});  // the 4th would need counter 4 > max 3
  e.settle();
  e.tick(30);
  ASSERT_TRUE(e.leader().has_value());
  EXPECT_GE(e.node(*e.leader()).current_epoch().value, 2);
  e.propose(*e.leader(), {"after"});
  e.settle();
  e.tick(2);
  for (test::Sid s : {1, 2, 3}) {
    ASSERT_EQ(e.app(s).size(), 4u) << "n" << s;
    EXPECT_EQ(e.app(s)[3].value, "after");
    EXPECT_EQ(e.app(s)[3].zxid.counter(), 1u);
  }
  EXPECT_TRUE(e.consistent());
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
