// §4.4 the leader's synchronization decision per learner (reference §7 item 18,
// LearnerHandlerTest; I10, I17, I18). A real leader with a known history; a fake learner says
// where it is (FOLLOWERINFO, ACKEPOCH with lastZxid, currentEpoch and — fastzab's extension —
// the zxid its application applied). The stream the leader sends back, up to NEWLEADER, is
// compared with the expected one:
//   DIFF  when the learner's last zxid is in the leader's history (then the missing entries);
//   TRUNC when the learner has entries of an epoch the leader's history continues differently,
//         to the last point both share, never below what the learner applied;
//   SNAP  when the in-memory history cannot bridge the gap (or nothing shared is known).
// Every stream ends with COMMIT of the leader's commit point and NEWLEADER, after the data.
#include <gtest/gtest.h>

#include <memory>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

// accepted 3, current 3; history 1:1 a, 1:2 b, 1:3 c, 2:1 d, 2:2 e, all applied.
DurableImage leader_history() {
  return DurableImage::with(3, 3,
                            {{z(1, 1), "a"}, {z(1, 2), "b"}, {z(1, 3), "c"}, {z(2, 1), "d"},
                             {z(2, 2), "e"}},
                            z(2, 2));
}

std::unique_ptr<Ensemble> leader_n1(const DurableImage& image, std::size_t window = 1024) {
  Spec spec = Spec::majority(3);
  spec.fake({2, 3});
  auto e = std::make_unique<Ensemble>(spec);
  e->disk(1) = image;
  e->config(1).history_window = window;
  e->start(1);
  e->fakes_elect(1, {2, 3});
  EXPECT_EQ(e->state(1), PeerState::leading) << e->transcript().dump();
  return e;
}

std::string show(const Heard& h) {
  std::string s = h.describe();
  if (h.is(PacketType::proposal) || h.is(PacketType::inform)) {
    s += " [";
    for (const Entry& x : h.entries()) s += (s.back() == '[' ? "" : ",") + x.value;
    s += "]";
  } else if (h.is(PacketType::snap)) {
    const auto app = decode_snapshot(Bytes(h.data));
    s += app ? " (" + std::to_string(app->size()) + " entries)" : " (undecodable)";
  }
  return s;
}

// Discovery as learner n2 in (accepted, current, last, applied); returns what follows LEADERINFO
// up to and including NEWLEADER.
std::vector<std::string> sync_stream(Ensemble& e, std::int64_t accepted, std::int32_t current,
                                     Zxid last, Zxid applied, bool zookeeper_ackepoch = false) {
  e.fake_followerinfo(2, 1, Epoch{accepted});
  e.settle();
  const auto info = e.received(2, PacketType::leaderinfo);
  EXPECT_EQ(info.size(), 1u);
  e.clear_inbox(2);
  if (zookeeper_ackepoch) {
    e.fake_ackepoch_zk(2, 1, last, current);
  } else {
    e.fake_ackepoch(2, 1, last, current, applied);
  }
  e.settle();
  std::vector<std::string> stream;
  for (const Heard& h : e.inbox(2)) {
    if (h.kind != core::FrameKind::quorum) continue;
    stream.push_back(show(h));
    if (h.is(PacketType::newleader)) break;
  }
  return stream;
}

using Stream = std::vector<std::string>;

