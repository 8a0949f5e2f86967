// libFuzzer target for net/'s bytes from peers: the handshake (net/wire.*) and the frame
// assembler (net/frame_assembler.*). The first byte picks which; bit 7 set: handshake.
//
// Handshake: the next 64 bytes are a hello as read from a connection, the 32 after it a MAC.
// decode_hello either names why the bytes are garbage or decodes a hello that encodes back to
// exactly those bytes; a MAC verifies exactly when it equals the one computed.
//
// Frame assembler: byte 1 picks the frame size limit and byte 2 how the pool is used; the rest
// is the TCP stream, cut into chunks as the input says (chunk = u8 length, then that many bytes:
// the fuzzer chooses every boundary, empty chunks included). The frames handed out must be those
// of a plain reading of the whole stream (u32 little-endian length, then the body), in order,
// with the same error at the same place; a frame must stay readable until the pool's reclaim();
// mid_frame() must say whether a frame was cut at the end. Optionally the assembler is reset()
// between chunks, and the model starts over there.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "net/frame_assembler.h"
#include "net/wire.h"

namespace {

namespace wire = fastzab::net::wire;
using fastzab::net::FrameAssembler;
using fastzab::net::SpillPool;
using Bytes = std::span<const std::byte>;

[[noreturn]] void broken(const char* what, long a = 0, long b = 0) {
  std::fprintf(stderr, "net_fuzz: property broken: %s (%ld, %ld)\n", what, a, b);
  std::abort();
}
#define NET_FUZZ_CHECK(cond) \
  do {                       \
    if (!(cond)) broken(#cond); \
  } while (0)

void fuzz_handshake(const std::uint8_t* data, std::size_t size) {
  static const bool sodium_ready = sodium_init() >= 0;
  NET_FUZZ_CHECK(sodium_ready);
  wire::HelloBytes raw{};
  std::memcpy(raw.data(), data, std::min(size, raw.size()));
  const auto hello = wire::decode_hello(raw);
  if (!hello) {
    NET_FUZZ_CHECK(wire::describe(hello.error()) != nullptr);
  } else {
    NET_FUZZ_CHECK(wire::encode_hello(*hello) == raw);
  }
  wire::Mac mac{};
  if (size > raw.size()) std::memcpy(mac.data(), data + raw.size(), std::min(size - raw.size(), mac.size()));
  wire::Secret secret{};
  for (std::size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<unsigned char>(i * 7 + 1);
  wire::Hello mine;
  mine.kind = wire::HelloKind::acceptor;
  mine.cluster_id = 42;
  const wire::HelloBytes acceptor = wire::encode_hello(mine);
  const wire::Mac want_acceptor = wire::acceptor_mac(secret, raw, acceptor);
  const wire::Mac want_dialer = wire::dialer_mac(secret, raw, acceptor);
  NET_FUZZ_CHECK(want_acceptor != want_dialer);
  NET_FUZZ_CHECK(wire::verify_acceptor_mac(secret, raw, acceptor, mac) == (mac == want_acceptor));
  NET_FUZZ_CHECK(wire::verify_dialer_mac(secret, raw, acceptor, mac) == (mac == want_dialer));
  NET_FUZZ_CHECK(wire::verify_acceptor_mac(secret, raw, acceptor, want_acceptor));
  NET_FUZZ_CHECK(!wire::verify_dialer_mac(secret, raw, acceptor, want_acceptor));
}

// What the stream says, read in one piece.
struct Model {
  std::vector<std::vector<std::byte>> frames;
  FrameAssembler::Status status = FrameAssembler::Status::ok;
  std::uint32_t bad_length = 0;
  bool mid_frame = false;
};

Model read_whole(const std::vector<std::byte>& s, std::uint32_t max_frame_bytes) {
  Model m;
  std::size_t at = 0;
  while (at < s.size()) {
    if (s.size() - at < wire::kFrameHeaderBytes) {
      m.mid_frame = true;
      break;
    }
    const std::uint32_t length = wire::load_u32_le(s.data() + at);
    if (length == 0 || length > max_frame_bytes) {
      m.status = length == 0 ? FrameAssembler::Status::zero_length : FrameAssembler::Status::oversized;
      m.bad_length = length;
      break;
    }
    at += wire::kFrameHeaderBytes;
    if (s.size() - at < length) {
      m.mid_frame = true;
      break;
    }
    m.frames.emplace_back(s.begin() + static_cast<long>(at), s.begin() + static_cast<long>(at + length));
    at += length;
  }
  return m;
}

// The assembler reserves a frame's whole claimed length once it accepts the header (by design:
// the limit bounds it), so limits stay at the scale the transport uses.
constexpr std::uint32_t kLimits[] = {1, 2, 3, 4, 5, 8, 16, 100, 255, 256, 1000, 4096, 65536,
                                     1u << 20};

void fuzz_frames(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  const std::uint32_t limit = kLimits[data[0] % std::size(kLimits)];
  const std::uint8_t mode = data[1];
  const bool reclaim_each_chunk = mode & 1;  // as the transport does at each poll()
  const int reset_at_chunk = (mode >> 1) & 0x1F;  // 0: never; else reset before that chunk
  const bool recycle = mode & 0x80;  // one pool across two assemblers, as connections share it
  data += 2;
  size -= 2;

  SpillPool pool;
  FrameAssembler other(limit, pool);
  FrameAssembler fa(limit, pool);
  std::vector<std::byte> stream;  // since the last reset
  std::vector<std::vector<std::byte>> got;
  // Frames handed out since the last reclaim(), to read again just before it.
  std::vector<std::pair<Bytes, std::vector<std::byte>>> live;
  FrameAssembler::Status status = FrameAssembler::Status::ok;

  auto check_live_and_reclaim = [&] {
    for (const auto& [span, copy] : live) {
      NET_FUZZ_CHECK(span.size() == copy.size() && std::memcmp(span.data(), copy.data(), copy.size()) == 0);
    }
    live.clear();
    pool.reclaim();
  };
  auto check_against_model = [&] {
    const Model m = read_whole(stream, limit);
    if (got.size() != m.frames.size()) broken("frame count", static_cast<long>(got.size()), static_cast<long>(m.frames.size()));
    for (std::size_t i = 0; i < got.size(); ++i) NET_FUZZ_CHECK(got[i] == m.frames[i]);
    NET_FUZZ_CHECK(status == m.status);
    if (status != FrameAssembler::Status::ok) {
      NET_FUZZ_CHECK(fa.last_claimed_length() == m.bad_length);
    } else {
      NET_FUZZ_CHECK(fa.mid_frame() == m.mid_frame);
    }
  };

  std::size_t at = 0;
  for (int chunk_no = 1; at < size; ++chunk_no) {
    const std::size_t want = data[at++];
    const std::size_t n = std::min(want, size - at);
    const Bytes chunk(reinterpret_cast<const std::byte*>(data + at), n);
    at += n;
    if (chunk_no == reset_at_chunk) {
      check_against_model();
      fa.reset();
      stream.clear();
      got.clear();
      status = FrameAssembler::Status::ok;
      NET_FUZZ_CHECK(!fa.mid_frame());
    }
    stream.insert(stream.end(), chunk.begin(), chunk.end());
    const auto st = fa.feed(chunk, [&](Bytes frame, FrameAssembler::Source source) {
      NET_FUZZ_CHECK(!frame.empty() && frame.size() <= limit);
      const bool in_chunk = frame.data() >= chunk.data() && frame.data() + frame.size() <= chunk.data() + chunk.size();
      NET_FUZZ_CHECK(in_chunk == (source == FrameAssembler::Source::chunk));
      got.emplace_back(frame.begin(), frame.end());
      live.emplace_back(frame, got.back());
    });
    if (status == FrameAssembler::Status::ok) {
      status = st;
    } else {
      NET_FUZZ_CHECK(st == status);  // a dead stream stays dead
    }
    if (recycle) {
      // Another connection takes a spilled buffer from the same pool in between.
      (void)other.feed(chunk.first(std::min<std::size_t>(chunk.size(), 8)), [](Bytes, FrameAssembler::Source) {});
      other.reset();
    }
    if (reclaim_each_chunk) check_live_and_reclaim();
  }
  check_against_model();
  check_live_and_reclaim();
  NET_FUZZ_CHECK(pool.lent_count() == 0);
  NET_FUZZ_CHECK(pool.free_count() <= SpillPool::kMaxFreeBuffers);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if (data[0] & 0x80) {
    fuzz_handshake(data + 1, size - 1);
  } else {
    fuzz_frames(data + 1, size - 1);
  }
  return 0;
}
