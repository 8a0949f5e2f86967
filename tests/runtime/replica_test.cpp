// Suite `runtime`: the Replica (engine/runtime/replica.h) with everything real: the core, the
// io_uring TCP transport on 127.0.0.1 with ephemeral ports, and logs in temporary directories.
// Three (or more) replicas run in this one thread, each given a short turn in rotation, so a
// test needs no locks and stays bounded: every wait has a deadline and fails the test past it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/runtime/replica.h"

namespace fastzab::runtime {
namespace {

using namespace std::chrono_literals;

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// The application: the list of applied entries. Its snapshot is that list, encoded.
class ListMachine final : public StateMachine {
 public:
  struct Entry {
    std::uint64_t zxid;
    std::string value;
    bool operator==(const Entry&) const = default;
  };
  std::vector<Entry> entries;
  std::uint64_t restored_at = 0;
  int restores = 0;

  void apply(std::uint64_t zxid, std::span<const std::byte> e) override {
    entries.push_back(Entry{zxid, std::string(reinterpret_cast<const char*>(e.data()), e.size())});
  }
  std::vector<std::byte> snapshot() override {
    std::string s;
    for (const Entry& e : entries) {
      s += std::to_string(e.zxid) + " " + std::to_string(e.value.size()) + " " + e.value;
    }
    return bytes_of(s);
  }
  void restore(std::uint64_t zxid, std::span<const std::byte> snap) override {
    entries.clear();
    const std::string s(reinterpret_cast<const char*>(snap.data()), snap.size());
    std::size_t pos = 0;
    while (pos < s.size()) {
      std::size_t sp1 = s.find(' ', pos), sp2 = s.find(' ', sp1 + 1);
      ASSERT_NE(sp2, std::string::npos);
      const std::uint64_t z = std::stoull(s.substr(pos, sp1 - pos));
      const std::size_t n = std::stoul(s.substr(sp1 + 1, sp2 - sp1 - 1));
      entries.push_back(Entry{z, s.substr(sp2 + 1, n)});
      pos = sp2 + 1 + n;
    }
    restored_at = zxid;
    ++restores;
  }
};

struct Server {
  std::uint64_t id = 0;
  std::uint16_t port = 0;
  std::string dir;
  ListMachine app;
  std::unique_ptr<Replica> replica;
  std::map<std::uint64_t, std::uint64_t> committed;  // submit() tag -> zxid
  std::map<std::uint64_t, WriteOutcome> failed;
  bool paused = false;  // gets no turns (a stopped process: its sockets stay open)
};

class Cluster {
 public:
  explicit Cluster(std::size_t n, std::size_t history_window = 1024) : history_(history_window) {
    char tmpl[] = "/tmp/fastzab-replica-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    // Ports: let the kernel pick for the first start, then keep them for restarts.
    for (std::size_t i = 0; i < n; ++i) {
      auto s = std::make_unique<Server>();
      s->id = i + 1;
      s->dir = root_ + "/s" + std::to_string(i + 1);
      servers_.push_back(std::move(s));
    }
    reserve_ports();
    for (std::size_t i = 0; i < n; ++i) start(i);
  }
  ~Cluster() {
    for (auto& s : servers_) s->replica.reset();
    std::filesystem::remove_all(root_);
  }

  Server& at(std::size_t i) { return *servers_[i]; }
  std::size_t size() const { return servers_.size(); }

