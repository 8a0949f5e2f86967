// Crashes and leader changes in the middle of synchronization (reference §7 items 24-27; I5, I6,
// I17, I18, I19). A rejoining follower is crashed, or loses its leader, at every single step of
// its synchronization (each durable completion and each frame delivery is one step); after
// recovery no committed entry is lost and no two members disagree.
//   24 QuorumPeerMainTest.testInconsistentDueToNewLeaderOrder (ZOOKEEPER-3104): SNAP racing
//      live writes, crash after NEWLEADER handling.
//   25 QuorumPeerMainTest.testDiffSyncAfterSnap (ZOOKEEPER-3642): a SNAP-syncing follower loses
//      its leader before the snapshot is on disk, DIFF-syncs with the next one, restarts.
//   26 DIFFSyncConsistencyTest / DIFFSyncTest (ZOOKEEPER-3911/4646/4685/4785): followers fail
//      right after ACK(NEWLEADER) or UPTODATE; a proposal ACK before the NEWLEADER ACK.
//   27 QuorumSyncTest (ZOOKEEPER-4925): a stale follower joins, later leads: no hole.
#include <gtest/gtest.h>

#include <functional>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

// One unit of progress: a durable completion or a frame if there is one, else a tick.
void advance(Ensemble& e) {
  if (!e.step_once()) e.tick_only();
}

bool advance_until(Ensemble& e, const std::function<bool()>& pred, int max_units = 5000) {
  for (int u = 0; u < max_units; ++u) {
    if (pred()) return true;
    advance(e);
  }
  return pred();
}

std::vector<std::string> expected_with(std::vector<std::string> v, const std::string& tail) {
  v.push_back(tail);
  return v;
}

// ---- item 26: the NEWLEADER quorum commits what only the leader had ----

// n3 led epoch 1 and logged "x" (1:2) alone; everyone crashed; n3 and n1 come back (n2 stays
// down). n3 wins, DIFF-syncs 1:2 to n1, and the NEWLEADER quorum {n3, n1} commits it.
Ensemble lone_entry_rejoin() {
  Ensemble e(Spec::majority(3));
  EXPECT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  e.commit(3, {"a"});
  e.hold_link(3, 1);
  e.hold_link(3, 2);
  e.propose(3, {"x"});
  e.settle();
  for (Sid s : {1, 2, 3}) e.crash(s);
  e.hold_link(3, 1, false);
  e.hold_link(3, 2, false);
  e.restart(3);
  e.restart(1);
  return e;
}

TEST(SyncCrash, S7_26_DIFFSyncConsistencyTest_ZOOKEEPER_4646_AckOnlyAfterTheDiffIsDurable) {
  Ensemble e = lone_entry_rejoin();
  ASSERT_TRUE(advance_until(e, [&] { return e.transcript().contains("n1>n3 ACK 2:0"); }))
      << e.transcript().dump();
  // The moment the ACK left, the synced entry and the epoch were on n1's disk (I5).
  EXPECT_TRUE(e.disk(1).logs(z(1, 2)));
  EXPECT_EQ(e.disk(1).current, Epoch{2});
  // Let the leader establish (committing 1:2), then n1 fails before UPTODATE reaches it.
  e.hold_link(3, 1);
  ASSERT_TRUE(advance_until(e, [&] { return e.transcript().contains("n3 LEADING e2 established"); }));
  EXPECT_EQ(e.values(3), (std::vector<std::string>{"a", "x"}));
  e.crash(1);
  e.crash(3);
  e.hold_link(3, 1, false);
  // n1 and n2 form the next quorum: n1's durable 1:2 wins the election; "x" survives.
  e.restart(1);
  e.restart(2);
  ASSERT_EQ(e.elect(), std::optional<Sid>(1)) << e.transcript().dump();
  e.restart(3);
  ASSERT_TRUE(e.elect().has_value());
  e.commit(*e.leader(), {"after"});
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), (std::vector<std::string>{"a", "x", "after"})) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(SyncCrash, S7_26_DIFFSyncTest_CrashFollowerAndLeaderAtEveryStepOfTheSync) {
  // Dry run: how many units until both serve epoch 2.
  int units = 0;
  {
    Ensemble e = lone_entry_rejoin();
    while (units < 5000 && !(e.serving(1) && e.serving(3))) {
      advance(e);
      ++units;
    }
    ASSERT_LT(units, 5000);
  }
  for (int k = 0; k <= units + 2; ++k) {
    SCOPED_TRACE("crash after unit " + std::to_string(k));
    Ensemble e = lone_entry_rejoin();
    for (int u = 0; u < k; ++u) advance(e);
    const bool x_committed = e.up(3) && e.values(3).size() == 2;
    e.crash(1);
    e.crash(3);
    e.restart(1);
    e.restart(2);
    ASSERT_TRUE(e.elect().has_value()) << e.transcript().dump();
    e.restart(3);
    ASSERT_TRUE(e.elect().has_value()) << e.transcript().dump();
    e.commit(*e.leader(), {"after"});
    const auto values = e.values(1);
    for (Sid s : {2, 3}) ASSERT_EQ(e.values(s), values) << s;
    if (x_committed) {
      EXPECT_EQ(values, (std::vector<std::string>{"a", "x", "after"}));
    }
    EXPECT_EQ(values.front(), "a");
    EXPECT_EQ(values.back(), "after");
    ASSERT_TRUE(e.consistent());
  }
}

