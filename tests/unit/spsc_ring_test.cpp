// SpscRing: single-thread behaviour, a differential test against std::deque, a two-thread
// hand-off of 5,000,000 sequence numbers under the blocking and adaptive Waiter modes, and the
// owner assertion. Waiter: wake-up on notify and timeouts.
#include "engine/runtime/spsc_ring.h"
#include "engine/runtime/byte_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/runtime/waiter.h"

namespace fastzab::runtime {
namespace {

// Counts live instances, so that tests can see every element destroyed exactly once.
struct Tracked {
  static inline int live = 0;
  std::uint64_t value = 0;
  explicit Tracked(std::uint64_t v) : value(v) { ++live; }
  Tracked(const Tracked& o) : value(o.value) { ++live; }
  Tracked(Tracked&& o) noexcept : value(o.value) { ++live; }
  Tracked& operator=(const Tracked&) = default;
  Tracked& operator=(Tracked&&) noexcept = default;
  ~Tracked() { --live; }
};

// A move-only element owning heap memory.
struct Message {
  std::unique_ptr<int> id;
  std::vector<std::uint8_t> payload;
};

TEST(SpscRing, FillsToCapacityThenRefusesAndPopsInFifoOrder) {
  SpscRing<int, 8> ring;
  static_assert(SpscRing<int, 8>::capacity() == 8);
  EXPECT_TRUE(ring.empty_approx());
  EXPECT_FALSE(ring.try_pop().has_value());
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(ring.try_push(i)) << i;
  EXPECT_FALSE(ring.try_push(8));
  const int copied = 9;
  EXPECT_FALSE(ring.try_push(copied));
  EXPECT_EQ(ring.size_approx(), 8u);
  EXPECT_FALSE(ring.empty_approx());

  EXPECT_EQ(ring.try_pop(), std::optional<int>(0));
  EXPECT_TRUE(ring.try_push(copied));  // one slot free again
  EXPECT_FALSE(ring.try_push(10));
  for (int want : {1, 2, 3, 4, 5, 6, 7, 9}) EXPECT_EQ(ring.try_pop(), std::optional<int>(want));
  EXPECT_FALSE(ring.try_pop().has_value());
  EXPECT_TRUE(ring.empty_approx());
  EXPECT_EQ(ring.size_approx(), 0u);
}

// peek_batch shows elements without giving their slots back: a full ring stays full (the
// producer cannot overwrite what the consumer still reads), and the pop_batch that follows takes
// exactly the peeked elements, unmoved until then.
TEST(SpscRing, PeekedElementsKeepTheirSlotsUntilPopped) {
  SpscRing<Message, 4> ring;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring.try_push(Message{std::make_unique<int>(i), {}}));
  std::vector<const int*> seen;
  const std::size_t peeked = ring.peek_batch(3, [&](const Message& m) { seen.push_back(m.id.get()); });
  ASSERT_EQ(peeked, 3u);
  ASSERT_EQ(seen.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*seen[static_cast<std::size_t>(i)], i);
  EXPECT_FALSE(ring.try_push(Message{std::make_unique<int>(9), {}})) << "peeking freed a slot";
  EXPECT_EQ(ring.size_approx(), 4u);
  std::size_t k = 0;
  EXPECT_EQ(ring.pop_batch(peeked, [&](Message&& m) {
    EXPECT_EQ(m.id.get(), seen[k]) << "the element moved between peek and pop";
    ++k;
  }), 3u);
  EXPECT_EQ(ring.size_approx(), 1u);
  EXPECT_EQ(ring.peek_batch(8, [&](const Message& m) { EXPECT_EQ(*m.id, 3); }), 1u);
  EXPECT_TRUE(ring.try_push(Message{std::make_unique<int>(4), {}}));
}

TEST(SpscRing, WrapsAroundManyTimes) {
  SpscRing<std::uint64_t, 4> ring;
  std::uint64_t next_in = 0;
  std::uint64_t next_out = 0;
  // Three in, two out, until the indices have gone round the 4 slots 10,000 times.
  while (next_out < 40'000) {
    for (int i = 0; i < 3; ++i) {
      if (ring.try_push(next_in)) ++next_in;
    }
    for (int i = 0; i < 2; ++i) {
      const auto v = ring.try_pop();
      ASSERT_TRUE(v.has_value());
      ASSERT_EQ(*v, next_out);
      ++next_out;
    }
    ASSERT_EQ(ring.size_approx(), next_in - next_out);
  }
  while (auto v = ring.try_pop()) ASSERT_EQ(*v, next_out++);
  EXPECT_EQ(next_in, next_out);
}

TEST(SpscRing, BatchesMoveAsManyAsFit) {
  SpscRing<std::unique_ptr<int>, 8> ring;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ring.try_push(std::make_unique<int>(i)));

