// The simulator's safety checkers (reference §5.1 and §5.2), fed by the Cluster as it carries
// out each node's outputs, so every property is checked at the step that could break it:
//  * leadership: at most one leader established per epoch;
//  * agreement / total order: every node's application state is a prefix of one sequence
//    (the "truth": the longest delivered), and that sequence keeps primary order (zxids increase,
//    each epoch's counters run 1, 2, 3, ...);
//  * integrity: every delivered entry was submitted, once, at the zxid its leader gave it;
//  * write outcomes: every write submitted to a node (leader or learner, which forwards it)
//    ends in exactly one write_done, unless that node crashes first; one that ends committed
//    at zxid Z was delivered at Z on that node, with its own payload (so it is in the agreed
//    sequence exactly once); at the end no write is left without an outcome;
//  * no acknowledged write lost: a node entering broadcast in epoch e holds every write
//    acknowledged in an epoch < e; at the end every node holds every acknowledged write;
//  * persist before ack: the frames a node sends (after its SendGate) never promise more than its
//    durable image holds: ACK(z) z durable; ACK(NEWLEADER) currentEpoch and everything synced
//    before NEWLEADER durable; ACKEPOCH the promised epoch and the advertised zxid durable;
//    LEADERINFO and NEWLEADER the leader's acceptedEpoch / currentEpoch durable;
//  * fail-stop on a failed durable op (disk errors): when a node's host learns that an append,
//    epoch write or snapshot save failed, no acknowledgement the node sent since that op was
//    issued (ACK, ACKEPOCH, ACK of NEWLEADER) may depend on it (the durable image the failure
//    left must hold it), and no frame at all leaves the node afterwards (until it restarts).
//
// Each violation names the checker that found it ("[name] ..."; Checkers::check()), so a
// self-test can require that a broken host trips the checker meant to catch it.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "disk.h"
#include "engine/core/codec.h"
#include "engine/core/io.h"
#include "engine/core/types.h"
#include "events.h"

namespace fastzab::sim {

class Checkers {
 public:
  explicit Checkers(std::size_t nodes);

  // ---- workload bookkeeping ----
  // Registers a client submission; tags are 1, 2, 3, ...
  // `retry_of`: the tag of the write's first attempt when this one retries it under the same
  // write id (the same payload); 0 for a new write.
  void submitted(std::uint64_t tag, std::uint32_t node, std::string payload,
                 std::uint64_t retry_of = 0);
  void proposal_accepted(std::uint32_t node, std::uint64_t tag, core::Zxid zxid);
  // The node's write_done; `app` is its application state (after every earlier deliver).
  void write_done(std::uint32_t node, const core::Output& done, const AppState& app);
  void client_disconnected(std::uint32_t node);  // a crash loses its clients' pending writes
  // Writes submitted and not yet ended (nor lost with a crashed node's clients).
  std::size_t open_writes() const noexcept { return open_.size(); }
  // Fails the run with the oldest write that never ended.
  void fail_open_writes();

  // ---- node events ----
  void established(std::uint32_t node, core::PeerState role, core::Epoch epoch);
  // The node's application gained entries [old_size, app.entries.size()).
  void delivered(std::uint32_t node, const AppState& app, std::size_t old_size);
  // The node's application state was replaced by a snapshot.
  void replaced(std::uint32_t node, const AppState& app);
  void entered_broadcast(std::uint32_t node, core::Epoch epoch, const AppState& app);
  void frame_received(std::uint32_t node, std::uint32_t from, core::SessionId s, core::Bytes f,
                      const Disk& disk);
  void frame_sent(std::uint32_t node, std::uint32_t to, core::SessionId s, core::Bytes f,
                  const Disk& disk);
  // The node (re)started: a new incarnation, no failed op yet.
  void node_started(std::uint32_t node);
  // The node's host learned that a durable op failed (`done.error`); `disk` is the durable image
  // that failure left.
  void disk_failed(std::uint32_t node, const Completion& done, const Disk& disk);
  // Recovery dropped these log entries of `node` (core::drop_unacknowledged_tail): none may be
  // one it acknowledged (ACK) or delivered.
  void dropped_on_recovery(std::uint32_t node, const std::vector<core::LoggedEntry>& dropped,
                           core::Zxid applied);
  // End of run: the node must hold every acknowledged write up to truth position `limit`.
  void final_check(std::uint32_t node, const AppState& app, std::int64_t limit);
  // The truth position of the entry submitted with `tag`, or -1.
  std::int64_t truth_index(std::uint64_t tag) const noexcept {
    return tag < subs_.size() ? subs_[tag].truth_index : -1;
  }