  void start(std::size_t i) {
    Server& s = *servers_[i];
    ReplicaOptions o;
    std::vector<core::Member> members;
    for (auto& m : servers_) members.push_back(core::Member{core::ServerId{static_cast<std::int64_t>(m->id)}});
    auto cluster = core::ClusterConfig::make(members, core::QuorumVerifier::Kind::majority);
    ASSERT_TRUE(cluster);
    o.node.cluster = *cluster;
    o.node.self = core::ServerId{static_cast<std::int64_t>(s.id)};
    o.node.history_window = history_;
    o.tick = 20ms;
    o.log_dir = s.dir;
    o.log.cluster_id = 77;
    o.transport.self_id = s.id;
    o.transport.cluster_id = 77;
    o.transport.secret.fill(0x42);
    o.transport.listen_port = s.port;
    o.transport.poll_mode = net::PollMode::blocking;
    o.transport.reconnect_min = 5ms;
    o.transport.reconnect_max = 100ms;
    for (auto& m : servers_) {
      if (m->id != s.id) o.transport.peers.push_back(net::PeerAddress{m->id, "127.0.0.1", m->port});
    }
    s.app = ListMachine{};
    ReplicaHooks hooks;
    Server* sp = &s;
    hooks.committed = [sp](std::uint64_t tag, std::uint64_t zxid) { sp->committed[tag] = zxid; };
    hooks.failed = [sp](std::uint64_t tag, WriteOutcome why) { sp->failed[tag] = why; };
    auto r = Replica::open(std::move(o), s.app, std::move(hooks));
    ASSERT_TRUE(r) << r.error().message;
    s.replica = std::move(*r);
  }
  void stop(std::size_t i) { servers_[i]->replica.reset(); }

  // Gives every running replica turns until `done()` or the deadline; false on timeout.
  template <class F>
  bool run_until(F&& done, std::chrono::milliseconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& s : servers_) {
        if (!s->replica || s->paused) continue;
        auto r = s->replica->run_once(200us);
        EXPECT_TRUE(r) << "server " << s->id << ": " << r.error().message;
        if (!r) return false;
      }
      if (done()) return true;
    }
    return false;
  }

  // The index of the established leader whose followers are all in broadcast, if any.
  std::optional<std::size_t> leader() {
    std::optional<std::size_t> l;
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      auto& s = servers_[i];
      if (!s->replica) continue;
      const auto& n = s->replica->node();
      if (n.state() == core::PeerState::leading && n.phase() == core::ZabPhase::broadcast) l = i;
    }
    if (!l) return l;
    const auto lid = static_cast<std::int64_t>(servers_[*l]->id);
    for (auto& s : servers_) {
      if (!s->replica) continue;
      const auto& n = s->replica->node();
      if (n.phase() != core::ZabPhase::broadcast || n.leader().value != lid) return std::nullopt;
    }
    return l;
  }

 private:
  void reserve_ports() {
    // Bind each transport once to learn an ephemeral port, then reuse it: peers need to know
    // every port before any replica starts.
    for (auto& s : servers_) {
      net::TransportConfig c;
      c.self_id = s->id;
      c.cluster_id = 77;
      auto t = net::Transport::open(c);
      ASSERT_TRUE(t) << t.error().to_string();
      s->port = (*t)->listen_port();
    }
  }

  std::size_t history_;
  std::string root_;
  std::vector<std::unique_ptr<Server>> servers_;
};

std::uint64_t g_tag = 0;

// Proposes `n` entries at the leader and runs until every running server applied them.
void write_and_wait(Cluster& c, std::size_t leader, int n, const std::string& prefix) {
  Server& l = c.at(leader);
  const std::size_t before = l.app.entries.size();
  for (int i = 0; i < n; ++i) {
    l.replica->submit(++g_tag, bytes_of(prefix + std::to_string(i)));
  }
  ASSERT_TRUE(c.run_until([&] {
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (c.at(i).replica && c.at(i).app.entries.size() < before + static_cast<std::size_t>(n)) {
        return false;
      }
    }
    return true;
  })) << "entries were not applied everywhere in time";
}

TEST(Replica, ThreeServersElectALeaderCommitInOrderAndAgree) {
  Cluster c(3);
  std::optional<std::size_t> l;
  ASSERT_TRUE(c.run_until([&] { return (l = c.leader()).has_value(); })) << "no leader";
  write_and_wait(c, *l, 500, "v");
  const auto& want = c.at(*l).app.entries;
  ASSERT_EQ(want.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(want[static_cast<std::size_t>(i)].value, "v" + std::to_string(i));
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(c.at(i).app.entries, want) << "server " << i + 1;
  // Every write committed at the zxid it was applied at.
  std::size_t k = 0;
  for (const auto& [tag, zxid] : c.at(*l).committed) {
    ASSERT_LT(k, want.size());
    EXPECT_EQ(zxid, want[k++].zxid);
  }
  EXPECT_EQ(k, 500u);
  // And the logs hold them durably.
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_GE(c.at(i).replica->log().durable_zxid(), want.back().zxid);
  }
}