  std::vector<std::unique_ptr<int>> batch;
  for (int i = 3; i < 13; ++i) batch.push_back(std::make_unique<int>(i));
  EXPECT_EQ(ring.push_batch(batch), 5u);  // 8 - 3 free
  for (std::size_t i = 0; i < batch.size(); ++i) {
    // The first five were moved into the ring; the rest are untouched.
    EXPECT_EQ(batch[i] == nullptr, i < 5) << i;
  }
  EXPECT_EQ(ring.push_batch(std::span(batch).subspan(5)), 0u);  // full
  EXPECT_EQ(batch[5] != nullptr, true);

  std::vector<int> seen;
  const auto collect = [&](std::unique_ptr<int>&& p) { seen.push_back(*p); };
  EXPECT_EQ(ring.pop_batch(0, collect), 0u);
  EXPECT_EQ(ring.pop_batch(3, collect), 3u);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(ring.push_batch(std::span(batch).subspan(5)), 3u);  // three slots came back
  EXPECT_EQ(ring.pop_batch(100, collect), 8u);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(ring.pop_batch(100, collect), 0u);
  EXPECT_TRUE(ring.empty_approx());
}

TEST(SpscRing, CarriesMoveOnlyElements) {
  SpscRing<Message, 4> ring;
  Message m{std::make_unique<int>(7), std::vector<std::uint8_t>(1000, 0xab)};
  ASSERT_TRUE(ring.try_push(std::move(m)));
  ASSERT_TRUE(ring.try_emplace(std::make_unique<int>(8), std::vector<std::uint8_t>{1, 2, 3}));
  std::optional<Message> out = ring.try_pop();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out->id, 7);
  EXPECT_EQ(out->payload.size(), 1000u);
  EXPECT_EQ(out->payload[999], 0xab);
  std::size_t calls = 0;
  EXPECT_EQ(ring.pop_batch(4, [&](Message&& msg) {
    ++calls;
    const Message taken = std::move(msg);
    EXPECT_EQ(*taken.id, 8);
    EXPECT_EQ(taken.payload, (std::vector<std::uint8_t>{1, 2, 3}));
  }), 1u);
  EXPECT_EQ(calls, 1u);
}