  // ---- verdict ----
  // `check` names the checker (see --expect-violation in main.cpp); "host" is a broken host
  // contract (outputs the simulated host cannot carry out) or a simulator bug.
  void fail(const char* check, std::uint32_t node, const std::string& what);
  void fail_global(const char* check, const std::string& what);
  void fail(std::uint32_t node, const std::string& what) { fail("host", node, what); }
  bool failed() const noexcept { return !violation_.empty(); }
  const std::string& violation() const noexcept { return violation_; }
  const std::string& check() const noexcept { return check_; }
  void set_time(Time t) noexcept { now_ = t; }
  void set_node_names(std::vector<std::string> names) { names_ = std::move(names); }

  // ---- statistics ----
  std::size_t commits() const noexcept { return truth_.size(); }
  std::size_t leaders() const noexcept { return leader_of_epoch_.size(); }
  std::size_t acknowledged() const noexcept { return acked_count_; }
  std::size_t refused() const noexcept { return refused_count_; }
  std::size_t forwarded_acknowledged() const noexcept { return forwarded_acked_; }
  std::size_t unknown_outcomes() const noexcept { return unknown_count_; }
  std::size_t retries_acknowledged() const noexcept { return retries_acked_; }
  std::int64_t max_acked_index() const noexcept { return max_acked_index_; }
  std::int64_t max_established_epoch() const noexcept {
    return leader_of_epoch_.empty() ? 0 : leader_of_epoch_.rbegin()->first;
  }
  const std::vector<AppEntry>& truth() const noexcept { return truth_; }

 private:
  // One attempt (a tag). A write retried under its id has several; the first attempt's record
  // stands for the write (truth_index, acked, attempts, refused_attempts).
  struct Submission {
    std::string payload;
    std::uint32_t node = 0;
    std::uint64_t write = 0;  // the tag of the write's first attempt
    core::Zxid assigned = core::kNoZxid;
    std::int64_t truth_index = -1;
    bool acked = false;
    bool ended = false;  // write_done seen, or its node crashed with it
    bool refused = false;
    std::uint32_t attempts = 1;
    std::uint32_t refused_attempts = 0;
  };
  void extend_truth(std::uint32_t node, const AppEntry& e);
  bool check_prefix(std::uint32_t node, const AppState& app, std::size_t from);
  void acknowledge(std::uint32_t node, Submission& s, core::Zxid zxid, std::size_t index);
  std::uint64_t tag_of(const std::string& payload) const;

  std::size_t n_;
  Time now_ = 0;
  std::string violation_;
  std::string check_;
  std::vector<std::string> names_;
  std::vector<AppEntry> truth_;
  std::map<std::int64_t, std::uint32_t> leader_of_epoch_;
  std::vector<Submission> subs_;                                   // by tag (0 unused)
  std::set<std::uint64_t> open_;  // tags of writes without an outcome yet
  std::size_t refused_count_ = 0;
  std::size_t unknown_count_ = 0;
  std::size_t forwarded_acked_ = 0;  // acknowledged writes a learner forwarded
  std::size_t retries_acked_ = 0;    // attempts that retried a write and ended committed
  std::map<std::int64_t, std::int64_t> acked_index_by_epoch_;      // epoch -> max truth index
  std::int64_t max_acked_index_ = -1;
  std::size_t acked_count_ = 0;
  // Last LEADERINFO epoch each node received, per (node, peer): (session, epoch).
  std::vector<std::pair<std::uint64_t, std::int64_t>> leaderinfo_;
  // The node's log end when it received NEWLEADER, per (node, peer): (session, zxid).
  std::vector<std::pair<std::uint64_t, core::Zxid>> newleader_;
  // Highest zxid each node ever ACKed, per epoch (acks are cumulative within the log).
  std::vector<std::map<std::int64_t, core::Zxid>> acked_by_node_;

  // ---- fail-stop on a failed durable op
  // An acknowledgement sent while some durable op was pending: what it promises is durable.
  struct AckSent {
    std::uint64_t last_issued = 0;  // Disk::last_issued() at the send
    core::PacketType type = core::PacketType::ack;
    core::Zxid zxid = core::kNoZxid;  // ACK: the entry; ACKEPOCH: the advertised last zxid
    std::int64_t epoch = 0;           // ACKEPOCH: promised epoch; ACK(NEWLEADER): its epoch
    core::Zxid synced = core::kNoZxid;  // ACK(NEWLEADER): log end when NEWLEADER arrived
    Time at = 0;
  };
  // Empty if `a`'s promise holds in `disk`'s durable image; else what is missing.
  static std::string ack_gap(const AckSent& a, const Disk& disk);
  static std::string describe(const AckSent& a);
  std::vector<std::vector<AckSent>> acks_;
  struct Failure {
    bool failed = false;
    Time at = 0;
    std::string what;
  };
  std::vector<Failure> failure_;
};

std::string zxid_str(core::Zxid z);

}  // namespace fastzab::sim
