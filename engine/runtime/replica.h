// One replication group on one core. It owns the core's Host (engine/core/host.h: the Node, its
// persist-before-ack gate, output dispatch) and is that host's Effects over the group's Log,
// Transport and StateMachine. It runs the loop of style practice 12: receive a burst of frames,
// step the core, carry out its outputs in order (log writes, sends, delivery to the
// application), submit the log batch, report log completions back, flush the sends.
//
// Everything here runs on the thread that calls run_once() (the group's core). Other threads
// talk to it through the embedding layer's SPSC rings, never directly.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/host.h"
#include "engine/core/io.h"
#include "engine/core/node.h"
#include "engine/core/ring.h"
#include "engine/include/fastzab/fastzab.h"
#include "engine/runtime/error.h"
#include "engine/runtime/trace.h"
#include "log/log.h"
#include "net/transport.h"

namespace fastzab::runtime {

// The application's replicated state machine. Called on the group's thread, in zxid order; keep
// each call short (it delays the group's next turn).
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // A committed entry. Called exactly once per zxid, in order, never for an entry <= the zxid
  // of the last restore().
  virtual void apply(std::uint64_t zxid, std::span<const std::byte> entry) = 0;
  // The state including every entry applied so far (a leader sends it to a learner that is too
  // far behind for a DIFF).
  virtual std::vector<std::byte> snapshot() = 0;
  // Replaces the state by a snapshot taken at `zxid` (at start-up, or when this node is caught
  // up by SNAP).
  virtual void restore(std::uint64_t zxid, std::span<const std::byte> snapshot) = 0;
};

// What the host learns that the embedding layer and the server want to hear about. Each may be
// empty. Called on the group's thread.
struct ReplicaHooks {
  // A write submitted with submit(tag, ...) committed at `zxid` and this server applied it.
  std::function<void(std::uint64_t tag, std::uint64_t zxid)> committed;
  // `why` is never committed or stopped (only fastzab::Node ends writes as stopped).
  std::function<void(std::uint64_t tag, WriteOutcome why)> failed;
  // `why`: to looking, why this server left its role (a static string); else null.
  std::function<void(core::PeerState role, std::uint64_t leader, std::int64_t epoch,
                     bool established, const char* why)>
      role_changed;
  // A transfer_leadership() request ended. `target`: the server it named or chose (0: none).
  std::function<void(std::uint64_t tag, core::TransferOutcome outcome, std::uint64_t target)>
      transfer_ended;
};

struct ReplicaOptions {
  core::NodeConfig node;               // cluster, self, limits in ticks
  std::chrono::microseconds tick{std::chrono::milliseconds(50)};  // what one core tick is
  std::string log_dir;
  log::Options log;                    // cluster_id, sync mode, writer
  net::TransportConfig transport;      // self, peers, secret, poll mode
  // Opens the transport from `transport`, on the Replica's thread (transport=dpdk: a DPDK
  // transport over the process's EAL). Empty: net::Transport::open, the io_uring TCP transport.
  std::function<net::Result<std::unique_ptr<net::Transport>>(const net::TransportConfig&)>
      open_transport;
  // A local snapshot (and a purge of the log below it) after this many applied entries; 0: never.
  std::uint64_t snapshot_every = 0;
  // Commit tracing (zoo.cfg trace=on): the table this group's stamps go to, written on the
  // Replica's thread only; it must outlive the Replica. Null (the default): tracing is off.
  trace::Table* trace = nullptr;
};

struct ReplicaCounters {
  std::uint64_t turns = 0;
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t frames_dropped = 0;  // to a session that was already gone
  std::uint64_t appended = 0;
  std::uint64_t delivered = 0;
  std::uint64_t snapshots_sent = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t truncations = 0;         // truncate outputs (TRUNC) that dropped log records
  std::uint64_t records_truncated = 0;   // records they dropped (and the start-up recovery rule)
  std::uint64_t snapshots_taken = 0;
};

class Replica final : private core::Effects {
 public:
  // Opens and recovers the log, restores the application from the newest snapshot, applies the
  // core's recovery rule to the log tail, builds the core and opens the transport. Errors are
  // one line naming what failed (a corrupt log names its file and offset).
  static Result<std::unique_ptr<Replica>> open(ReplicaOptions options, StateMachine& app,
                                               ReplicaHooks hooks = {});
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // A write from a client of this server, wherever the leader is: it reaches the core at the
  // next turn, which proposes it when this server leads and forwards it to the leader (REQUEST)
  // when it follows. Ends in exactly one of ReplicaHooks::committed (once this server applied
  // it) or failed, as the core's write_done says. `stamps`: what the client thread traced of it
  // (read only when tracing is on).
  // `id`: the client's write id (client 0: anonymous); a retry with the same id is not applied
  // twice (core/io.h ClientProposal).
  void submit(std::uint64_t tag, std::span<const std::byte> bytes,
              const trace::ClientStamps* stamps = nullptr, core::WriteId id = {});
  // submit() without the copy: `bytes` must stay valid until the next run_once() returns (the
  // group thread leaves them in their ring slot until then), which proposes or forwards them.
  void submit_in_place(std::uint64_t tag, std::span<const std::byte> bytes,
                       const trace::ClientStamps* stamps = nullptr, core::WriteId id = {});
  // Calls f(tag) for every write submitted here that has no outcome yet (at stop they end as
  // `stopped`).
  template <typename F>
  void for_each_unfinished_submit(F&& f) const {
    for (const Write& w : writes_) {
      if (w.live) f(w.user_tag);
    }
  }

