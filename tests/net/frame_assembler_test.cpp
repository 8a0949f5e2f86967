// FrameAssembler and SpillPool on their own: any chunking of a stream gives the frames a naive
// splitter gives (a differential test, style practice 7), frames inside one chunk are not
// copied, spilled frames stay intact until reclaim(), bad headers stop the stream without
// allocating, and spill buffers are reused.
#include "net/frame_assembler.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace fastzab::net {
namespace {

using Frame = std::vector<std::byte>;

std::vector<std::byte> encode(const std::vector<Frame>& frames) {
  std::vector<std::byte> stream;
  for (const Frame& f : frames) {
    std::array<std::byte, 4> header;
    wire::store_u32_le(static_cast<std::uint32_t>(f.size()), header.data());
    stream.insert(stream.end(), header.begin(), header.end());
    stream.insert(stream.end(), f.begin(), f.end());
  }
  return stream;
}

// The model: read length, take that many bytes, repeat.
std::vector<Frame> naive_split(const std::vector<std::byte>& stream) {
  std::vector<Frame> frames;
  std::size_t at = 0;
  while (at + 4 <= stream.size()) {
    const std::uint32_t length = wire::load_u32_le(stream.data() + at);
    at += 4;
    frames.emplace_back(stream.begin() + static_cast<long>(at),
                        stream.begin() + static_cast<long>(at + length));
    at += length;
  }
  return frames;
}

std::vector<Frame> random_frames(std::mt19937_64& rng, std::size_t count, std::size_t max_size) {
  std::vector<Frame> frames(count);
  for (Frame& f : frames) {
    f.resize(1 + rng() % max_size);
    for (std::byte& b : f) b = static_cast<std::byte>(rng());
  }
  return frames;
}

TEST(FrameAssembler, AnyChunkingGivesTheFramesOfANaiveSplit) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    const std::vector<Frame> sent = random_frames(rng, 1 + rng() % 40, 1 + rng() % 3000);
    const std::vector<std::byte> stream = encode(sent);
    ASSERT_EQ(naive_split(stream), sent);

    SpillPool pool;
    FrameAssembler assembler(1 << 20, pool);
    std::vector<Frame> received;
    std::size_t at = 0;
    const std::size_t max_chunk = 1 + rng() % 5000;
    while (at < stream.size()) {
      const std::size_t size = std::min<std::size_t>(1 + rng() % max_chunk, stream.size() - at);
      const auto status = assembler.feed(
          std::span<const std::byte>(stream.data() + at, size),
          [&](std::span<const std::byte> frame, FrameAssembler::Source) {
            received.emplace_back(frame.begin(), frame.end());
          });
      ASSERT_EQ(status, FrameAssembler::Status::ok);
      at += size;
      if (rng() % 4 == 0) pool.reclaim();
    }
    EXPECT_FALSE(assembler.mid_frame());
    EXPECT_EQ(received, sent) << "seed " << seed;
  }
}

TEST(FrameAssembler, AFrameInsideOneChunkIsHandedOutInPlace) {
  const std::vector<Frame> sent = {Frame(10, std::byte{1}), Frame(20, std::byte{2}),
                                   Frame(3, std::byte{3})};
  const std::vector<std::byte> stream = encode(sent);
  SpillPool pool;
  FrameAssembler assembler(1024, pool);
  std::size_t count = 0;
  const auto status =
      assembler.feed(stream, [&](std::span<const std::byte> frame, FrameAssembler::Source from) {
        EXPECT_EQ(from, FrameAssembler::Source::chunk);
        EXPECT_GE(frame.data(), stream.data());
        EXPECT_LE(frame.data() + frame.size(), stream.data() + stream.size());
        ++count;
      });
  EXPECT_EQ(status, FrameAssembler::Status::ok);
  EXPECT_EQ(count, 3u);
  EXPECT_EQ(pool.lent_count(), 0u);
}

TEST(FrameAssembler, SpilledFramesStayIntactUntilReclaim) {
  std::mt19937_64 rng(42);
  const std::vector<Frame> sent = random_frames(rng, 50, 500);
  const std::vector<std::byte> stream = encode(sent);
  SpillPool pool;
  FrameAssembler assembler(1024, pool);
  // One byte at a time: every frame spans chunks, so every frame is spilled; the spans are kept
  // (not copied) and checked only at the end, as a poll() caller may use them until the next.
  std::vector<std::span<const std::byte>> spans;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    ASSERT_EQ(assembler.feed(std::span<const std::byte>(stream.data() + i, 1),
                             [&](std::span<const std::byte> frame, FrameAssembler::Source from) {
                               EXPECT_EQ(from, FrameAssembler::Source::spill);
                               spans.push_back(frame);
                             }),
              FrameAssembler::Status::ok);
  }
  ASSERT_EQ(spans.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_TRUE(std::equal(spans[i].begin(), spans[i].end(), sent[i].begin(), sent[i].end()))
        << "frame " << i;
  }
  EXPECT_EQ(pool.lent_count(), sent.size());
  pool.reclaim();
  EXPECT_EQ(pool.lent_count(), 0u);
  EXPECT_EQ(pool.free_count(), SpillPool::kMaxFreeBuffers);
}

