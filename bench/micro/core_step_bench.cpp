// The protocol core's cost per message on the leader's hot path (engine/core/node.h): a leader in
// the broadcast phase, driven through Node::step alone, with no host, disk or network. The
// followers are synthetic: their frames (notifications, FOLLOWERINFO, ACKEPOCH, ACKs) are built
// here with the core's codec and handed to the leader as peer messages, through the same public
// API a host uses. The leader is the largest id of n voters (1..n-1 follow) and every entry
// carries a `value`-byte payload.
//
// BM_LeaderAck: one step() of one ACK frame, decoding and outputs included. The acking follower
//   is the one that completes a quorum (commit:1: COMMIT to every follower plus a deliver of the
//   entry) or one whose entry was already committed (commit:0: only bookkeeping). Proposals are
//   made, and made durable on the leader, in untimed chunks of kChunk entries, so each timed step
//   meets a leader with up to kChunk entries in flight. items/s = acks/s; `outputs` is the mean
//   number of outputs per step.
// BM_LeaderCommitRound: everything the leader's core does per committed batch: the client
//   proposals, the leader's own log durable, then the acks of just enough followers for a
//   quorum. Building each ACK frame (a follower's work, ~21 bytes) is inside the timed loop.
//   items/s = committed entries/s; `outputs` is the mean number of outputs per round.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/codec.h"
#include "engine/core/constants.h"
#include "engine/core/io.h"
#include "engine/core/node.h"
#include "engine/core/quorum.h"
#include "engine/core/types.h"
#include "micro_main.h"

namespace {

namespace core = fastzab::core;
using core::ByteBuffer;
using core::Bytes;
using core::Epoch;
using core::PacketType;
using core::ServerId;
using core::SessionId;
using core::Zxid;

// Entries proposed per untimed refill of BM_LeaderAck; the core's default batch bound, so one
// refill is one PROPOSAL per follower.
constexpr std::size_t kChunk = 1024;

// One leader core and the synthetic followers around it.
class SyntheticLeader {
 public:
  SyntheticLeader(std::size_t members, std::size_t value_bytes)
      : members_(members), value_(value_bytes, std::byte{0x6b}) {
    std::vector<core::Member> list;
    for (std::size_t i = 1; i <= members; ++i) {
      list.push_back(core::Member{ServerId{static_cast<std::int64_t>(i)}});
    }
    auto cluster = core::ClusterConfig::make(std::move(list), core::QuorumVerifier::Kind::majority);
    if (!cluster) {
      error_ = core::to_string(cluster.error());
      return;
    }
    node_.emplace(core::NodeConfig{*cluster, leader_id()}, core::DurableState{});
  }

  std::size_t quorum() const { return members_ / 2 + 1; }
  static ServerId follower_id(std::size_t f) { return ServerId{static_cast<std::int64_t>(f)}; }
  static SessionId session_of(std::size_t f) { return SessionId{f}; }
  ServerId leader_id() const { return ServerId{static_cast<std::int64_t>(members_)}; }
  std::size_t followers() const { return members_ - 1; }

  // Election, discovery and synchronization, each follower answering as a fastzab follower with
  // an empty log would. Returns an empty string once the leader is in the broadcast phase.
  std::string establish() {
    if (!error_.empty()) return error_;
    for (std::size_t f = 1; f <= followers(); ++f) {
      step(core::input::SessionUp{follower_id(f), session_of(f)});
    }
    // Fast Leader Election: every follower votes for the leader in round 1, then the finalize
    // wait passes in ticks.
    for (std::size_t f = 1; f <= followers(); ++f) {
      core::Notification vote;
      vote.state = core::PeerState::looking;
      vote.leader = leader_id();
      vote.zxid = core::kZeroZxid;
      vote.round = 1;
      vote.peer_epoch = Epoch{0};
      frame_.clear();
      core::encode_notification(vote, frame_);
      from(f);
    }
    for (int t = 0; t < 16 && node_->state() != core::PeerState::leading; ++t) {
      step(core::input::Tick{});
    }
    if (node_->state() != core::PeerState::leading) return "the leader did not win the election";
    // Discovery: FOLLOWERINFO, then ACKEPOCH once LEADERINFO went out; the leader's epochs become
    // durable at once.
    for (std::size_t f = 1; f <= followers(); ++f) {
      frame_.clear();
      core::encode_learner_info(PacketType::followerinfo, Zxid::make(Epoch{0}, 0),
                                core::LearnerInfo{follower_id(f), core::kLearnerProtocolVersion, 0},
                                frame_);
      from(f);
    }
    for (std::size_t f = 1; f <= followers(); ++f) {
      frame_.clear();
      core::encode_ackepoch(core::kZeroZxid, core::AckEpochInfo{0, core::kZeroZxid}, frame_);
      from(f);
    }
    const Epoch epoch = node_->accepted_epoch();
    step(core::input::EpochsDurable{epoch, epoch});
    // Synchronization: every follower acks NEWLEADER.
    for (std::size_t f = 1; f <= followers(); ++f) {
      frame_.clear();
      core::encode_packet(PacketType::ack, Zxid::make(epoch, 0), Bytes{}, frame_);
      from(f);
    }
    if (node_->phase() != core::ZabPhase::broadcast) return "the leader did not reach broadcast";
    return {};
  }

  // Client proposals of `count` entries in one step, and the leader's log durable through them.
  Zxid propose(std::size_t count) {
    proposals_.assign(count, core::ClientProposal{0, Bytes(value_), {}});
    step(core::input::ClientProposals{proposals_});
    const Zxid last = node_->last_logged();
    step(core::input::LogDurable{last});
    return last;
  }