TEST(SyncDecision, S7_18_LearnerHandlerTest_PeerAtLeadersLastZxidGetsEmptyDiff) {
  auto e = leader_n1(leader_history());
  EXPECT_EQ(sync_stream(*e, 3, 3, z(2, 2), z(2, 2)),
            (Stream{"DIFF 2:2", "COMMIT 2:2", "NEWLEADER 4:0"}));
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_PeerOnAPrefixGetsDiffWithTheMissingEntries) {
  auto e = leader_n1(leader_history());
  EXPECT_EQ(sync_stream(*e, 2, 2, z(1, 2), z(1, 2)),
            (Stream{"DIFF 2:2", "PROPOSAL 1:3 [c]", "PROPOSAL 2:1 [d,e]", "COMMIT 2:2",
                    "NEWLEADER 4:0"}));
  // I18: NEWLEADER comes after all sync data; I17: live traffic follows on the same stream.
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_PeerWithSameEpochTailGetsTruncThenTheRest) {
  // The learner logged 1:4 and 1:5 under the epoch-1 leader; the leader's history goes on with
  // epoch 2 after 1:3: TRUNC(1:3), then 2:1 and 2:2 ("peer 4 -> TRUNC(3) then 5").
  auto e = leader_n1(leader_history());
  EXPECT_EQ(sync_stream(*e, 1, 1, z(1, 5), z(1, 2)),
            (Stream{"TRUNC 1:3", "PROPOSAL 2:1 [d,e]", "COMMIT 2:2", "NEWLEADER 4:0"}));
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_PeerBeyondTheLeadersLastGetsTruncToIt) {
  // A deposed epoch-2 leader logged 2:3 alone; the epoch-3 leader stopped at 2:2.
  auto e = leader_n1(leader_history());
  EXPECT_EQ(sync_stream(*e, 2, 2, z(2, 3), z(2, 2)),
            (Stream{"TRUNC 2:2", "COMMIT 2:2", "NEWLEADER 4:0"}));
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_ZooKeeperAckEpochSameEpochTailStillTruncs) {
  // Without the applied zxid (ZooKeeper's 4-byte ACKEPOCH) the same-epoch rule is unchanged.
  auto e = leader_n1(leader_history());
  EXPECT_EQ(sync_stream(*e, 1, 1, z(1, 5), z(1, 2), /*zookeeper_ackepoch=*/true),
            (Stream{"TRUNC 1:3", "PROPOSAL 2:1 [d,e]", "COMMIT 2:2", "NEWLEADER 4:0"}));
}

DurableImage epochs_1_2_4() {
  return DurableImage::with(4, 4, {{z(1, 1), "a"}, {z(2, 1), "b"}, {z(4, 1), "c"}}, z(4, 1));
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_NoCrossEpochTruncWithoutKnownAppliedPoint) {
  // Peer at 3:1, leader history epochs {1, 2, 4}: the point below 3:1 is of another epoch, so
  // ZooKeeper never TRUNCs across it: SNAP.
  auto e = leader_n1(epochs_1_2_4());
  EXPECT_EQ(sync_stream(*e, 3, 3, z(3, 1), z(2, 1), /*zookeeper_ackepoch=*/true),
            (Stream{"SNAP 4:1 (3 entries)", "COMMIT 4:1", "NEWLEADER 5:0"}));
}

TEST(SyncDecision, S7_18_CrossEpochTruncToTheAppliedPointWhenKnown) {
  // fastzab extension: the learner says it applied 2:1, which the leader has. Everything up to
  // it is shared committed history, so TRUNC(2:1) replaces the SNAP (never below applied, I10).
  auto e = leader_n1(epochs_1_2_4());
  EXPECT_EQ(sync_stream(*e, 3, 3, z(3, 1), z(2, 1)),
            (Stream{"TRUNC 2:1", "PROPOSAL 4:1 [c]", "COMMIT 4:1", "NEWLEADER 5:0"}));
}

DurableImage eight_entries(std::int64_t epoch = 1) {
  std::vector<Entry> log;
  for (std::uint32_t c = 1; c <= 8; ++c) log.push_back({z(1, c), "v" + std::to_string(c)});
  return DurableImage::with(epoch, epoch, log, z(1, 8));
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_testTxnLogGap_PeerBelowTheHistoryGetsSnap) {
  // Only 1:7 and 1:8 are kept in memory (history_window 2); the peer at 1:3 cannot be bridged.
  auto e = leader_n1(eight_entries(), 2);
  const Stream stream = sync_stream(*e, 1, 1, z(1, 3), z(1, 3));
  EXPECT_EQ(stream, (Stream{"SNAP 1:8 (8 entries)", "COMMIT 1:8", "NEWLEADER 2:0"}));
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_PeerInsideTheWindowStillGetsDiff) {
  auto e = leader_n1(eight_entries(), 2);
  EXPECT_EQ(sync_stream(*e, 1, 1, z(1, 7), z(1, 7)),
            (Stream{"DIFF 1:8", "PROPOSAL 1:8 [v8]", "COMMIT 1:8", "NEWLEADER 2:0"}));
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_EmptyCommittedLog) {
  // Nothing kept in memory (window 0): the history is just its base 1:8.
  {
    auto e = leader_n1(eight_entries(), 0);
    EXPECT_EQ(sync_stream(*e, 1, 1, z(1, 8), z(1, 8)),
              (Stream{"DIFF 1:8", "COMMIT 1:8", "NEWLEADER 2:0"}));  // peer == last
  }
  {
    // "peer 3 vs last 1": the peer logged 1:9, 1:10 alone; the leader moved on to epoch 2.
    auto e = leader_n1(eight_entries(2), 0);
    EXPECT_EQ(sync_stream(*e, 1, 1, z(1, 10), z(1, 8)),
              (Stream{"TRUNC 1:8", "COMMIT 1:8", "NEWLEADER 3:0"}));
  }
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_EmptyHistoriesGetEmptyDiff) {
  auto e = leader_n1(DurableImage{});
  EXPECT_EQ(sync_stream(*e, 0, 0, z(0, 0), z(0, 0)), (Stream{"DIFF 0:0", "NEWLEADER 1:0"}));
}