TEST(SyncCrash, S7_26_DIFFSyncTest_ZOOKEEPER_4685_ProposalAckBeforeNewLeaderAckIsHarmless) {
  // A learner acks a proposal before acking NEWLEADER: not counted, no spurious drop, and the
  // leader establishes once the NEWLEADER ack comes.
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  Ensemble e(spec);
  e.disk(1) = DurableImage::with(1, 1, {{z(1, 1), "a"}, {z(1, 2), "b"}}, z(1, 1));
  e.start(1);
  e.fakes_elect(1, {2, 3});
  e.fake_followerinfo(2, 1, Epoch{1});
  e.settle();
  e.fake_ackepoch(2, 1, z(1, 1), 1, z(1, 1));
  e.settle();
  ASSERT_EQ(e.received(2, PacketType::newleader).size(), 1u);
  e.fake_packet(2, 1, PacketType::ack, z(1, 2));  // too early
  e.settle();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::synchronization);
  EXPECT_EQ(e.node(1).committed(), z(1, 1));
  EXPECT_EQ(e.node(1).counters().learners_dropped, 0u);
  e.fake_packet(2, 1, PacketType::ack, z(2, 0));
  e.settle();
  EXPECT_EQ(e.node(1).phase(), ZabPhase::broadcast);
  EXPECT_EQ(e.received(2, PacketType::uptodate).size(), 1u);
  EXPECT_EQ(e.values(1), (std::vector<std::string>{"a", "b"}));
}

TEST(SyncCrash, S7_26_DIFFSyncTest_FollowerCrashesRightAfterUptodate) {
  Ensemble e(Spec::majority(3));
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  e.propose(3, {"a"});
  e.settle();
  e.crash(1);
  e.commit(3, {"b", "c"});
  e.restart(1);
  ASSERT_TRUE(advance_until(e, [&] { return e.serving(1); }));
  e.crash(1);  // right after UPTODATE
  e.crash(2);  // and the other follower: n1's disk must carry the quorum's history
  e.restart(1);
  ASSERT_EQ(e.elect(), std::optional<Sid>(3));
  e.restart(2);
  ASSERT_TRUE(e.elect().has_value());
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), (std::vector<std::string>{"a", "b", "c"})) << s;
  EXPECT_TRUE(e.consistent());
}

