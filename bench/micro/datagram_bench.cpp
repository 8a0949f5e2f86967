// DatagramSession (net/datagram_session.h), the DPDK transport's per-peer protocol, without a
// network: two sessions in one thread joined by a lossless in-memory link. One iteration sends
// one frame from A, carries its packets to B, delivers the frame and carries B's ack back; the
// CPU per frame is the session layer's own cost (fragmentation, copies into the send slots,
// header checks, reassembly, acks). A lone ACK goes every `ack_every` packets, as configured.
// DatagramSessionStart: what a new session costs the polling thread (a peer restarted).
#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bench/micro/micro_main.h"
#include "net/datagram_session.h"

namespace fastzab::bench {
namespace {

void BM_DatagramFrame(benchmark::State& state) {
  const std::size_t frame_bytes = static_cast<std::size_t>(state.range(0));
  net::DatagramSessionConfig c;
  c.ack_every = 16;
  net::DatagramSession a(c, 1, 2);
  net::DatagramSession b(c, 2, 1);
  const std::vector<std::byte> frame(frame_bytes, std::byte{0x5a});
  std::vector<std::byte> wire;
  std::vector<std::size_t> ends;  // packet boundaries in `wire`
  std::uint64_t now = 1, delivered = 0, bytes = 0;
  const auto carry = [&](net::DatagramSession& to) {
    std::size_t from = 0;
    for (std::size_t end : ends) {
      to.receive(std::span<const std::byte>(wire).subspan(from, end - from), now,
                 [&](std::span<const std::byte> f) {
                   ++delivered;
                   bytes += f.size();
                 });
      from = end;
    }
    wire.clear();
    ends.clear();
  };
  const auto out = [&](std::span<const std::byte> p) {
    wire.insert(wire.end(), p.begin(), p.end());
    ends.push_back(wire.size());
  };
  wire.reserve(frame_bytes * 2 + 4096);
  ends.reserve(1024);
  for (auto _ : state) {
    if (!a.send(frame)) return fail(state, "the send slots filled up: acks are not flowing");
    a.poll(now, out);
    carry(b);
    b.poll(now, out);
    carry(a);
    ++now;
  }
  if (delivered != static_cast<std::uint64_t>(state.iterations())) {
    return fail(state, "a frame was not delivered");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(delivered));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

// A session as the DPDK transport makes one (send slots for a 16 MiB frame: 17.7 MB), and its
// first 64-byte frame sent. recycled:1 hands each session the previous one's slots, as a
// DatagramPeer does; recycled:0 makes new ones every time (a peer's first session): fresh
// pages from the kernel, as in a server, because glibc is told to map every large block anew
// (by default, after the first free it would serve the next from pages already mapped).
void BM_DatagramSessionStart(benchmark::State& state) {
  const bool recycled = state.range(0) != 0;
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  net::DatagramSessionConfig c;
  c.max_frame_bytes = std::size_t{16} << 20;
  c.send_slots = (c.max_frame_bytes + c.mtu_payload - 1) / c.mtu_payload + c.window;
  const std::vector<std::byte> frame(64, std::byte{0x5a});
  // A peer makes its slots before its first session (recycled:1); not timed.
  net::DatagramSession::SlotStorage spare;
  if (recycled) spare = net::DatagramSession::make_slots(c);
  std::uint64_t id = 1, sent = 0;
  for (auto _ : state) {
    net::DatagramSession s(c, id, id + 1, recycled ? std::move(spare) : net::DatagramSession::SlotStorage{});
    id += 2;
    if (!s.send(frame)) return fail(state, "a new session refused a 64-byte frame");
    s.poll(1, [&](std::span<const std::byte>) { ++sent; });
    spare = s.release_slots();
  }
  if (sent < static_cast<std::uint64_t>(state.iterations())) return fail(state, "nothing was sent");
  state.SetItemsProcessed(state.iterations());
}

void register_all() {
  benchmark::RegisterBenchmark("DatagramSessionStart", BM_DatagramSessionStart)
      ->ArgName("recycled")
      ->Arg(0)
      ->Arg(1)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("DatagramFrame", BM_DatagramFrame)
      ->ArgName("frame")
      ->Arg(64)
      ->Arg(1400)
      ->Arg(16384)
      ->Arg(65536);
}

}  // namespace
}  // namespace fastzab::bench

int main(int argc, char** argv) { return fastzab::bench::run_main(argc, argv, fastzab::bench::register_all); }
