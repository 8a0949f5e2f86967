// The io_uring TCP transport's send path (net/transport.h), between two transports in this
// process on 127.0.0.1: server 2 dials server 1 (the larger id dials), ports come from the
// kernel, and the benchmark thread owns and polls both in busy mode. One pair serves every
// benchmark; it is opened before the first and closed after the last.
//
// BM_SendQueue: Transport::send alone, which frames the bytes and appends them to the peer's
//   queue; nothing leaves until the next poll(). Every kQueueFlushEvery frames the loop pauses
//   timing and flushes and drains the pair, so the queue stays at a steady size.
// BM_SendDelivered: a batch of `batch` send() calls, then poll() on the sender (one io_uring send
//   of everything queued) and poll() on both until the receiver has delivered every frame: the
//   whole loopback path, kernel included, per batch. Wall-clock time; items/s = frames/s.
//
// Exit status 77 (a skip for meson) when io_uring or a feature the transport needs is missing;
// 1 when the pair cannot be set up for any other reason.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "micro_main.h"
#include "net/transport.h"

namespace {

namespace net = fastzab::net;
using namespace std::chrono_literals;

constexpr std::uint64_t kReceiverId = 1;
constexpr std::uint64_t kSenderId = 2;
constexpr std::size_t kQueueFlushEvery = 256;
constexpr auto kDeadline = 5s;  // for a connection or a delivery: far above any sane latency

struct OpenFailure {
  std::string why;
  bool unsupported = false;  // the kernel lacks io_uring or a feature of it: a skip, not a failure
};

class LoopbackPair {
 public:
  static std::expected<std::unique_ptr<LoopbackPair>, OpenFailure> open() {
    auto pair = std::unique_ptr<LoopbackPair>(new LoopbackPair);
    const auto failed = [](const net::Error& e) {
      return std::unexpected(OpenFailure{e.to_string(), e.code == net::errc::unsupported});
    };
    auto receiver = net::Transport::open(config(kReceiverId, {kSenderId, "127.0.0.1", 0}));
    if (!receiver) return failed(receiver.error());
    pair->receiver_ = std::move(*receiver);
    // The receiver never dials the sender (the smaller id accepts), so it needs no port of it.
    auto sender = net::Transport::open(
        config(kSenderId, {kReceiverId, "127.0.0.1", pair->receiver_->listen_port()}));
    if (!sender) return failed(sender.error());
    pair->sender_ = std::move(*sender);
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (pair->session_ == net::kNoSession || !pair->receiver_up_) {
      if (std::chrono::steady_clock::now() > deadline) {
        return std::unexpected(OpenFailure{"the two transports did not connect within 5 s"});
      }
      if (auto e = pair->poll_both(); !e.empty()) return std::unexpected(OpenFailure{e});
    }
    return pair;
  }

  bool send(std::span<const std::byte> frame) {
    return sender_->send(kReceiverId, session_, frame);
  }

  // Queues `count` copies of the frame; an error text when send() refuses one.
  std::string send_all(std::span<const std::byte> frame, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      if (!send(frame)) return "send() refused the frame";
    }
    return {};
  }

  // Polls both until the receiver has delivered `frames` frames in all; an error text otherwise.
  std::string deliver_until(std::uint64_t frames) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (frames_received_ < frames) {
      if (auto e = poll_both(); !e.empty()) return e;
      if (session_ == net::kNoSession) return "the session went down";
      if (std::chrono::steady_clock::now() > deadline) return "frames not delivered within 5 s";
    }
    return {};
  }

  std::uint64_t frames_received() const { return frames_received_; }
  std::uint64_t bytes_received() const { return bytes_received_; }

 private:
  LoopbackPair() = default;

  static net::TransportConfig config(std::uint64_t self, net::PeerAddress peer) {
    net::TransportConfig c;
    c.self_id = self;
    c.cluster_id = 1;
    for (std::size_t i = 0; i < c.secret.size(); ++i) c.secret[i] = static_cast<unsigned char>(i);
    c.listen_host = "127.0.0.1";
    c.listen_port = 0;
    c.peers.push_back(std::move(peer));
    // The benchmark thread polls both in turn: neither poll may sleep.
    c.poll_mode = net::PollMode::busy;
    return c;
  }

  std::string poll_both() {
    auto sent = sender_->poll(0us, [this](const net::Event& e) {
      if (e.peer != kReceiverId) return;
      if (e.kind == net::Event::Kind::session_up) session_ = e.session;
      if (e.kind == net::Event::Kind::session_down && e.session == session_) {
        session_ = net::kNoSession;
      }
    });
    if (!sent) return sent.error().to_string();
    auto received = receiver_->poll(0us, [this](const net::Event& e) {
      if (e.kind == net::Event::Kind::session_up) receiver_up_ = true;
      if (e.kind != net::Event::Kind::frame) return;
      ++frames_received_;
      bytes_received_ += e.frame.size();
    });
    if (!received) return received.error().to_string();
    return {};
  }

  std::unique_ptr<net::Transport> receiver_;
  std::unique_ptr<net::Transport> sender_;
  net::SessionId session_ = net::kNoSession;  // the sender's session with the receiver
  bool receiver_up_ = false;
  std::uint64_t frames_received_ = 0;
  std::uint64_t bytes_received_ = 0;
};

