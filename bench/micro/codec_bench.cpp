// The wire codec on the broadcast hot path (engine/core/codec.h): the leader encodes a PROPOSAL
// batch per flush and a COMMIT per advance of its commit point, a follower encodes an ACK per
// durable batch, and each side decodes what the other encoded.
//
// Encoding appends to one buffer that is cleared, not freed, between iterations, as the core's
// Outputs arena is; an untimed encode first grows it, so the timed loop allocates nothing. Decoding reads a frame built
// once before the loop; for a PROPOSAL it also validates the batch and walks its entries, which is
// what a follower does before it logs them (the entries stay views into the frame, nothing is
// copied). items/s counts entries (PROPOSAL) or frames (ACK, COMMIT); bytes/s counts frame bytes,
// for encoding only: decoding reads the lengths, never the payload, so its cost does not grow with
// the value size and a bytes/s figure would say nothing.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/core/codec.h"
#include "micro_main.h"

namespace {

using fastzab::core::BatchWriter;
using fastzab::core::ByteBuffer;
using fastzab::core::Bytes;
using fastzab::core::Epoch;
using fastzab::core::FrameKind;
using fastzab::core::PacketType;
using fastzab::core::Zxid;

constexpr Epoch kEpoch{7};

// A value whose bytes vary, so that nothing downstream can treat the payload as a constant.
std::vector<std::byte> make_value(std::size_t bytes) {
  std::vector<std::byte> value(bytes);
  for (std::size_t i = 0; i < bytes; ++i) value[i] = static_cast<std::byte>(i * 131 + 17);
  return value;
}

void encode_proposal(Zxid first, std::size_t entries, Bytes value, ByteBuffer& out) {
  BatchWriter writer(PacketType::proposal, first, out);
  for (std::size_t i = 0; i < entries; ++i) writer.add(value);
  writer.finish();
}

void BM_EncodeProposal(benchmark::State& state) {
  const auto value_bytes = static_cast<std::size_t>(state.range(0));
  const auto entries = static_cast<std::size_t>(state.range(1));
  const std::vector<std::byte> value = make_value(value_bytes);
  ByteBuffer frame;
  // Reach the working capacity before timing, as a long-running leader's arena has.
  encode_proposal(Zxid::make(kEpoch, 1), entries, value, frame);
  std::uint32_t counter = 1;
  for (auto _ : state) {
    frame.clear();
    encode_proposal(Zxid::make(kEpoch, counter), entries, value, frame);
    benchmark::DoNotOptimize(frame.data());
    benchmark::ClobberMemory();  // the frame's bytes must be written, as a send would read them
    counter += static_cast<std::uint32_t>(entries);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(entries));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(frame.size()));
}

void BM_DecodeProposal(benchmark::State& state) {
  const auto value_bytes = static_cast<std::size_t>(state.range(0));
  const auto entries = static_cast<std::size_t>(state.range(1));
  const std::vector<std::byte> value = make_value(value_bytes);
  ByteBuffer frame;
  encode_proposal(Zxid::make(kEpoch, 1), entries, value, frame);
  for (auto _ : state) {
    // As far as the compiler knows, a fresh frame each time.
    benchmark::DoNotOptimize(frame.data());
    auto decoded = fastzab::core::decode_frame(frame);
    if (!decoded || decoded->kind != FrameKind::quorum ||
        decoded->packet.type != PacketType::proposal) {
      fastzab::bench::fail(state, "the PROPOSAL frame did not decode");
      break;
    }
    auto batch = fastzab::core::decode_batch(decoded->packet.data);
    if (!batch || batch->size() != entries) {
      fastzab::bench::fail(state, "the PROPOSAL batch did not decode");
      break;
    }
    std::size_t payload_bytes = 0;
    for (Bytes entry : *batch) payload_bytes += entry.size();
    benchmark::DoNotOptimize(payload_bytes);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(entries));
}

// ACK and COMMIT are the same shape on the wire (type, zxid, null data): one frame per call.
void BM_EncodePacket(benchmark::State& state, PacketType type) {
  ByteBuffer frame;
  fastzab::core::encode_packet(type, Zxid::make(kEpoch, 1), Bytes{}, frame);
  std::uint32_t counter = 1;
  for (auto _ : state) {
    frame.clear();
    fastzab::core::encode_packet(type, Zxid::make(kEpoch, counter++), Bytes{}, frame);
    benchmark::DoNotOptimize(frame.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(frame.size()));
}

void BM_DecodePacket(benchmark::State& state, PacketType type) {
  ByteBuffer frame;
  fastzab::core::encode_packet(type, Zxid::make(kEpoch, 42), Bytes{}, frame);
  for (auto _ : state) {
    benchmark::DoNotOptimize(frame.data());
    auto decoded = fastzab::core::decode_frame(frame);
    if (!decoded || decoded->packet.type != type) {
      fastzab::bench::fail(state, "the packet did not decode");
      break;
    }
    benchmark::DoNotOptimize(decoded->packet.zxid);
  }
  state.SetItemsProcessed(state.iterations());
}

void register_all() {
  const auto proposal_args = [](benchmark::internal::Benchmark* b) {
    b->ArgNames({"value", "batch"})->ArgsProduct({{64, 1024, 16 << 10}, {1, 8, 64}});
  };
  benchmark::RegisterBenchmark("BM_EncodeProposal", BM_EncodeProposal)->Apply(proposal_args);
  benchmark::RegisterBenchmark("BM_DecodeProposal", BM_DecodeProposal)->Apply(proposal_args);
  benchmark::RegisterBenchmark("BM_EncodeAck", BM_EncodePacket, PacketType::ack);
  benchmark::RegisterBenchmark("BM_DecodeAck", BM_DecodePacket, PacketType::ack);
  benchmark::RegisterBenchmark("BM_EncodeCommit", BM_EncodePacket, PacketType::commit);
  benchmark::RegisterBenchmark("BM_DecodeCommit", BM_DecodePacket, PacketType::commit);
}

}  // namespace

int main(int argc, char** argv) { return fastzab::bench::run_main(argc, argv, register_all); }
