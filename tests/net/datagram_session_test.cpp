// DatagramSession (net/datagram_session.h): two ends on a simulated datagram network with a
// virtual microsecond clock, loss, duplication and reordering injected from a seed. Frames must
// arrive whole, in order, exactly once, whatever the network does; nothing of another session is
// ever delivered; every malformed packet is refused.
#include "net/datagram_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace fastzab::net {
namespace {

using Bytes = std::vector<std::byte>;

Bytes frame_of(std::size_t size, std::uint32_t tag) {
  Bytes f(size);
  for (std::size_t i = 0; i < size; ++i) f[i] = static_cast<std::byte>((tag * 131 + i * 7) & 0xff);
  return f;
}

struct Faults {
  double loss = 0;
  double duplicate = 0;
  std::uint64_t max_delay_us = 1;  // each packet takes 1..max_delay_us: above 1, later ones overtake
};

// Two sessions, 0 and 1, and the packets in flight between them, by arrival time.
class Link {
 public:
  Link(const DatagramSessionConfig& config, Faults faults, std::uint32_t seed)
      : faults_(faults), rng_(seed) {
    ends_.emplace_back(config, 11, 22);
    ends_.emplace_back(config, 22, 11);
    delivered_.resize(2);
  }

  DatagramSession& end(int i) { return ends_[static_cast<std::size_t>(i)]; }
  const std::vector<Bytes>& delivered(int i) const { return delivered_[static_cast<std::size_t>(i)]; }
  std::uint64_t now() const { return now_; }
  std::vector<Bytes>& captured() { return captured_; }

  // Runs until `done()` or nothing is left to do; false if the step budget ran out first.
  template <class Done>
  bool run(Done done, std::size_t max_steps = 5'000'000) {
    for (std::size_t step = 0; step < max_steps; ++step) {
      for (int i = 0; i < 2; ++i) {
        end(i).poll(now_, [&](std::span<const std::byte> p) { transmit(i, p); });
      }
      if (done()) return true;
      // Advance the clock to the next arrival or deadline.
      std::optional<std::uint64_t> next;
      const auto sooner = [&](std::uint64_t t) { next = next ? std::min(*next, t) : t; };
      if (!flight_.empty()) sooner(flight_.begin()->first);
      for (int i = 0; i < 2; ++i) {
        if (const auto d = end(i).next_deadline()) sooner(std::max(*d, now_));
      }
      if (!next) return done();
      now_ = std::max(now_, *next);
      while (!flight_.empty() && flight_.begin()->first <= now_) {
        const auto [to, bytes] = flight_.begin()->second;
        flight_.erase(flight_.begin());
        const auto r = end(to).receive(bytes, now_, [&](std::span<const std::byte> f) {
          delivered_[static_cast<std::size_t>(to)].emplace_back(f.begin(), f.end());
        });
        EXPECT_NE(r, DatagramSession::Received::malformed);
        EXPECT_NE(r, DatagramSession::Received::stale_session);
      }
    }
    return false;
  }

 private:
  void transmit(int from, std::span<const std::byte> p) {
    captured_.emplace_back(p.begin(), p.end());
    std::uniform_real_distribution<double> u(0, 1);
    std::uniform_int_distribution<std::uint64_t> delay(1, faults_.max_delay_us);
    if (u(rng_) < faults_.loss) return;
    const int copies = u(rng_) < faults_.duplicate ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      flight_.emplace(now_ + delay(rng_), std::pair<int, Bytes>{1 - from, Bytes(p.begin(), p.end())});
    }
  }

  Faults faults_;
  std::mt19937 rng_;
  std::vector<DatagramSession> ends_;
  std::vector<std::vector<Bytes>> delivered_;
  std::multimap<std::uint64_t, std::pair<int, Bytes>> flight_;
  std::vector<Bytes> captured_;
  std::uint64_t now_ = 1;
};