TEST(SyncDecision, S7_18_LearnerHandlerTest_SnapCarriesTheLeadersApplication) {
  auto e = leader_n1(eight_entries(), 2);
  sync_stream(*e, 1, 1, z(1, 3), z(1, 3));
  const auto snap = e->received(2, PacketType::snap);
  ASSERT_EQ(snap.size(), 1u);
  const auto app = decode_snapshot(Bytes(snap[0].data));
  ASSERT_TRUE(app.has_value());
  EXPECT_EQ(*app, e->app(1));
}

TEST(SyncDecision, S7_18_LearnerThatAppliedWhatTheLeaderLacksIsRefused_I10) {
  // The learner says it delivered 2:3, which this leader never had: no sync could be correct;
  // the learner is dropped (protocol error) rather than truncated below its applied state.
  auto e = leader_n1(leader_history());
  const Stream stream = sync_stream(*e, 2, 2, z(2, 3), z(2, 3));
  EXPECT_TRUE(stream.empty()) << stream.front();
  EXPECT_EQ(e->node(1).counters().protocol_errors, 1u);
  EXPECT_EQ(e->node(1).counters().learners_dropped, 1u);
}

TEST(SyncDecision, S7_18_FollowerGetsUncommittedTailObserverDoesNot) {
  // The leader logged 2:3 but applied only 2:2. A participant gets 2:3 as a PROPOSAL (it will be
  // committed by the NEWLEADER quorum); an observer only gets what is committed (L:1374-1384).
  DurableImage image = leader_history();
  image.log.push_back({z(2, 3), "f"});
  Spec spec = Spec::majority(3, 1);
  spec.fake({2, 3, 4});
  Ensemble e(spec);
  e.disk(1) = image;
  e.start(1);
  e.fakes_elect(1, {2, 3});
  ASSERT_EQ(e.state(1), PeerState::leading);
  e.fake_followerinfo(4, 1, Epoch{3}, PacketType::observerinfo);
  e.settle();
  EXPECT_TRUE(e.received(4, PacketType::leaderinfo).empty());  // observers fix no epoch
  e.fake_followerinfo(2, 1, Epoch{3});
  e.settle();
  ASSERT_EQ(e.received(4, PacketType::leaderinfo).size(), 1u);
  e.fake_ackepoch(4, 1, z(2, 2), 3, z(2, 2));
  e.settle();
  EXPECT_TRUE(e.received(4, PacketType::diff).empty());  // observers' acks fix nothing either
  e.fake_ackepoch(2, 1, z(2, 2), 3, z(2, 2));
  e.settle();
  Stream follower;
  for (const Heard& h : e.inbox(2)) {
    if (h.kind == core::FrameKind::quorum && !h.is(PacketType::leaderinfo)) {
      follower.push_back(show(h));
    }
  }
  Stream observer;
  for (const Heard& h : e.inbox(4)) {
    if (h.kind == core::FrameKind::quorum && !h.is(PacketType::leaderinfo)) {
      observer.push_back(show(h));
    }
  }
  EXPECT_EQ(follower, (Stream{"DIFF 2:3", "PROPOSAL 2:3 [f]", "COMMIT 2:2", "NEWLEADER 4:0"}));
  EXPECT_EQ(observer, (Stream{"DIFF 2:2", "COMMIT 2:2", "NEWLEADER 4:0"}));
}

}  // namespace
}  // namespace fastzab::test
