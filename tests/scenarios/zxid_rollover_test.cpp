// §3 and I15: the zxid counter never wraps into the epoch (reference §7 item 32,
// ZxidRolloverTest, ZOOKEEPER-1277). NodeConfig.max_zxid_counter is lowered so that a few writes
// exhaust an epoch: the write that would pass it is rejected with zxid_exhausted, the leader
// steps down, a new epoch is elected, the data written before is intact and writes continue;
// repeated over several rollovers and restarts.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

Spec small_counter(std::uint32_t max_counter) {
  Spec spec = Spec::majority(3);
  spec.tuning.max_zxid_counter = max_counter;
  return spec;
}

TEST(ZxidRollover, S7_32_ZxidRolloverTest_ZOOKEEPER_1277_RepeatedRolloversAndRestarts) {
  Ensemble e(small_counter(3));
  e.start_all();
  std::vector<std::string> written;
  std::int64_t epoch = 0;
  for (int rollover = 0; rollover < 4; ++rollover) {
    SCOPED_TRACE("rollover " + std::to_string(rollover));
    const auto leader = e.elect();
    ASSERT_TRUE(leader.has_value()) << e.transcript().dump();
    ASSERT_GT(e.node(*leader).current_epoch().value, epoch);
    epoch = e.node(*leader).current_epoch().value;
    // Counters 1..3 are usable; the write that would take counter 4 fails.
    for (std::uint32_t c = 1; c <= 3; ++c) {
      const std::string v = "e" + std::to_string(epoch) + "-" + std::to_string(c);
      const auto tags = e.propose(*leader, {v});
      e.settle();
      ASSERT_EQ(e.accepted(tags[0]), std::optional<Zxid>(z(epoch, c)));
      written.push_back(v);
    }
    const auto tags = e.propose(*leader, {"overflow"});
    e.settle();
    EXPECT_EQ(e.rejected(tags[0]), std::optional(core::RejectReason::zxid_exhausted));
    EXPECT_NE(e.state(*leader), PeerState::leading);
    for (Sid s : {1, 2, 3}) {
      EXPECT_LE(e.node(s).last_logged().counter(), 3u) << s;
      EXPECT_EQ(e.node(s).last_logged().epoch().value, epoch) << s;
    }
    // Restart one member between rollovers.
    const Sid victim = static_cast<Sid>(rollover % 3) + 1;
    e.crash(victim);
    e.restart(victim);
  }
  ASSERT_TRUE(e.elect().has_value());
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), written) << s;
  EXPECT_FALSE(e.transcript().contains("overflow"));
  EXPECT_TRUE(e.consistent());
}

TEST(ZxidRollover, S7_32_ZxidRolloverTest_BatchCrossingTheLimit) {
  // One batch of four with three counters left: three get zxids, the fourth is refused; the
  // three are committed in the next epoch; a retry of the fourth succeeds there.
  Ensemble e(small_counter(3));
  const auto leader = e.start_and_elect();
  ASSERT_TRUE(leader.has_value());
  const auto tags = e.propose(*leader, {"a", "b", "c", "d"});
  e.settle();
  EXPECT_EQ(e.accepted(tags[0]), std::optional<Zxid>(z(1, 1)));
  EXPECT_EQ(e.accepted(tags[2]), std::optional<Zxid>(z(1, 3)));
  EXPECT_EQ(e.rejected(tags[3]), std::optional(core::RejectReason::zxid_exhausted));
  const auto next = e.elect();
  ASSERT_TRUE(next.has_value()) << e.transcript().dump();
  EXPECT_EQ(e.node(*next).current_epoch(), Epoch{2});
  const auto retry = e.propose(*next, {"d"});
  e.settle();
  EXPECT_EQ(e.accepted(retry[0]), std::optional<Zxid>(z(2, 1)));
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), (std::vector<std::string>{"a", "b", "c", "d"})) << s;
  EXPECT_TRUE(e.consistent());
}

TEST(ZxidRollover, S7_32_ZxidRolloverTest_OneWritePerEpoch) {
  // The extreme: one usable counter per epoch. Every second write forces an election; every
  // accepted write is committed with counter 1 of its own epoch.
  Ensemble e(small_counter(1));
  e.start_all();
  std::vector<std::string> written;
  std::vector<Zxid> zxids;
  for (int i = 0; i < 5; ++i) {
    const auto leader = e.elect();
    ASSERT_TRUE(leader.has_value()) << e.transcript().dump();
    const auto tags = e.propose(*leader, {"w" + std::to_string(i), "refused"});
    e.settle();
    ASSERT_TRUE(e.accepted(tags[0]).has_value());
    EXPECT_EQ(e.accepted(tags[0])->counter(), 1u);
    EXPECT_EQ(e.rejected(tags[1]), std::optional(core::RejectReason::zxid_exhausted));
    written.push_back("w" + std::to_string(i));
    zxids.push_back(*e.accepted(tags[0]));
  }
  ASSERT_TRUE(e.elect().has_value());
  e.tick(2);
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), written) << s;
  for (std::size_t i = 1; i < zxids.size(); ++i) EXPECT_GT(zxids[i].epoch(), zxids[i - 1].epoch());
  EXPECT_TRUE(e.consistent());
}

}  // namespace
}  // namespace fastzab::test