TEST(FrameAssembler, SpillBuffersAreReusedInSteadyState) {
  SpillPool pool;
  FrameAssembler assembler(1 << 16, pool);
  const std::vector<std::byte> stream = encode({Frame(4000, std::byte{9})});
  const std::byte* first_buffer = nullptr;
  for (int round = 0; round < 10; ++round) {
    // Two chunks: the frame spans them, so it is spilled.
    const std::byte* seen = nullptr;
    auto on_frame = [&](std::span<const std::byte> frame, FrameAssembler::Source) {
      seen = frame.data();
    };
    ASSERT_EQ(assembler.feed(std::span(stream).first(100), on_frame), FrameAssembler::Status::ok);
    ASSERT_EQ(assembler.feed(std::span(stream).subspan(100), on_frame), FrameAssembler::Status::ok);
    ASSERT_NE(seen, nullptr);
    if (round == 0) first_buffer = seen;
    EXPECT_EQ(seen, first_buffer) << "round " << round << " got a new buffer";
    pool.reclaim();
  }
}

TEST(FrameAssembler, HeaderSplitAcrossChunksAndMidFrame) {
  const std::vector<std::byte> stream = encode({Frame(5, std::byte{7})});
  SpillPool pool;
  FrameAssembler assembler(64, pool);
  int frames = 0;
  auto on_frame = [&](std::span<const std::byte> frame, FrameAssembler::Source) {
    EXPECT_EQ(frame.size(), 5u);
    ++frames;
  };
  EXPECT_FALSE(assembler.mid_frame());
  ASSERT_EQ(assembler.feed(std::span(stream).first(2), on_frame), FrameAssembler::Status::ok);
  EXPECT_TRUE(assembler.mid_frame());  // half a header: EOF now is a truncation
  ASSERT_EQ(assembler.feed(std::span(stream).subspan(2, 4), on_frame), FrameAssembler::Status::ok);
  EXPECT_TRUE(assembler.mid_frame());
  ASSERT_EQ(assembler.feed(std::span(stream).subspan(6), on_frame), FrameAssembler::Status::ok);
  EXPECT_FALSE(assembler.mid_frame());
  EXPECT_EQ(frames, 1);
}

TEST(FrameAssembler, ZeroLengthIsGarbageAndStopsTheStream) {
  std::vector<std::byte> stream = encode({Frame(3, std::byte{1})});
  stream.insert(stream.end(), 4, std::byte{0});  // a header claiming 0 bytes
  const std::vector<std::byte> after = encode({Frame(3, std::byte{2})});
  stream.insert(stream.end(), after.begin(), after.end());
  SpillPool pool;
  FrameAssembler assembler(64, pool);
  int frames = 0;
  auto on_frame = [&](std::span<const std::byte>, FrameAssembler::Source) { ++frames; };
  EXPECT_EQ(assembler.feed(stream, on_frame), FrameAssembler::Status::zero_length);
  EXPECT_EQ(frames, 1);  // the frame before; nothing after the bad header
  EXPECT_EQ(assembler.feed(after, on_frame), FrameAssembler::Status::zero_length);
  EXPECT_EQ(frames, 1);
}

TEST(FrameAssembler, OversizedLengthAllocatesNothing) {
  const std::vector<std::byte> header = {std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF},
                                         std::byte{0xFF}, std::byte{1}, std::byte{2}};
  SpillPool pool;
  FrameAssembler assembler(1 << 20, pool);
  int frames = 0;
  auto on_frame = [&](std::span<const std::byte>, FrameAssembler::Source) { ++frames; };
  // Header split over two chunks, as an attacker might send it.
  EXPECT_EQ(assembler.feed(std::span(header).first(3), on_frame), FrameAssembler::Status::ok);
  EXPECT_EQ(assembler.feed(std::span(header).subspan(3), on_frame),
            FrameAssembler::Status::oversized);
  EXPECT_EQ(assembler.last_claimed_length(), 0xFFFFFFFFu);
  EXPECT_EQ(frames, 0);
  EXPECT_EQ(pool.lent_count() + pool.free_count(), 0u);
  // One byte over the limit is refused; exactly the limit is accepted.
  SpillPool pool2;
  FrameAssembler at_limit(100, pool2);
  std::vector<std::byte> just = encode({Frame(100, std::byte{5})});
  EXPECT_EQ(at_limit.feed(just, on_frame), FrameAssembler::Status::ok);
  EXPECT_EQ(frames, 1);
  FrameAssembler over_limit(99, pool2);
  EXPECT_EQ(over_limit.feed(just, on_frame), FrameAssembler::Status::oversized);
}

TEST(FrameAssembler, ResetDropsAPartialFrame) {
  const std::vector<std::byte> stream = encode({Frame(50, std::byte{1})});
  SpillPool pool;
  FrameAssembler assembler(64, pool);
  int frames = 0;
  auto on_frame = [&](std::span<const std::byte>, FrameAssembler::Source) { ++frames; };
  ASSERT_EQ(assembler.feed(std::span(stream).first(20), on_frame), FrameAssembler::Status::ok);
  assembler.reset();
  EXPECT_FALSE(assembler.mid_frame());
  EXPECT_EQ(pool.free_count(), 1u);  // the partial frame's buffer went back unlent
  ASSERT_EQ(assembler.feed(stream, on_frame), FrameAssembler::Status::ok);
  EXPECT_EQ(frames, 1);
}

}  // namespace
}  // namespace fastzab::net
