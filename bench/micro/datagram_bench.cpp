// DatagramSession (net/datagram_session.h), the DPDK transport's per-peer protocol, without a
// network: two sessions in one thread joined by a lossless in-memory link. One iteration sends
// one frame from A, carries its packets to B, delivers the frame and carries B's ack back; the
// CPU per frame is the session layer's own cost (fragmentation, copies into the send slots,
// header checks, reassembly, acks). A lone ACK goes every `ack_every` packets, as configured.
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

void register_all() {
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