// A follower refuses a value over the core's entry limit itself: nothing reaches the leader.
TEST(Replica, AFollowerRefusesATooLargeWriteWithoutForwardingIt) {
  Cluster c(3);
  std::optional<std::size_t> l;
  ASSERT_TRUE(c.run_until([&] { return (l = c.leader()).has_value(); }));
  const std::size_t f = (*l + 1) % 3;
  ASSERT_TRUE(c.run_until([&] {
    return c.at(f).replica->node().phase() == core::ZabPhase::broadcast;
  }));
  const std::uint64_t tag = ++g_tag;
  c.at(f).replica->submit(tag, std::vector<std::byte>((1u << 20) + 1, std::byte{'x'}));
  ASSERT_TRUE(c.run_until([&] { return c.at(f).failed.count(tag) == 1; }));
  EXPECT_EQ(c.at(f).failed[tag], WriteOutcome::too_large);
  EXPECT_EQ(c.at(*l).replica->node().last_logged(), c.at(f).replica->node().last_logged());
}

// submit() at the leader proposes; at a follower it forwards to the leader; either way the
// write ends as committed only once the submitting server applied it.
TEST(Replica, SubmitCommitsThroughTheLeaderAndThroughAFollower) {
  Cluster c(3);
  std::optional<std::size_t> l;
  ASSERT_TRUE(c.run_until([&] { return (l = c.leader()).has_value(); }));
  const std::size_t f = (*l + 1) % 3;
  for (int i = 0; i < 50; ++i) {
    c.at(*l).replica->submit(1000 + static_cast<std::uint64_t>(i), bytes_of("L" + std::to_string(i)));
    c.at(f).replica->submit(2000 + static_cast<std::uint64_t>(i), bytes_of("F" + std::to_string(i)));
  }
  ASSERT_TRUE(c.run_until([&] {
    return c.at(*l).committed.size() == 50 && c.at(f).committed.size() == 50;
  })) << "leader committed " << c.at(*l).committed.size() << ", follower "
      << c.at(f).committed.size() << ", follower failed " << c.at(f).failed.size();
  EXPECT_TRUE(c.at(f).failed.empty());
  // Each committed zxid holds that write's value, on the server that reported it.
  for (Server* s : {&c.at(*l), &c.at(f)}) {
    for (const auto& [tag, zxid] : s->committed) {
      const std::string want = (tag >= 2000 ? "F" : "L") + std::to_string(tag % 1000);
      auto it = std::find_if(s->app.entries.begin(), s->app.entries.end(),
                             [&](const ListMachine::Entry& e) { return e.zxid == zxid; });
      ASSERT_NE(it, s->app.entries.end());
      EXPECT_EQ(it->value, want);
    }
  }
  // With no leader reachable, a follower's write fails at once as no_leader.
  const std::size_t other = (*l + 2) % 3;
  c.stop(*l);
  c.stop(other);
  ASSERT_TRUE(c.run_until([&] { return c.at(f).replica->node().state() == core::PeerState::looking; }));
  c.at(f).replica->submit(3000, bytes_of("x"));
  ASSERT_TRUE(c.run_until([&] { return c.at(f).failed.count(3000) == 1; }));
  EXPECT_EQ(c.at(f).failed[3000], WriteOutcome::no_leader);
}

TEST(Replica, LeaderLossElectsANewLeaderAndKeepsEveryAcknowledgedWrite) {
  Cluster c(3);
  std::optional<std::size_t> l;
  ASSERT_TRUE(c.run_until([&] { return (l = c.leader()).has_value(); }));
  write_and_wait(c, *l, 200, "a");
  const auto acked = c.at(*l).app.entries;
  const std::size_t old = *l;
  c.stop(old);
  std::optional<std::size_t> nl;
  ASSERT_TRUE(c.run_until([&] { return (nl = c.leader()).has_value(); })) << "no new leader";
  ASSERT_NE(*nl, old);
  write_and_wait(c, *nl, 100, "b");
  for (std::size_t i = 0; i < 3; ++i) {
    if (i == old) continue;
    const auto& e = c.at(i).app.entries;
    ASSERT_EQ(e.size(), 300u);
    EXPECT_TRUE(std::equal(acked.begin(), acked.end(), e.begin())) << "server " << i + 1;
  }
  // The old leader restarts, recovers its log and catches up.
  c.start(old);
  ASSERT_TRUE(c.run_until([&] {
    return c.leader().has_value() && c.at(old).app.entries.size() == 300u;
  })) << "the old leader did not catch up";
  EXPECT_EQ(c.at(old).app.entries, c.at(*nl).app.entries);
}