TEST(SpscRing, CopyPushLeavesTheSourceAlone) {
  SpscRing<std::vector<int>, 2> ring;
  const std::vector<int> v{1, 2, 3};
  ASSERT_TRUE(ring.try_push(v));
  EXPECT_EQ(v, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(ring.try_pop(), std::optional<std::vector<int>>(v));
}

TEST(SpscRing, DestructorDestroysTheRemainingElements) {
  Tracked::live = 0;
  {
    SpscRing<Tracked, 8> ring;
    // Go round once so that the remaining elements straddle the end of the storage.
    for (std::uint64_t i = 0; i < 6; ++i) ASSERT_TRUE(ring.try_emplace(i));
    EXPECT_EQ(ring.pop_batch(6, [](Tracked&&) {}), 6u);
    EXPECT_EQ(Tracked::live, 0);
    for (std::uint64_t i = 0; i < 7; ++i) ASSERT_TRUE(ring.try_emplace(i));
    EXPECT_EQ(ring.try_pop()->value, 0u);
    EXPECT_EQ(Tracked::live, 6);
  }
  EXPECT_EQ(Tracked::live, 0);
}

TEST(SpscRing, PopBatchKeepsProgressWhenTheCallbackThrows) {
  Tracked::live = 0;
  {
    SpscRing<Tracked, 8> ring;
    for (std::uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(ring.try_emplace(i));
    EXPECT_THROW(ring.pop_batch(5,
                                [](Tracked&& t) {
                                  if (t.value == 2) throw std::runtime_error("stop");
                                }),
                 std::runtime_error);
    // 0, 1 and 2 (the one that threw) are gone and destroyed; 3 and 4 remain.
    EXPECT_EQ(Tracked::live, 2);
    EXPECT_EQ(ring.size_approx(), 2u);
    EXPECT_EQ(ring.try_pop()->value, 3u);
  }
  EXPECT_EQ(Tracked::live, 0);
}

// Random push / push_batch / pop / pop_batch sequences against std::deque, checked after every
// operation, with elements that count their own lifetimes.
TEST(SpscRing, MatchesDequeOnRandomOperations) {
  constexpr std::size_t kCap = 8;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Tracked::live = 0;
    std::mt19937_64 rng(seed);
    std::uint64_t next = 0;
    {
      SpscRing<Tracked, kCap> ring;
      std::deque<std::uint64_t> model;
      for (int op = 0; op < 1000; ++op) {
        const auto r = rng() % 4;
        if (r == 0) {
          const bool pushed = ring.try_emplace(next);
          ASSERT_EQ(pushed, model.size() < kCap);
          if (pushed) model.push_back(next);
          ++next;
        } else if (r == 1) {
          std::vector<Tracked> batch;
          const std::size_t len = rng() % (kCap + 4);
          for (std::size_t i = 0; i < len; ++i) batch.emplace_back(next + i);
          const std::size_t n = ring.push_batch(batch);
          ASSERT_EQ(n, std::min(len, kCap - model.size()));
          for (std::size_t i = 0; i < n; ++i) model.push_back(next + i);
          next += len;
        } else if (r == 2) {
          const std::optional<Tracked> got = ring.try_pop();
          ASSERT_EQ(got.has_value(), !model.empty());
          if (got) {
            ASSERT_EQ(got->value, model.front());
            model.pop_front();
          }
        } else {
          const std::size_t max = rng() % (kCap + 4);
          std::vector<std::uint64_t> got;
          const std::size_t n = ring.pop_batch(max, [&](Tracked&& t) { got.push_back(t.value); });
          ASSERT_EQ(n, std::min(max, model.size()));
          ASSERT_EQ(got.size(), n);
          for (std::uint64_t v : got) {
            ASSERT_EQ(v, model.front());
            model.pop_front();
          }
        }
        ASSERT_EQ(ring.size_approx(), model.size());
        ASSERT_EQ(ring.empty_approx(), model.empty());
        ASSERT_EQ(Tracked::live, static_cast<int>(model.size()));
      }
    }
    ASSERT_EQ(Tracked::live, 0);
  }
}

// A producer thread hands 5,000,000 sequence numbers to a consumer thread, singly and in
// batches; each side waits (for data, for room) with a Waiter in the mode under test and
// notifies the other after each batch. The test ends when the count is reached.
class SpscRingTwoThreads : public ::testing::TestWithParam<PollMode> {};

TEST_P(SpscRingTwoThreads, HandsOverEverySequenceNumberInOrder) {
  constexpr std::uint64_t kCount = 5'000'000;
  // Long enough never to expire while the other side is running; a lost wake-up would.
  constexpr std::chrono::seconds kWatchdog{20};
  auto ring = std::make_unique<SpscRing<std::uint64_t, 1024>>();
  Waiter data_ready(GetParam(), std::chrono::microseconds(20));
  Waiter room_ready(GetParam(), std::chrono::microseconds(20));
  int producer_timeouts = 0;
  int consumer_timeouts = 0;

  std::thread producer([&] {
    std::mt19937_64 rng(42);
    std::array<std::uint64_t, 64> buf{};
    std::uint64_t next = 0;
    while (next < kCount) {
      std::size_t pushed = 0;
      if (rng() % 2 == 0) {
        const std::size_t len =
            std::min<std::size_t>(1 + rng() % buf.size(), static_cast<std::size_t>(kCount - next));
        for (std::size_t i = 0; i < len; ++i) buf[i] = next + i;
        pushed = ring->push_batch(std::span(buf).first(len));
      } else if (ring->try_push(next)) {
        pushed = 1;
      }
      if (pushed != 0) {
        next += pushed;
        data_ready.notify();
      } else if (!room_ready.wait([&] { return ring->size_approx() < ring->capacity(); },
                                  kWatchdog)) {
        ++producer_timeouts;
      }
    }
  });

  std::uint64_t expected = 0;
  std::uint64_t sum = 0;
  bool in_order = true;
  std::thread consumer([&] {
    std::mt19937_64 rng(43);
    while (expected < kCount) {
      std::size_t popped = 0;
      if (rng() % 4 == 0) {
        if (const auto v = ring->try_pop()) {
          in_order = in_order && *v == expected;
          ++expected;
          sum += *v;
          popped = 1;
        }
      } else {
        popped = ring->pop_batch(256, [&](std::uint64_t&& v) {
          in_order = in_order && v == expected;
          ++expected;
          sum += v;
        });
      }
      if (popped != 0) {
        room_ready.notify();
      } else if (!data_ready.wait([&] { return !ring->empty_approx(); }, kWatchdog)) {
        ++consumer_timeouts;
      }
    }
  });
  producer.join();
  consumer.join();

  EXPECT_TRUE(in_order);
  EXPECT_EQ(expected, kCount);
  EXPECT_EQ(sum, kCount * (kCount - 1) / 2);
  EXPECT_TRUE(ring->empty_approx());
  EXPECT_EQ(producer_timeouts, 0);
  EXPECT_EQ(consumer_timeouts, 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, SpscRingTwoThreads,
                         ::testing::Values(PollMode::blocking, PollMode::adaptive),
                         [](const ::testing::TestParamInfo<PollMode>& param) {
                           return std::string(to_string(param.param));
                         });

using SmallRing = SpscRing<int, 8>;  // a name without a comma, for EXPECT_DEATH

TEST(SpscRingDeathTest, PushFromASecondThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SmallRing ring;
        (void)ring.try_push(1);
        std::thread other([&] { (void)ring.try_push(2); });
        other.join();
      },
      "second thread.*push");
}