// A follower that was down while a new epoch formed rejoins; the leader's DIFF carries entries
// of that newer epoch, which the follower logs before NEWLEADER makes the epoch current.
Ensemble newer_epoch_rejoin() {
  Ensemble e(Spec::majority(3));
  EXPECT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  e.commit(3, {"a"});
  e.crash(1);
  e.crash(3);
  e.restart(3);
  EXPECT_EQ(e.elect(), std::optional<Sid>(3));
  EXPECT_EQ(e.node(3).current_epoch(), Epoch{2});
  e.commit(3, {"b"});
  e.restart(1);
  return e;
}

TEST(SyncCrash, S7_26_CrashBetweenNewEpochEntriesAndCurrentEpoch_ZOOKEEPER_4643) {
  // n1's disk completes the append of 2:1 but not the currentEpoch write, then n1 crashes: its
  // log has an entry of epoch 2 with currentEpoch 1. It never acknowledged anything of epoch 2,
  // so recovery drops that tail (drop_unacknowledged_tail) and it syncs again.
  Ensemble e = newer_epoch_rejoin();
  const std::size_t mark = e.transcript().size();
  e.hold_disk(1);
  e.settle();
  ASSERT_EQ(e.complete_disk(1, 1), 1u);  // acceptedEpoch 2: ACKEPOCH leaves
  e.settle();
  ASSERT_TRUE(e.transcript().in_order({"n1 append 2:1", "n1 epochs a2 c2"}));
  ASSERT_EQ(e.complete_disk(1, 1), 1u);  // the append of 2:1
  e.settle();
  EXPECT_TRUE(e.disk(1).logs(z(2, 1)));
  EXPECT_EQ(e.disk(1).current, Epoch{1});
  EXPECT_EQ(e.transcript().find("n1>n3 ACK ", mark), e.transcript().size())  // nothing acked
      << e.transcript().dump();
  e.crash(1);
  e.hold_disk(1, false);
  e.restart(1);
  ASSERT_TRUE(e.up(1)) << e.transcript().dump();
  EXPECT_TRUE(e.transcript().contains("n1 recovery truncate 1:1"));
  ASSERT_TRUE(e.run_until([&] { return e.serving(1); }, 60)) << e.transcript().dump();
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), (std::vector<std::string>{"a", "b"})) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(SyncCrash, S7_26_LateJoinerOfANewerEpochCrashesAtEveryStep) {
  auto live = [](Ensemble& e, int u) {
    if (u % 3 == 1 && e.up(3) && e.serving(3)) e.propose(3, {"live-" + std::to_string(u)});
    advance(e);
  };
  int units = 0;
  {
    Ensemble e = newer_epoch_rejoin();
    while (units < 5000 && !e.serving(1)) live(e, units++);
    ASSERT_LT(units, 5000);
  }
  for (int k = 0; k <= units + 2; ++k) {
    SCOPED_TRACE("crash n1 after unit " + std::to_string(k));
    Ensemble e = newer_epoch_rejoin();
    for (int u = 0; u < k; ++u) live(e, u);
    e.crash(1);
    e.restart(1);
    ASSERT_TRUE(e.up(1)) << e.transcript().dump();
    ASSERT_TRUE(e.run_until([&] { return e.serving(1); }, 60)) << e.transcript().dump();
    e.commit(3, {"after"});
    for (Sid s : {1, 2}) ASSERT_EQ(e.values(s), e.values(3)) << s;
    ASSERT_TRUE(e.consistent());
  }
}

// ---- items 24 and 25: SNAP syncs interrupted at every step ----

// n1 missed eight writes that n3 no longer keeps in memory (history_window 2): it gets a SNAP.
// While it syncs, the leader keeps writing ("live-<unit>"), one write every third unit.
struct SnapRejoin {
  Ensemble e;
  std::vector<std::string> committed;
  explicit SnapRejoin(Spec spec) : e(spec) {}
};

