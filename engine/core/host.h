// The pure host of a Node: it steps the node, passes every frame through the persist-before-ack
// gate, decodes the batches, and carries out each output, in order, through one Effects
// interface; completions come back through step() and reach both the node and the gate. What
// each host of the core would otherwise rebuild: the runtime's Replica uses it over log/ and
// net/, and a test host over its model of a disk and a network.
#pragma once

#include <cstdint>

#include "codec.h"
#include "io.h"
#include "node.h"
#include "send_gate.h"

namespace fastzab::core {

// The I/O of one server. Durable effects (append, truncate, persist_epochs, install_snapshot)
// must become durable in the order they are called; the implementation reports each completion
// by stepping the host with LogDurable, EpochsDurable or SnapshotInstalled (io.h).
class Effects {
 public:
  virtual ~Effects() = default;
  // A frame that may leave now, to `peer` on `session`.
  virtual void send(ServerId peer, SessionId session, Bytes frame) = 0;
  // `why`: Cause::none when the node is leaving its role (its role_change says why).
  virtual void close_session(ServerId peer, SessionId session, Cause why) = 0;
  // Log entries (header and value, decode_entry) with consecutive zxids from `first`.
  virtual void append(Zxid first, const EntryRange& entries) = 0;
  // Drop every entry above `last_kept`.
  virtual void truncate(Zxid last_kept) = 0;
  virtual void persist_epochs(Epoch accepted, Epoch current) = 0;
  // Replace the application's state and the log by a snapshot taken at `at`: `snapshot` whole
  // (what to save), `app_state` its application part (what to restore).
  virtual void install_snapshot(Zxid at, Bytes snapshot, Bytes app_state) = 0;
  // Append the application's state, taken now (at `at`, its applied zxid), to `out`.
  virtual void snapshot_state(Zxid at, ByteBuffer& out) = 0;
  // Committed values (no headers) with consecutive zxids from `first`, to apply in order.
  virtual void apply(Zxid first, const EntryRange& values) = 0;
  virtual void role_change(const Output& change) = 0;
  // The leader's own client proposal `tag` got `zxid` (its write_done follows).
  virtual void proposal_accepted(std::uint64_t /*tag*/, Zxid /*zxid*/) {}
  virtual void write_done(const Output& done) = 0;
  virtual void transfer_result(const Output& /*result*/) {}
  // False once an effect failed for good (a log write): the host carries out nothing more.
  virtual bool healthy() const { return true; }
  // The node has stepped with `in`; its outputs follow (hosts that trace the node's state).
  virtual void stepped(const Input& /*in*/) {}
  // The barrier a send_after_durable frame waits for: the core's. The simulator's host-bug
  // self-tests weaken it, to show that their checkers catch an early acknowledgement.
  virtual DurableBarrier held_barrier(const Output& send, Bytes /*frame*/) { return send.barrier; }
};

class Host {
 public:
  // Throws as Node's constructor does (std::invalid_argument) for a state it refuses.
  Host(NodeConfig config, DurableState state, Effects& effects);

  // Steps the node and carries out its outputs. After a completion input, the frames the gate
  // held for it leave first (before the node's answer to it, so every stream stays FIFO).
  void step(const Input& in);

  const Node& node() const noexcept { return node_; }
  // The outputs of the last step, for hosts that trace them.
  const Outputs& last_outputs() const noexcept { return outs_; }
  // Frames waiting for durability.
  std::size_t held() const noexcept { return gate_.held(); }

 private:
  void carry_out(const Output& o);

  Node node_;
  Effects& fx_;
  SendGate gate_;
  Outputs outs_;
  DurablePoint durable_;  // the node's, after its last step
  ByteBuffer state_;  // scratch: the application's state for a SNAP
};

}  // namespace fastzab::core