TEST(SpscRingDeathTest, PopFromASecondThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SmallRing ring;
        (void)ring.try_pop();
        std::thread other([&] { (void)ring.pop_batch(1, [](int&&) {}); });
        other.join();
      },
      "second thread.*pop");
}

TEST(SpscRing, EachSideMayLiveOnAThreadOtherThanTheCreator) {
  SpscRing<int, 8> ring;  // created here; this thread never pushes nor pops
  std::thread producer([&] { EXPECT_TRUE(ring.try_push(1)); });
  producer.join();
  std::thread consumer([&] { EXPECT_EQ(ring.try_pop(), std::optional<int>(1)); });
  consumer.join();
  EXPECT_EQ(ring.size_approx(), 0u);  // the snapshots may be read from anywhere
}

// ---- Waiter ----------------------------------------------------------------------------------

std::vector<std::byte> pattern(std::size_t size, std::uint64_t seed) {
  std::vector<std::byte> v(size);
  for (std::size_t i = 0; i < size; ++i) v[i] = static_cast<std::byte>((seed * 131 + i * 7) & 0xff);
  return v;
}

TEST(SpscByteRing, WrapsByChargingTheSkippedEndAndRefusesWhatDoesNotFit) {
  SpscByteRing ring(100);
  const auto a = pattern(60, 1), b = pattern(60, 2);
  auto ta = ring.push(a);
  ASSERT_TRUE(ta);
  EXPECT_EQ(ta->offset, 0u);
  EXPECT_EQ(ta->charged, 60u);
  EXPECT_FALSE(ring.push(b)) << "60 + 60 bytes held in a ring of 100";
  ring.release(*ta);
  auto tb = ring.push(b);  // 60..100 is too short: starts at 0, the 40 skipped bytes charged
  ASSERT_TRUE(tb);
  EXPECT_EQ(tb->offset, 0u);
  EXPECT_EQ(tb->charged, 100u);
  const auto seen = ring.view(*tb, b.size());
  EXPECT_TRUE(std::equal(seen.begin(), seen.end(), b.begin(), b.end()));
  EXPECT_FALSE(ring.push(pattern(1, 3))) << "the skip is held until b is released";
  ring.release(*tb);
  EXPECT_FALSE(ring.push(pattern(101, 4))) << "larger than the ring";
  // Empty now, at offset 60: the whole ring (100) would need the 40 bytes to the end as well;
  // half of it (50) always fits, which is why Node's ring is twice the largest entry.
  EXPECT_FALSE(ring.push(pattern(100, 5)));
  auto tc = ring.push(pattern(50, 6));
  ASSERT_TRUE(tc);
  EXPECT_EQ(tc->offset, 0u);
  EXPECT_EQ(tc->charged, 90u);
}

TEST(SpscByteRing, UnpushTakesBackTheLatestValue) {
  SpscByteRing ring(64);
  auto t = ring.push(pattern(40, 1));
  ASSERT_TRUE(t);
  EXPECT_FALSE(ring.push(pattern(40, 2)));
  ring.unpush(*t);
  auto again = ring.push(pattern(64, 3));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->offset, 0u);
}