DatagramSessionConfig small_config() {
  DatagramSessionConfig c;
  c.mtu_payload = 1000;
  c.window = 32;
  c.send_slots = 256;
  c.max_frame_bytes = 200'000;
  c.resend_after_us = 100;
  c.ack_after_us = 10;
  c.ack_every = 8;
  return c;
}

TEST(DatagramSession, FramesOfEverySizeArriveWholeAndInOrder) {
  Link link(small_config(), Faults{0, 0, 1}, 1);  // a FIFO link: every packet takes 1 us
  const std::vector<std::size_t> sizes{0, 1, 999, 1000, 1001, 5000, 100'000, 3};
  std::vector<Bytes> sent;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    sent.push_back(frame_of(sizes[k], static_cast<std::uint32_t>(k)));
    ASSERT_TRUE(link.end(0).send(sent.back())) << sizes[k];
    ASSERT_TRUE(link.run([&] { return link.end(0).drained(); }));  // 100 KB needs 101 of 256 slots
  }
  EXPECT_EQ(link.delivered(1), sent);
  EXPECT_TRUE(link.delivered(0).empty());
  EXPECT_EQ(link.end(0).counters().packets_resent, 0u);
  EXPECT_EQ(link.end(1).counters().frames_delivered, sizes.size());
}

struct LossCase {
  double loss;
  double duplicate;
  std::uint32_t seed;
};

class LossyNetwork : public ::testing::TestWithParam<LossCase> {};