std::unique_ptr<SnapRejoin> snap_rejoin() {
  auto r = std::make_unique<SnapRejoin>(Spec::majority(3));
  Ensemble& e = r->e;
  for (Sid s : {1, 2, 3}) e.config(s).history_window = 2;
  EXPECT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  e.commit(3, {"v0"});
  e.crash(1);
  for (int i = 1; i <= 8; ++i) {
    e.propose(3, {"v" + std::to_string(i)});
    e.settle();
  }
  e.tick(2);
  e.restart(1);
  return r;
}

void advance_with_live_writes(SnapRejoin& r, int units) {
  Ensemble& e = r.e;
  for (int u = 0; u < units; ++u) {
    if (u % 3 == 1 && e.up(3) && e.serving(3)) e.propose(3, {"live-" + std::to_string(u)});
    advance(e);
  }
}

int units_until_synced() {
  auto r = snap_rejoin();
  int units = 0;
  while (units < 5000 && !r->e.serving(1)) {
    advance_with_live_writes(*r, 1);
    ++units;
  }
  EXPECT_TRUE(r->e.transcript().contains("n3>n1 SNAP"));
  return units;
}

TEST(SyncCrash, S7_24_QuorumPeerMainTest_testInconsistentDueToNewLeaderOrder_ZOOKEEPER_3104) {
  const int units = units_until_synced();
  ASSERT_LT(units, 5000);
  for (int k = 0; k <= units + 2; ++k) {
    SCOPED_TRACE("crash n1 after unit " + std::to_string(k));
    auto r = snap_rejoin();
    Ensemble& e = r->e;
    advance_with_live_writes(*r, k);
    e.crash(1);
    e.restart(1);
    ASSERT_TRUE(e.run_until([&] { return e.serving(1); }, 60)) << e.transcript().dump();
    e.commit(3, {"after"});
    for (Sid s : {1, 2}) ASSERT_EQ(e.values(s), e.values(3)) << s;
    EXPECT_EQ(e.values(3).back(), "after");
    ASSERT_TRUE(e.consistent());
  }
}

TEST(SyncCrash, S7_24_SnapSyncCrashOfFollowerAndLeaderAtEveryStep) {
  const int units = units_until_synced();
  for (int k = 0; k <= units + 2; ++k) {
    SCOPED_TRACE("crash n1 and n3 after unit " + std::to_string(k));
    auto r = snap_rejoin();
    Ensemble& e = r->e;
    advance_with_live_writes(*r, k);
    const auto committed = e.values(3);
    e.crash(1);
    e.crash(3);
    e.restart(1);
    e.restart(3);
    ASSERT_TRUE(e.elect().has_value()) << e.transcript().dump();
    e.commit(*e.leader(), {"after"});
    const auto values = e.values(1);
    for (Sid s : {2, 3}) ASSERT_EQ(e.values(s), values) << s;
    // Everything the old leader had delivered is still there.
    ASSERT_GE(values.size(), committed.size());
    EXPECT_TRUE(std::equal(committed.begin(), committed.end(), values.begin()));
    ASSERT_TRUE(e.consistent());
  }
}

TEST(SyncCrash, S7_25_QuorumPeerMainTest_testDiffSyncAfterSnap_ZOOKEEPER_3642) {
  // n1 handles SNAP and NEWLEADER but its disk has not installed the snapshot when its leader
  // dies. It then syncs with the next leader (n2) and restarts: nothing lost, nothing diverges.
  auto r = snap_rejoin();
  Ensemble& e = r->e;
  e.hold_disk(1);
  const std::size_t mark = e.transcript().size();
  const auto after_mark = [&](const std::string& line) {
    return e.transcript().find(line, mark) < e.transcript().size();
  };
  ASSERT_TRUE(advance_until(e, [&] { return after_mark("n1 epochs a1 c1"); }, 500))
      << e.transcript().dump();
  EXPECT_TRUE(after_mark("n1 snapshot 1:9")) << e.transcript().dump();
  EXPECT_GT(e.pending_disk(1), 0u);
  const auto committed = e.values(3);
  e.crash(3);  // the leader dies; n1 "exits" its sync
  ASSERT_TRUE(e.run_until([&] { return e.state(1) != PeerState::following || !e.serving(1); }, 5));
  e.hold_disk(1, false);
  ASSERT_EQ(e.elect(), std::optional<Sid>(2)) << e.transcript().dump();
  e.commit(2, {"w"});
  EXPECT_EQ(e.values(1), expected_with(committed, "w"));
  e.crash(1);
  e.restart(1);
  ASSERT_TRUE(e.run_until([&] { return e.serving(1); }, 60));
  e.tick(2);
  EXPECT_EQ(e.values(1), expected_with(committed, "w"));
  e.restart(3);
  ASSERT_TRUE(e.run_until([&] { return e.serving(3); }, 60));
  e.tick(2);
  EXPECT_EQ(e.values(3), expected_with(committed, "w"));
  EXPECT_TRUE(e.consistent());
}

