// Ring against std::deque on random operation sequences (a differential test), plus the
// durability tracker's ordering rules.
#include "engine/core/ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>

#include "engine/core/durability.h"

namespace fastzab::core {
namespace {

TEST(Ring, MatchesDequeOnRandomOperations) {
  std::mt19937_64 rng(20261125);
  for (int run = 0; run < 200; ++run) {
    Ring<int> ring;
    std::deque<int> model;
    for (int op = 0; op < 2000; ++op) {
      const auto r = rng() % 10;
      if (r < 5 || model.empty()) {
        const int v = static_cast<int>(rng() % 100000);
        ring.push_back(v);
        model.push_back(v);
      } else if (r < 8) {
        ring.pop_front();
        model.pop_front();
      } else if (r < 9) {
        ring.pop_back();
        model.pop_back();
      } else {
        const std::size_t i = rng() % model.size();
        ring[i] += 1;
        model[i] += 1;
      }
      ASSERT_EQ(ring.size(), model.size());
      if (!model.empty()) {
        ASSERT_EQ(ring.front(), model.front());
        ASSERT_EQ(ring.back(), model.back());
      }
    }
    ASSERT_TRUE(std::equal(ring.begin(), ring.end(), model.begin(), model.end()));
  }
}

TEST(Ring, UpperBoundWorksOnWrappedStorage) {
  Ring<int> ring;
  for (int i = 0; i < 12; ++i) ring.push_back(i);
  for (int i = 0; i < 10; ++i) ring.pop_front();
  for (int i = 12; i < 30; ++i) ring.push_back(i);  // wraps around and grows
  const auto it = std::upper_bound(ring.begin(), ring.end(), 20);
  EXPECT_EQ(*it, 21);
  EXPECT_EQ(it - ring.begin(), 11);
}

TEST(DurabilityTracker, CompletionCoversEverythingIssuedBefore) {
  DurabilityTracker t;
  t.reset(Zxid{0});
  t.issued_append(Zxid{3});
  t.issued_append(Zxid{5});
  EXPECT_EQ(t.durable(), Zxid{0});
  EXPECT_TRUE(t.completed_append(Zxid{5}));  // group commit: only the last is reported
  EXPECT_EQ(t.durable(), Zxid{5});
  EXPECT_EQ(t.outstanding(), 0u);
  EXPECT_FALSE(t.completed_append(Zxid{9}));  // never issued: a host error, changes nothing
  EXPECT_EQ(t.durable(), Zxid{5});
}

TEST(DurabilityTracker, PendingTruncateCapsAndSnapshotZeroes) {
  DurabilityTracker t;
  t.reset(Zxid{10});
  t.issued_truncate(Zxid{6});
  EXPECT_EQ(t.durable(), Zxid{6});
  t.issued_append(Zxid{8});
  EXPECT_TRUE(t.completed_append(Zxid{8}));
  EXPECT_EQ(t.durable(), Zxid{8});
  t.issued_snapshot(Zxid{20});
  EXPECT_EQ(t.durable(), kNoZxid);
  EXPECT_TRUE(t.completed_snapshot(Zxid{20}));
  EXPECT_EQ(t.durable(), Zxid{20});
}

}  // namespace
}  // namespace fastzab::core