  // Asks the core to hand leadership to server `target` (0: the leader picks the most caught-up
  // follower); it reaches the core at the next turn. Ends in ReplicaHooks::transfer_ended with
  // the same tag. While it runs the leader proposes nothing: writes fail with no_leader
  // (nothing proposed, safe to retry) until the new leader is established.
  void transfer_leadership(std::uint64_t tag, std::uint64_t target);

  // One turn of the loop. Waits at most `max_wait` for network events when there is nothing to
  // do. An error (a failed log write or sync: the log is poisoned) means the group must stop:
  // nothing more may be acknowledged, and a restart recovers.
  Result<void> run_once(std::chrono::microseconds max_wait);

  // Thread-safe: makes a waiting run_once() return early (after propose() from another thread
  // the embedding layer calls this).
  void wake();

  const core::Node& node() const noexcept { return host_->node(); }
  const ReplicaCounters& counters() const noexcept { return counters_; }
  const net::Counters& transport_counters() const noexcept { return transport_->counters(); }
  std::uint16_t listen_port() const noexcept { return transport_->listen_port(); }
  const log::Log& log() const noexcept { return *log_; }
  std::string_view transport_description() const { return transport_->describe(); }

 private:
  Replica(ReplicaOptions options, StateMachine& app, ReplicaHooks hooks);
  Result<void> start();
  void step(const core::Input& input);
  // core::Effects: what the host carries out, in order. A failure sets fatal_ (healthy() turns
  // false and the host stops).
  void send(core::ServerId peer, core::SessionId session, core::Bytes frame) override;
  void close_session(core::ServerId peer, core::SessionId session, core::Cause why) override;
  void append(core::Zxid first, const core::EntryRange& entries) override;
  void truncate(core::Zxid last_kept) override;
  void persist_epochs(core::Epoch accepted, core::Epoch current) override;
  void install_snapshot(core::Zxid at, core::Bytes snapshot, core::Bytes app_state) override;
  void snapshot_state(core::Zxid at, core::ByteBuffer& out) override;
  void apply(core::Zxid first, const core::EntryRange& values) override;
  void role_change(const core::Output& change) override;
  void proposal_accepted(std::uint64_t tag, core::Zxid zxid) override;
  void write_done(const core::Output& done) override;
  void transfer_result(const core::Output& result) override;
  bool healthy() const override { return !fatal_; }
  void stepped(const core::Input& input) override;
  // Every append handed to the log so far is durable once the completion queued next is.
  void flush_pending_appends();
  Result<void> report_durable();
  Result<void> drain_completions();
  Result<void> maybe_snapshot();
  // Commit tracing (README.md "Commit tracing"); called only when trace_ is set.
  trace::Role trace_role() const noexcept;
  void trace_step(const core::Input& input, core::Zxid committed_before);
  void trace_frame_in(core::ServerId peer, core::Bytes frame);
  void trace_frame_out(core::Bytes frame);

  ReplicaOptions opt_;
  StateMachine& app_;
  ReplicaHooks hooks_;
  std::unique_ptr<log::Log> log_;
  std::unique_ptr<net::Transport> transport_;
  std::optional<core::Host> host_;
  core::Zxid committed_before_step_;  // for commit tracing
  // A submitted write's value: in place (the caller keeps it until run_once returns), or copied
  // into proposal_arena_ at `offset` (views are made at step time: the arena may grow first).
  struct QueuedProposal {
    std::uint64_t tag;
    const std::byte* in_place;  // nullptr: in the arena
    std::size_t offset;
    std::size_t length;
    core::WriteId id;
  };
  void enqueue(std::uint64_t tag, std::span<const std::byte> bytes,
               const trace::ClientStamps* stamps, core::WriteId id, bool in_place);
  std::vector<QueuedProposal> queued_;
  core::ByteBuffer proposal_arena_;
  std::vector<core::ClientProposal> proposals_;  // views of the queued values, for one step
  std::vector<core::input::TransferLeadership> transfers_;  // for the next turn
  // Writes submit()ted here, by the internal tag the core knows them by (the user's tags need
  // not be unique). Tags are handed out in order and writes end roughly in order, so they live
  // in a ring indexed by tag - first_itag_ (no allocation per write, unlike a node-based map);
  // finished ones are marked dead and dropped once they reach the front.
  struct Write {
    bool live = true;
    std::uint64_t user_tag = 0;
  };
  core::Ring<Write> writes_;
  std::uint64_t first_itag_ = 1;  // the internal tag of writes_.front()
  // Appends handed to the log and not yet reported durable: the last zxid of each append output.
  // (Rings, not deques: a deque allocates and frees a node as its few elements move along.)
  core::Ring<std::int64_t> pending_appends_;
  // Completions to report after the current outputs are carried out, in issue order.
  core::Ring<core::Input> completions_;
  std::chrono::steady_clock::time_point next_tick_;
  std::uint64_t applied_zxid_ = 0;
  std::uint64_t applied_since_snapshot_ = 0;
  std::optional<Error> fatal_;
  ReplicaCounters counters_;
  // Commit tracing: null when off, and then nothing below is used.
  trace::Table* trace_ = nullptr;
  std::unique_ptr<trace::PendingWrites> trace_pending_;
  std::uint64_t trace_propose_ns_ = 0;  // when the current batch of proposals went to the core
  std::uint64_t trace_submitted_ = 0;   // the log's last zxid at the last traced submit
};

}  // namespace fastzab::runtime