// The way fastzab::Node uses it: values of every size up to half the ring, each announced by a
// slot of an SpscRing, read and released on another thread; every byte arrives as written.
TEST(SpscByteRing, CarriesValuesBetweenThreadsBesideASlotRing) {
  struct Slot {
    std::uint64_t seed = 0;
    std::uint32_t size = 0;
    SpscByteRing::Ticket ticket;
  };
  constexpr std::uint32_t kCapacity = 1u << 16;
  constexpr std::uint64_t kValues = 20000;
  SpscByteRing bytes(kCapacity);
  SpscRing<Slot, 64> slots;
  std::thread consumer([&] {
    std::uint64_t next = 0;
    while (next < kValues) {
      slots.pop_batch(64, [&](Slot&& s) {
        const auto want = pattern(s.size, s.seed);
        const auto got = bytes.view(s.ticket, s.size);
        ASSERT_TRUE(std::equal(got.begin(), got.end(), want.begin(), want.end())) << "value " << s.seed;
        ASSERT_EQ(s.seed, next);
        ++next;
        bytes.release(s.ticket);
      });
    }
  });
  std::mt19937_64 rng(7);
  for (std::uint64_t i = 0; i < kValues; ++i) {
    const auto size = static_cast<std::uint32_t>(rng() % (kCapacity / 2 + 1));
    const auto value = pattern(size, i);
    std::optional<SpscByteRing::Ticket> t;
    while (!(t = bytes.push(value))) std::this_thread::yield();
    Slot s{i, size, *t};
    while (!slots.try_push(s)) std::this_thread::yield();
  }
  consumer.join();
}

TEST(Waiter, ReturnsAtOnceWhenAlreadyReady) {
  for (PollMode mode : {PollMode::busy, PollMode::adaptive, PollMode::blocking}) {
    Waiter w(mode);
    EXPECT_TRUE(w.wait([] { return true; }, std::chrono::nanoseconds(0)));
    EXPECT_FALSE(w.consumer_asleep());
    EXPECT_FALSE(w.notify());  // nobody asleep: no system call
  }
}

TEST(Waiter, TimesOutWhenNothingComes) {
  constexpr std::chrono::milliseconds kTimeout{20};
  for (PollMode mode : {PollMode::busy, PollMode::adaptive, PollMode::blocking}) {
    SCOPED_TRACE(to_string(mode));
    Waiter w(mode, std::chrono::milliseconds(5));
    int checks = 0;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(w.wait([&] { ++checks; return false; }, kTimeout));
    EXPECT_GE(std::chrono::steady_clock::now() - start, kTimeout);
    EXPECT_GE(checks, 1);
    EXPECT_FALSE(w.consumer_asleep());  // the flag is cleared on the way out
  }
}

// The notifier waits until the consumer has announced it is asleep, so the wake-up is the one
// that ends the wait (the timeout is far away).
void expect_wakes_on_notify(PollMode mode) {
  constexpr std::chrono::seconds kWatchdog{30};
  Waiter w(mode, std::chrono::microseconds(100));
  std::atomic<bool> flag{false};
  bool woke_a_sleeper = false;
  std::thread notifier([&] {
    while (!w.consumer_asleep()) std::this_thread::yield();
    flag.store(true, std::memory_order_release);
    woke_a_sleeper = w.notify();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(w.wait([&] { return flag.load(std::memory_order_acquire); }, kWatchdog));
  EXPECT_LT(std::chrono::steady_clock::now() - start, kWatchdog);
  notifier.join();
  EXPECT_TRUE(woke_a_sleeper);
  EXPECT_FALSE(w.consumer_asleep());
}

TEST(Waiter, BlockingWakesOnNotify) { expect_wakes_on_notify(PollMode::blocking); }
TEST(Waiter, AdaptiveSpinsThenSleepsAndWakesOnNotify) { expect_wakes_on_notify(PollMode::adaptive); }

TEST(Waiter, ManyRoundsOfSleepAndWake) {
  // A ping-pong of 2,000 rounds, each one a sleep and a wake-up on both sides.
  constexpr int kRounds = 2000;
  Waiter ping(PollMode::blocking);
  Waiter pong(PollMode::blocking);
  std::atomic<int> ball{0};
  int timeouts = 0;
  std::thread other([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (!ping.wait([&] { return ball.load(std::memory_order_acquire) == 2 * i + 1; },
                     std::chrono::seconds(20))) {
        ++timeouts;
      }
      ball.store(2 * i + 2, std::memory_order_release);
      pong.notify();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    ball.store(2 * i + 1, std::memory_order_release);
    ping.notify();
    EXPECT_TRUE(pong.wait([&] { return ball.load(std::memory_order_acquire) == 2 * i + 2; },
                          std::chrono::seconds(20)));
  }
  other.join();
  EXPECT_EQ(timeouts, 0);
  EXPECT_EQ(ball.load(), 2 * kRounds);
}

}  // namespace
}  // namespace fastzab::runtime
