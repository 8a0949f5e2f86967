// The host side of the persist-before-ack rule. Every send and send_after_durable output passes
// through the gate; a send_after_durable frame is held until its DurableBarrier holds, and any
// later frame waits behind it, so every stream stays FIFO (but for frames the core marks
// may_overtake, which depend on nothing sent before them). What is durable is the node's own
// account (Node::durable(), one DurabilityTracker): the gate keeps no durable state of its
// own. core::Host drives it; a host without Host must pass node.durable() after every step.
#pragma once

#include <cstddef>
#include <utility>

#include "codec.h"
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

  // Call for each output, in order, with what is durable now. `emit(peer, session,
  // frame_bytes)` is called for every frame that may leave now.
  template <class Emit>
  void on_output(const Outputs& outs, const Output& o, const DurablePoint& durable, Emit&& emit) {
    if (o.kind != OutputKind::send && o.kind != OutputKind::send_after_durable) return;
    const DurableBarrier barrier = o.kind == OutputKind::send ? DurableBarrier{} : o.barrier;
    if ((held_.empty() || o.may_overtake) && durable.covers(barrier)) {
      emit(o.peer, o.session, outs.bytes(o));
      return;
    }
    const Bytes b = outs.bytes(o);
    Held& h = held_.push_back_slot();  // its frame buffer is reused
    h.peer = o.peer;
    h.session = o.session;
    h.barrier = barrier;
    h.frame.assign(b.begin(), b.end());
  }

  // The host's answer to a send_snapshot output: a SNAP frame carrying the client table (the
  // output's bytes, `client_table`) and the application's state (taken at `request.zxid`) to
  // the requested peer and session, in the stream's order like any other send.
  template <class Emit>
  void send_snapshot(const Output& request, Bytes client_table, Bytes state,
                     const DurablePoint& durable, Emit&& emit) {
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
    on_output(snap_, snap_.items.back(), durable, emit);
  }

  // Durability advanced (after the node stepped with a completion): held frames whose barrier
  // now holds leave, in order. Head-of-line: a frame leaves only after every frame queued
  // before it (one FIFO for all peers keeps the rule simple; held frames are rare and
  // short-lived).
  template <class Emit>
  void release(const DurablePoint& durable, Emit&& emit) {
    while (!held_.empty() && durable.covers(held_.front().barrier)) {
      const Held& h = held_.front();
      emit(h.peer, h.session, Bytes(h.frame));
      held_.pop_front();  // the slot keeps the frame's buffer for the next held frame
    }
  }

  // A crash loses every frame not yet sent.
  void clear() noexcept { held_.clear(); }
  std::size_t held() const noexcept { return held_.size(); }

 private:
  Ring<Held> held_;
  Outputs snap_;         // scratch for send_snapshot's frame
  ByteBuffer snapshot_;  // and for its data
};

}  // namespace fastzab::core