  // An ACK of every entry up to z (acks are cumulative).
  static void encode_ack(Zxid z, ByteBuffer& out) {
    core::encode_packet(PacketType::ack, z, Bytes{}, out);
  }
  core::input::Message message(std::size_t f, Bytes frame) const {
    return core::input::Message{follower_id(f), session_of(f), frame};
  }
  void ack(std::size_t f, Zxid z) {
    frame_.clear();
    encode_ack(z, frame_);
    from(f);
  }

  core::Node& node() { return *node_; }
  core::Outputs& outputs() { return out_; }
  // Outputs of every step made through this class so far.
  std::size_t outputs_emitted() const { return outputs_emitted_; }

 private:
  void step(const core::Input& in) {
    out_.clear();
    node_->step(in, out_);
    outputs_emitted_ += out_.items.size();
  }
  void from(std::size_t f) { step(message(f, frame_)); }

  std::size_t members_;
  std::vector<std::byte> value_;
  std::optional<core::Node> node_;
  core::Outputs out_;
  ByteBuffer frame_;
  std::vector<core::ClientProposal> proposals_;
  std::string error_;
  std::size_t outputs_emitted_ = 0;
};

void BM_LeaderAck(benchmark::State& state) {
  const auto members = static_cast<std::size_t>(state.range(0));
  const auto value_bytes = static_cast<std::size_t>(state.range(1));
  const bool commits = state.range(2) != 0;
  SyntheticLeader leader(members, value_bytes);
  if (const std::string why = leader.establish(); !why.empty()) {
    fastzab::bench::fail(state, why.c_str());
    return;
  }
  // Followers 1..quorum-2 plus the leader are one short of a quorum: follower quorum-1's ack
  // completes it. With commit:0 follower quorum-1 acks in the untimed refill too, and the timed
  // acks come from follower quorum, one past the quorum.
  const std::size_t acker = commits ? leader.quorum() - 1 : leader.quorum();
  const std::size_t untimed_ackers = acker - 1;

  ByteBuffer ack_frames;  // kChunk ACK frames of equal length, back to back
  std::size_t frame_bytes = 0;
  std::size_t next_frame = kChunk;
  Zxid chunk_first = core::kNoZxid;
  std::int64_t outputs = 0;
  core::Outputs& out = leader.outputs();
  core::Node& node = leader.node();
  for (auto _ : state) {
    if (next_frame == kChunk) {
      state.PauseTiming();
      const Zxid last = leader.propose(kChunk);
      // One epoch, so the chunk's zxids are consecutive (the first of an epoch is not
      // last_logged().next() of the one before: the counter restarts at 1).
      chunk_first = Zxid{last.value - static_cast<std::int64_t>(kChunk - 1)};
      for (std::size_t f = 1; f <= untimed_ackers; ++f) leader.ack(f, last);
      ack_frames.clear();
      for (Zxid z = chunk_first; z <= last; z = z.next()) {
        SyntheticLeader::encode_ack(z, ack_frames);
      }
      frame_bytes = ack_frames.size() / kChunk;
      next_frame = 0;
      state.ResumeTiming();
    }
    const Bytes frame = Bytes(ack_frames).subspan(next_frame * frame_bytes, frame_bytes);
    out.clear();
    node.step(leader.message(acker, frame), out);
    outputs += static_cast<std::int64_t>(out.items.size());
    benchmark::DoNotOptimize(out.items.data());
    ++next_frame;
  }
  // The figures mean something only if the acks did what they were meant to.
  const Zxid last_acked{chunk_first.value + static_cast<std::int64_t>(next_frame) - 1};
  const Zxid expected_commit = commits ? last_acked : node.last_logged();
  if (node.committed() != expected_commit || node.state() != core::PeerState::leading) {
    fastzab::bench::fail(state,
                         "the leader's commit point is not where the acks should have put it");
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["outputs"] =
      benchmark::Counter(static_cast<double>(outputs), benchmark::Counter::kAvgIterations);
}

void BM_LeaderCommitRound(benchmark::State& state) {
  const auto members = static_cast<std::size_t>(state.range(0));
  const auto value_bytes = static_cast<std::size_t>(state.range(1));
  const auto batch = static_cast<std::size_t>(state.range(2));
  SyntheticLeader leader(members, value_bytes);
  if (const std::string why = leader.establish(); !why.empty()) {
    fastzab::bench::fail(state, why.c_str());
    return;
  }
  const std::size_t ackers = leader.quorum() - 1;
  const std::size_t outputs_before = leader.outputs_emitted();
  for (auto _ : state) {
    const Zxid last = leader.propose(batch);
    for (std::size_t f = 1; f <= ackers; ++f) leader.ack(f, last);
    benchmark::DoNotOptimize(leader.outputs().items.data());
  }
  const auto outputs = static_cast<std::int64_t>(leader.outputs_emitted() - outputs_before);
  if (leader.node().committed() != leader.node().last_logged()) {
    fastzab::bench::fail(state, "the last round did not commit");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  state.counters["outputs"] =
      benchmark::Counter(static_cast<double>(outputs), benchmark::Counter::kAvgIterations);
}

void register_all() {
  benchmark::RegisterBenchmark("BM_LeaderAck", BM_LeaderAck)
      ->ArgNames({"members", "value", "commit"})
      ->ArgsProduct({{3, 5}, {64, 1024}, {1, 0}});
  benchmark::RegisterBenchmark("BM_LeaderCommitRound", BM_LeaderCommitRound)
      ->ArgNames({"members", "value", "batch"})
      ->ArgsProduct({{3, 5}, {64, 1024}, {1, 16}});
}

}  // namespace

int main(int argc, char** argv) { return fastzab::bench::run_main(argc, argv, register_all); }
