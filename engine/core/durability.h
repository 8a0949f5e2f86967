// How far the log is durable, counted against the log as it is now. Appends complete in order,
// but a truncate or a snapshot install issued after an append changes what "durable through z"
// means: a completion for an append issued before TRUNC(t) vouches only for entries <= t, and
// nothing of a log replaced by a snapshot is durable until the snapshot is installed. The core
// keeps one (Node::durable()); SendGate reads it from there.
#pragma once

#include <cstddef>

#include "invariant.h"
#include "ring.h"
#include "types.h"

namespace fastzab::core {

class DurabilityTracker {
 public:
  void reset(Zxid durable) {
    ops_.clear();
    completed_ = durable;
    pending_truncates_ = 0;
    pending_snapshots_ = 0;
  }
  void issued_append(Zxid last) { ops_.push_back(Op{Op::append, last}); }
  void issued_truncate(Zxid to) {
    ops_.push_back(Op{Op::truncate, to});
    ++pending_truncates_;
  }
  void issued_snapshot(Zxid at) {
    ops_.push_back(Op{Op::snapshot, at});
    ++pending_snapshots_;
  }

  // The append whose last entry is `last` completed, and with it everything issued before it.
  // Returns false (and changes nothing) when no such append is outstanding: a host error.
  bool completed_append(Zxid last) { return complete(Op::append, last); }
  bool completed_snapshot(Zxid at) { return complete(Op::snapshot, at); }

  // The log as it is now is durable through this zxid (kNoZxid: nothing is).
  Zxid durable() const noexcept {
    // The common case (only appends pending) is O(1); truncates and snapshots are rare.
    if (pending_snapshots_ > 0) return kNoZxid;
    if (pending_truncates_ == 0) return completed_;
    Zxid v = completed_;
    for (const Op& op : ops_) {
      if (op.kind == Op::truncate && op.zxid < v) v = op.zxid;
      if (op.kind == Op::snapshot) v = kNoZxid;
    }
    return v;
  }
  std::size_t outstanding() const noexcept { return ops_.size(); }

 private:
  struct Op {
    enum Kind { append, truncate, snapshot } kind;
    Zxid zxid;
  };
  bool complete(Op::Kind kind, Zxid z) {
    std::size_t n = 0;
    while (n < ops_.size() && !(ops_[n].kind == kind && ops_[n].zxid == z)) ++n;
    if (n == ops_.size()) return false;
    for (std::size_t i = 0; i <= n; ++i) {
      const Op op = ops_.front();
      ops_.pop_front();
      if (op.kind == Op::truncate) {
        if (op.zxid < completed_) completed_ = op.zxid;
        --pending_truncates_;
      } else {
        if (op.kind == Op::snapshot) --pending_snapshots_;
        completed_ = op.zxid;
      }
    }
    return true;
  }
  Ring<Op> ops_;
  Zxid completed_ = kNoZxid;
  std::size_t pending_truncates_ = 0;
  std::size_t pending_snapshots_ = 0;
};

}  // namespace fastzab::core
