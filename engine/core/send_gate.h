// The host side of the persist-before-ack rule. Every send and send_after_durable output passes
// through the gate; a send_after_durable frame is held until its DurableBarrier holds, and any
// later frame waits behind it, so every stream stays FIFO (but for frames the core marks
// may_overtake, which depend on nothing sent before them). The gate follows the host's durable
// state from the same outputs and completions the core sees (see DurabilityTracker).
#pragma once

#include <cstddef>
#include <utility>

#include "codec.h"
#include "durability.h"
#include "io.h"
#include "ring.h"

namespace fastzab::core {

class SendGate {
 public:
  struct Held {
    ServerId peer;
    SessionId session;
    DurableBarrier barrier;
    ByteBuffer frame;
  };

  // Call for each output, in order. `emit(peer, session, frame_bytes)` is called for every
  // frame that may leave now (including earlier held ones that became free).
  template <class Emit>
  void on_output(const Outputs& outs, const Output& o, Emit&& emit) {
    switch (o.kind) {
      case OutputKind::send:
      case OutputKind::send_after_durable: {
        const DurableBarrier barrier =
            o.kind == OutputKind::send ? DurableBarrier{} : o.barrier;
        if ((held_.empty() || o.may_overtake) && satisfied(barrier)) {
          emit(o.peer, o.session, outs.bytes(o));
        } else {
          const Bytes b = outs.bytes(o);
          Held& h = held_.push_back_slot();  // its frame buffer is reused
          h.peer = o.peer;
          h.session = o.session;
          h.barrier = barrier;
          h.frame.assign(b.begin(), b.end());
        }
        break;
      }
      case OutputKind::append:
        log_.issued_append(Zxid{o.zxid.value + static_cast<std::int64_t>(o.count) - 1});
        break;
      case OutputKind::truncate:
        log_.issued_truncate(o.zxid);
        break;
      case OutputKind::install_snapshot:
        log_.issued_snapshot(o.zxid);
        break;
      default:
        break;
    }
  }

  // The host's answer to a send_snapshot output: a SNAP frame carrying the client table (the
  // output's bytes, `client_table`) and the application's state (taken at `request.zxid`) to
  // the requested peer and session, in the stream's order like any other send.
  template <class Emit>
  void send_snapshot(const Output& request, Bytes client_table, Bytes state, Emit&& emit) {
    snap_.clear();
    snapshot_.assign(client_table.begin(), client_table.end());
    snapshot_.insert(snapshot_.end(), state.begin(), state.end());
    encode_packet(PacketType::snap, request.zxid, Bytes(snapshot_), snap_.arena);
    Output so;
    so.kind = OutputKind::send;
    so.peer = request.peer;
    so.session = request.session;
    so.offset = 0;
    so.length = snap_.arena.size();
    snap_.items.push_back(so);
    on_output(snap_, snap_.items.back(), emit);
  }

  template <class Emit>
  void on_log_durable(Zxid z, Emit&& emit) {
    FASTZAB_ASSERT(log_.completed_append(z));
    release(emit);
  }
  template <class Emit>
  void on_snapshot_installed(Zxid z, Emit&& emit) {
    FASTZAB_ASSERT(log_.completed_snapshot(z));
    release(emit);
  }
  template <class Emit>
  void on_epochs_durable(Epoch accepted, Epoch current, Emit&& emit) {
    if (accepted > accepted_) accepted_ = accepted;
    if (current > current_) current_ = current;
    release(emit);
  }

  // A crash loses every frame not yet sent.
  void reset(Zxid log_durable, Epoch accepted, Epoch current) {
    held_.clear();
    log_.reset(log_durable);
    accepted_ = accepted;
    current_ = current;
  }

  std::size_t held() const noexcept { return held_.size(); }
  Zxid log_durable() const noexcept { return log_.durable(); }

 private:
  bool satisfied(const DurableBarrier& b) const noexcept {
    return b.log_zxid <= log_.durable() && b.accepted <= accepted_ && b.current <= current_;
  }
  template <class Emit>
  void release(Emit& emit) {
    // Head-of-line: a frame leaves only after every frame queued before it (one FIFO for all
    // peers keeps the rule simple; held frames are rare and short-lived).
    while (!held_.empty() && satisfied(held_.front().barrier)) {
      const Held& h = held_.front();
      emit(h.peer, h.session, Bytes(h.frame));
      held_.pop_front();  // the slot keeps the frame's buffer for the next held frame
    }
  }

  Ring<Held> held_;
  Outputs snap_;         // scratch for send_snapshot's frame
  ByteBuffer snapshot_;  // and for its data
  DurabilityTracker log_;
  Epoch accepted_ = kNoEpoch;
  Epoch current_ = kNoEpoch;
};

}  // namespace fastzab::core