LoopbackPair* g_pair = nullptr;

void BM_SendQueue(benchmark::State& state) {
  const auto frame_bytes = static_cast<std::size_t>(state.range(0));
  const std::vector<std::byte> frame(frame_bytes, std::byte{0x3c});
  LoopbackPair& pair = *g_pair;
  std::uint64_t target = pair.frames_received();
  // Two untimed flushes of a full queue grow both of the connection's send buffers (queued and
  // in flight swap on each flush) to their working size, as a steady stream of traffic would.
  for (int round = 0; round < 2; ++round) {
    target += kQueueFlushEvery;
    std::string error = pair.send_all(frame, kQueueFlushEvery);
    if (error.empty()) error = pair.deliver_until(target);
    if (!error.empty()) {
      fastzab::bench::fail(state, error.c_str());
      return;
    }
  }
  std::size_t queued = 0;
  for (auto _ : state) {
    if (!pair.send(frame)) {
      fastzab::bench::fail(state, "send() refused the frame");
      break;
    }
    ++target;
    if (++queued == kQueueFlushEvery) {
      state.PauseTiming();
      const std::string error = pair.deliver_until(target);
      state.ResumeTiming();
      if (!error.empty()) {
        fastzab::bench::fail(state, error.c_str());
        break;
      }
      queued = 0;
    }
  }
  // Leave nothing queued for the next benchmark.
  if (const std::string error = pair.deliver_until(target); !error.empty()) {
    fastzab::bench::fail(state, error.c_str());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(frame_bytes));
}

void BM_SendDelivered(benchmark::State& state) {
  const auto frame_bytes = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  const std::vector<std::byte> frame(frame_bytes, std::byte{0xc3});
  LoopbackPair& pair = *g_pair;
  const std::uint64_t bytes_before = pair.bytes_received();
  std::uint64_t target = pair.frames_received();
  for (auto _ : state) {
    target += batch;
    std::string error = pair.send_all(frame, batch);
    if (error.empty()) error = pair.deliver_until(target);
    if (!error.empty()) {
      fastzab::bench::fail(state, error.c_str());
      break;
    }
  }
  const auto frames = state.iterations() * static_cast<std::int64_t>(batch);
  if (pair.bytes_received() - bytes_before != static_cast<std::uint64_t>(frames) * frame_bytes) {
    fastzab::bench::fail(state,
                         "the receiver delivered a different number of bytes than were sent");
  }
  state.SetItemsProcessed(frames);
  state.SetBytesProcessed(frames * static_cast<std::int64_t>(frame_bytes));
}

void register_all() {
  benchmark::RegisterBenchmark("BM_SendQueue", BM_SendQueue)
      ->ArgName("frame")
      ->Arg(64)
      ->Arg(1 << 10)
      ->Arg(16 << 10);
  benchmark::RegisterBenchmark("BM_SendDelivered", BM_SendDelivered)
      ->ArgNames({"frame", "batch"})
      ->ArgsProduct({{64, 1 << 10}, {1, 16, 256}})
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  auto pair = LoopbackPair::open();
  if (!pair) {
    std::fprintf(stderr, "transport_bench: %s: %s\n",
                 pair.error().unsupported ? "skipped" : "cannot set up", pair.error().why.c_str());
    return pair.error().unsupported ? 77 : 1;
  }
  g_pair = pair->get();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // Closed here, on the thread that polled them (net/transport.h: the destructor reaps the ring).
  g_pair = nullptr;
  pair->reset();
  return 0;
}