// Both ends send 1,500 frames of 0-4,000 bytes (1-4 packets) at once, through loss, duplicates
// and reordering: everything arrives, in order, exactly once, and the resend paths ran.
TEST_P(LossyNetwork, EveryFrameArrivesOnceInOrder) {
  const LossCase c = GetParam();
  Link link(small_config(), Faults{c.loss, c.duplicate, 30}, c.seed);
  std::mt19937 rng(c.seed + 7);
  std::uniform_int_distribution<std::size_t> size(0, 4000);
  std::vector<Bytes> sent[2];
  constexpr std::size_t kFrames = 1500;
  std::size_t queued[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    for (std::size_t k = 0; k < kFrames; ++k) sent[i].push_back(frame_of(size(rng), static_cast<std::uint32_t>(k * 2 + i)));
  }
  // Feed frames as slots free up; done when both sides got everything.
  const bool finished = link.run([&] {
    for (int i = 0; i < 2; ++i) {
      while (queued[i] < kFrames && link.end(i).send(sent[i][queued[i]])) ++queued[i];
    }
    return link.delivered(0).size() == kFrames && link.delivered(1).size() == kFrames;
  });
  ASSERT_TRUE(finished) << "stalled at " << link.delivered(1).size() << " and "
                        << link.delivered(0).size() << " frames";
  EXPECT_EQ(link.delivered(1), sent[0]);
  EXPECT_EQ(link.delivered(0), sent[1]);
  for (int i = 0; i < 2; ++i) {
    const auto& k = link.end(i).counters();
    if (c.loss > 0) {
      EXPECT_GT(k.go_back_n, 0u) << "end " << i;
      EXPECT_GT(k.packets_resent, 0u) << "end " << i;
    }
    if (c.duplicate > 0 || c.loss > 0) {
      EXPECT_GT(k.duplicates + k.out_of_order, 0u) << "end " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, LossyNetwork,
    ::testing::Values(LossCase{0.0, 0.0, 1}, LossCase{0.0, 0.05, 2}, LossCase{0.01, 0.01, 3},
                      LossCase{0.05, 0.02, 4}, LossCase{0.10, 0.02, 5}, LossCase{0.10, 0.10, 6}),
    [](const ::testing::TestParamInfo<LossCase>& p) {
      return "loss" + std::to_string(static_cast<int>(p.param.loss * 100)) + "_dup" +
             std::to_string(static_cast<int>(p.param.duplicate * 100));
    });

// Everything an ended session put on the wire, replayed into the sessions that replaced it
// (fresh ids on both ends), is dropped as stale: nothing of it is delivered.
TEST(DatagramSession, NothingOfAnEndedSessionIsDelivered) {
  Link old_link(small_config(), Faults{}, 9);
  for (std::uint32_t k = 0; k < 20; ++k) ASSERT_TRUE(old_link.end(0).send(frame_of(2500, k)));
  ASSERT_TRUE(old_link.run([&] { return old_link.end(0).drained(); }));
  ASSERT_EQ(old_link.delivered(1).size(), 20u);
  const std::vector<Bytes> replay = old_link.captured();
  ASSERT_GT(replay.size(), 60u);

  DatagramSession fresh(small_config(), /*local=*/23, /*peer=*/12);  // the next incarnation
  DatagramSession half_fresh(small_config(), /*local=*/22, /*peer=*/12);  // only the peer restarted
  std::size_t delivered = 0;
  for (const Bytes& p : replay) {
    for (DatagramSession* s : {&fresh, &half_fresh}) {
      EXPECT_EQ(s->receive(p, 1000, [&](std::span<const std::byte>) { ++delivered; }),
                DatagramSession::Received::stale_session);
    }
  }
  EXPECT_EQ(delivered, 0u);
  EXPECT_EQ(fresh.counters().stale, replay.size());
  EXPECT_EQ(fresh.counters().packets_received, 0u);
}

// Packets no correct peer sends are refused as malformed, each one, and change nothing.
TEST(DatagramSession, MalformedPacketsAreRefused) {
  const DatagramSessionConfig cfg = small_config();
  DatagramSession sender(cfg, 11, 22);
  ASSERT_TRUE(sender.send(frame_of(10, 1)));
  Bytes good;
  sender.poll(1, [&](std::span<const std::byte> p) { good.assign(p.begin(), p.end()); });
  ASSERT_EQ(good.size(), kDatagramHeaderBytes + 10);

  std::vector<std::pair<std::string, Bytes>> bad;
  const auto mutated = [&](const std::string& what, std::size_t at, std::uint8_t value) {
    Bytes b = good;
    b[at] = std::byte{value};
    bad.emplace_back(what, b);
  };
  bad.emplace_back("empty", Bytes{});
  bad.emplace_back("header cut short", Bytes(good.begin(), good.begin() + kDatagramHeaderBytes - 1));
  bad.emplace_back("payload cut short", Bytes(good.begin(), good.end() - 1));
  Bytes longer = good;
  longer.push_back(std::byte{0});
  bad.emplace_back("bytes past the payload", longer);
  mutated("bad magic", 0, 0x00);
  mutated("bad version", 4, 9);
  mutated("unknown type", 5, 3);
  mutated("unknown flag", 6, 0x02);
  mutated("nonzero reserved byte", 7, 1);
  mutated("nonzero reserved word", 44, 1);
  mutated("sequence 0", 24, 0);
  mutated("ack 0", 32, 0);
  Bytes huge(kDatagramHeaderBytes + cfg.mtu_payload + 1);
  std::memcpy(huge.data(), good.data(), kDatagramHeaderBytes);
  huge[40] = std::byte{static_cast<std::uint8_t>((cfg.mtu_payload + 1) & 0xff)};
  huge[41] = std::byte{static_cast<std::uint8_t>((cfg.mtu_payload + 1) >> 8)};
  bad.emplace_back("payload over the mtu", huge);
  Bytes ack_with_payload = good;
  ack_with_payload[5] = std::byte{2};
  bad.emplace_back("ack with a payload", ack_with_payload);
  Bytes acks_unsent = good;
  acks_unsent[32] = std::byte{50};  // the receiver never sent 49 packets
  bad.emplace_back("ack of data never sent", acks_unsent);

  DatagramSession receiver(cfg, 22, 11);
  std::size_t delivered = 0;
  for (const auto& [what, bytes] : bad) {
    EXPECT_EQ(receiver.receive(bytes, 2, [&](std::span<const std::byte>) { ++delivered; }),
              DatagramSession::Received::malformed)
        << what;
  }
  EXPECT_EQ(delivered, 0u);
  EXPECT_EQ(receiver.counters().malformed, bad.size());
  // The good packet still goes through afterwards: the refusals changed nothing.
  EXPECT_EQ(receiver.receive(good, 3, [&](std::span<const std::byte> f) { EXPECT_EQ(Bytes(f.begin(), f.end()), frame_of(10, 1)); ++delivered; }),
            DatagramSession::Received::accepted);
  EXPECT_EQ(delivered, 1u);
}

// A peer cannot make a receiver hold more than max_frame_bytes: fragments past it are refused.
TEST(DatagramSession, AFrameOverTheLimitIsRefused) {
  DatagramSessionConfig big = small_config();
  DatagramSessionConfig limited = small_config();
  limited.max_frame_bytes = 4000;
  DatagramSession sender(big, 11, 22);
  DatagramSession receiver(limited, 22, 11);
  ASSERT_TRUE(sender.send(frame_of(6000, 1)));
  std::vector<Bytes> packets;
  sender.poll(1, [&](std::span<const std::byte> p) { packets.emplace_back(p.begin(), p.end()); });
  ASSERT_EQ(packets.size(), 6u);
  std::vector<DatagramSession::Received> got;
  for (const Bytes& p : packets) got.push_back(receiver.receive(p, 2, [](std::span<const std::byte>) { FAIL(); }));
  EXPECT_EQ(got[3], DatagramSession::Received::accepted);
  EXPECT_EQ(got[4], DatagramSession::Received::malformed);
}

TEST(DatagramSession, SendRefusesWhatTheSlotsCannotHoldUntilAcksFreeThem) {
  DatagramSessionConfig cfg = small_config();  // 256 slots of 1000 bytes, window 32
  Link link(cfg, Faults{}, 3);
  EXPECT_EQ(link.end(0).free_slots(), 256u);
  EXPECT_EQ(link.end(0).packets_for(0), 1u);
  EXPECT_EQ(link.end(0).packets_for(1000), 1u);
  EXPECT_EQ(link.end(0).packets_for(1001), 2u);
  ASSERT_TRUE(link.end(0).send(frame_of(200'000, 1)));  // 200 slots
  EXPECT_EQ(link.end(0).free_slots(), 56u);
  EXPECT_FALSE(link.end(0).send(frame_of(60'000, 2))) << "needs 60 slots, 56 free";
  EXPECT_FALSE(link.end(0).send(frame_of(cfg.max_frame_bytes + 1, 3))) << "over max_frame_bytes";
  EXPECT_EQ(link.end(0).free_slots(), 56u) << "a refused send queues nothing";
  ASSERT_TRUE(link.run([&] { return link.end(0).drained(); }));
  EXPECT_EQ(link.end(0).free_slots(), 256u);
  EXPECT_TRUE(link.end(0).send(frame_of(60'000, 2)));
}

TEST(DatagramSession, ConfigsThatCannotWorkAreNamed) {
  DatagramSessionConfig c = small_config();
  EXPECT_EQ(invalid_reason(c), nullptr);
  c.window = 0;
  EXPECT_STREQ(invalid_reason(c), "window must be at least 1");
  c = small_config();
  c.send_slots = c.window - 1;
  EXPECT_NE(invalid_reason(c), nullptr);
  c = small_config();
  c.max_frame_bytes = c.send_slots * c.mtu_payload + 1;
  EXPECT_STREQ(invalid_reason(c), "max_frame_bytes must fit send_slots packets of mtu_payload bytes");
  c = small_config();
  c.mtu_payload = 0;
  EXPECT_NE(invalid_reason(c), nullptr);
}

}  // namespace
}  // namespace fastzab::net