TEST(SyncCrash, S7_25_testDiffSyncAfterSnap_LeaderDiesAtEveryStepOfTheSnapSync) {
  const int units = units_until_synced();
  for (int k = 0; k <= units + 2; ++k) {
    SCOPED_TRACE("leader dies after unit " + std::to_string(k));
    auto r = snap_rejoin();
    Ensemble& e = r->e;
    advance_with_live_writes(*r, k);
    const auto committed = e.values(3);
    e.crash(3);
    ASSERT_EQ(e.elect(), std::optional<Sid>(2)) << e.transcript().dump();
    e.commit(2, {"w"});
    e.crash(1);
    e.restart(1);
    ASSERT_TRUE(e.run_until([&] { return e.serving(1); }, 60));
    e.restart(3);
    ASSERT_TRUE(e.run_until([&] { return e.serving(3); }, 60));
    e.tick(2);
    const auto values = e.values(2);
    for (Sid s : {1, 3}) ASSERT_EQ(e.values(s), values) << s;
    ASSERT_GE(values.size(), committed.size() + 1);
    EXPECT_TRUE(std::equal(committed.begin(), committed.end(), values.begin()));
    EXPECT_EQ(values.back(), "w");
    ASSERT_TRUE(e.consistent());
  }
}

// ---- item 27 ----

TEST(SyncCrash, S7_27_QuorumSyncTest_ZOOKEEPER_4925_StaleFollowerLeadsLaterWithoutAHole) {
  // n3 was down for five writes; it rejoins while the leader keeps writing, then becomes leader
  // itself (highest sid among equals) and serves the others. Its history has no hole.
  Ensemble e(Spec::majority(3));
  e.start(1);
  e.start(2);
  ASSERT_EQ(e.elect(), std::optional<Sid>(2));
  for (int i = 1; i <= 5; ++i) {
    e.propose(2, {"w" + std::to_string(i)});
    e.settle();
  }
  e.tick(2);
  e.start(3);
  int live = 0;
  for (int u = 0; u < 2000 && !e.serving(3); ++u) {
    if (u % 5 == 0 && live < 8 && e.serving(2)) e.propose(2, {"live" + std::to_string(live++)});
    advance(e);
  }
  ASSERT_TRUE(e.serving(3)) << e.transcript().dump();
  EXPECT_GE(live, 2);  // writes raced the synchronization
  e.settle();
  e.tick(2);
  EXPECT_EQ(e.values(3), e.values(2));
  e.crash(2);
  ASSERT_EQ(e.elect(), std::optional<Sid>(3)) << e.transcript().dump();
  // n3's log is contiguous: 1:1 .. 1:n without a gap.
  const auto& log = e.disk(3).log;
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].zxid, z(1, static_cast<std::uint32_t>(i + 1))) << i;
  }
  e.restart(2);
  e.propose(3, {"new"});
  e.settle();
  ASSERT_TRUE(e.run_until([&] { return e.serving(2); }, 60));
  e.tick(2);
  for (Sid s : {1, 2}) EXPECT_EQ(e.values(s), e.values(3)) << s;
  EXPECT_EQ(e.values(3).size(), 5u + static_cast<std::size_t>(live) + 1u);
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