// ZAB's TRUNC: a leader logs proposals no follower receives (they are paused), then dies; the
// others elect a new leader and commit more; the old leader restarts and must drop the
// proposals it alone logged, ending with exactly the committed history.
TEST(Replica, AnOldLeaderTruncatesProposalsThatNeverCommitted) {
  Cluster c(3);
  std::optional<std::size_t> l;
  ASSERT_TRUE(c.run_until([&] { return (l = c.leader()).has_value(); }));
  write_and_wait(c, *l, 20, "c");
  const std::size_t old = *l;
  for (std::size_t i = 0; i < 3; ++i) c.at(i).paused = i != old;
  for (int i = 0; i < 30; ++i) c.at(old).replica->submit(++g_tag, bytes_of("lost" + std::to_string(i)));
  // The old leader logs them durably; nobody else hears of them.
  ASSERT_TRUE(c.run_until([&] { return c.at(old).replica->log().durable_zxid() >=
                                       c.at(old).app.entries.back().zxid + 30; }, 5s));
  c.stop(old);
  for (std::size_t i = 0; i < 3; ++i) c.at(i).paused = false;
  std::optional<std::size_t> nl;
  ASSERT_TRUE(c.run_until([&] { return (nl = c.leader()).has_value(); }));
  write_and_wait(c, *nl, 10, "n");
  c.start(old);
  ASSERT_TRUE(c.run_until([&] {
    return c.leader().has_value() && c.at(old).app.entries.size() == 30u;
  })) << "the old leader did not catch up";
  EXPECT_EQ(c.at(old).app.entries, c.at(*nl).app.entries);
  for (const auto& e : c.at(old).app.entries) EXPECT_EQ(e.value.rfind("lost", 0), std::string::npos);
  EXPECT_GE(c.at(old).replica->counters().truncations, 1u);
  EXPECT_GE(c.at(old).replica->counters().records_truncated, 30u);
  EXPECT_EQ(c.at(old).replica->log().last_zxid(), c.at(*nl).replica->log().last_zxid());
}

TEST(Replica, AFarBehindServerCatchesUpBySnapshot) {
  Cluster c(3, /*history_window=*/64);
  std::optional<std::size_t> l;
  ASSERT_TRUE(c.run_until([&] { return (l = c.leader()).has_value(); }));
  const std::size_t lagging = (*l + 1) % 3;
  c.stop(lagging);
  write_and_wait(c, *l, 400, "s");
  c.start(lagging);
  ASSERT_TRUE(c.run_until([&] { return c.at(lagging).app.entries.size() == 400u; }));
  EXPECT_EQ(c.at(lagging).app.entries, c.at(*l).app.entries);
  EXPECT_GE(c.at(lagging).replica->counters().snapshots_installed, 1u);
  EXPECT_GE(c.at(lagging).app.restores, 1);
}

TEST(Replica, RestartOfEveryServerRecoversTheCommittedHistory) {
  Cluster c(3);
  std::optional<std::size_t> l;
  ASSERT_TRUE(c.run_until([&] { return (l = c.leader()).has_value(); }));
  write_and_wait(c, *l, 300, "r");
  const auto want = c.at(*l).app.entries;
  for (std::size_t i = 0; i < 3; ++i) c.stop(i);
  for (std::size_t i = 0; i < 3; ++i) c.start(i);
  ASSERT_TRUE(c.run_until([&] {
    if (!c.leader()) return false;
    for (std::size_t i = 0; i < 3; ++i) {
      if (c.at(i).app.entries.size() < want.size()) return false;
    }
    return true;
  }));
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(std::equal(want.begin(), want.end(), c.at(i).app.entries.begin()))
        << "server " << i + 1;
  }
}

}  // namespace
}  // namespace fastzab::runtime
