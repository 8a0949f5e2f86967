// fastzab's embedding API: run a cluster member inside your process and replicate your state
// machine with ZAB. Include this header and link fastzab_runtime (see README.md, "Embedding").
//
// Threads. A Node runs its replication group on a thread of its own (the group thread), which
// calls your StateMachine. Your application talks to it from ONE thread of its choice (the first
// to call propose() or poll()), through two bounded lock-free single-producer single-consumer
// rings: writes in, results and notifications out. Nothing on that path takes a lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <type_traits>
#include <span>
#include <string>
#include <vector>

#include "engine/core/write_outcome.h"

namespace fastzab {

// Your replicated state. Called on the group thread, one call at a time, in zxid order.
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // A committed entry; every server applies the same entries in the same order.
  virtual void apply(std::uint64_t zxid, std::span<const std::byte> entry) = 0;
  // Your state including every entry applied so far. Sent to a server too far behind to catch up
  // from the log, and saved locally so the log can be purged below it.
  virtual std::vector<std::byte> snapshot() = 0;
  // Replace your state by `snapshot`, taken at `zxid` (at start-up from the newest local
  // snapshot, or when this server is caught up by a snapshot from the leader).
  virtual void restore(std::uint64_t zxid, std::span<const std::byte> snapshot) = 0;
};

enum class Role : std::uint8_t { looking, follower, leader, observer };
const char* to_string(Role r) noexcept;

// Where a server is in ZAB: electing, then (leader and learners) discovery and synchronization,
// then broadcast. A leader accepts writes only in broadcast.
enum class Phase : std::uint8_t { election, discovery, synchronization, broadcast };
const char* to_string(Phase p) noexcept;

// How a write ended: fastzab::WriteOutcome, defined with the core that decides it
// (engine/core/write_outcome.h, included above): committed, a refusal (nothing was proposed:
// no_leader, too_large, rejected, stale_sequence), unknown_outcome or stopped.

// Names a write for exactly-once retries. `client` is the writer's id (0: anonymous, no
// retries), `seq` its sequence, increasing from one write of that client to the next. A write
// proposed again with the same id ends as the first one did (committed at the original zxid,
// never applied twice); a seq older than the client's last is refused as stale_sequence. To have
// every retry answered, a client keeps one write at a time: with several in flight, a retry of
// an older seq after a newer one committed is stale_sequence. Ids are per replication group:
// retry in the group the write was first proposed to.
struct WriteId {
  std::uint64_t client = 0;
  std::uint64_t seq = 0;
};

// How a transfer_leadership() request ended.
enum class TransferResult : std::uint8_t {
  handed_off,    // the target holds every committed write and was told to lead; this server
                 // now follows it (the target accepts writes once it is established)
  not_leader,    // this server is not the established leader of the group
  in_progress,   // another transfer is under way
  no_candidate,  // the named server (or every server) is not a connected, synced voter
  aborted,       // the target was lost or did not catch up within transferTimeoutMs; this
                 // server goes on leading
};
const char* to_string(TransferResult r) noexcept;

// What poll() hands back.
struct Event {
  enum class Kind : std::uint8_t { write_committed, write_failed, role_changed, transfer_ended };
  Kind kind = Kind::write_committed;
  unsigned group = 0;      // which replication group (0 with groups=1)
  std::uint64_t tag = 0;   // writes: the tag given to propose(); transfer_ended: its request's
  std::uint64_t zxid = 0;  // write_committed: where it committed (this server applied it)
  WriteOutcome outcome = WriteOutcome::committed;  // write_failed: why (never committed)
  Role role = Role::looking;  // role_changed
  std::uint64_t leader = 0;   // role_changed: the leader's server id (0: none);
                              // transfer_ended: the target (0: none was chosen)
  std::int64_t epoch = 0;     // role_changed
  bool established = false;   // role_changed: the leader finished synchronizing its followers
  // role_changed to looking: why this server left its role ("no quorum of followers heard from
  // within syncLimit", ...), a static string for logs; null otherwise.
  const char* why = nullptr;
  TransferResult transfer = TransferResult::handed_off;  // transfer_ended
};

// A non-owning reference to poll()'s callback (any callable taking const Event&). Unlike a
// std::function it never allocates, whatever the lambda captures; it must not outlive the call.
class EventHandler {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, EventHandler> &&
             std::is_invocable_v<F&, const Event&>)
  EventHandler(F&& f) noexcept  // NOLINT: implicit, so poll([&](const Event& e) {...}) reads well
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, const Event& e) { (*static_cast<std::remove_reference_t<F>*>(o))(e); }) {}
  void operator()(const Event& e) const { call_(object_, e); }

 private:
  void* object_;
  void (*call_)(void*, const Event&);
};

struct NodeOptions {
  std::string config_file;  // a zoo.cfg (engine/runtime/README.md lists the keys)
  // The zoo.cfg's content, when the caller has it already (read once, or made in memory): then
  // config_file is not read, only named in messages. Empty: read config_file.
  std::string config_text = {};
  std::uint64_t id = 0;     // this server's id: one of the file's server.N lines
  // A snapshot (and a purge of the log below it) after this many applied entries; 0: the
  // config's snapCount.
  std::uint64_t snapshot_every = 0;
  // Replaces the config's dataDir when not empty (several servers on one machine sharing one
  // config file).
  std::string data_dir = {};
  // Replaces the config's `cpus` when not empty: the CPUs of the group threads, in the zoo.cfg
  // syntax ("0,1", "2-5"; engine/runtime/README.md, "CPU placement"). Several servers on one
  // host sharing one config file give each its own. Messages cite it as --cpus.
  std::string cpus = {};
  // Replaces the config's `poll` when not empty: busy, adaptive or blocking (servers sharing
  // one config file that poll differently, as a benchmark's busy pair beside a blocking third).
  // Messages cite it as --poll.
  std::string poll = {};
};

// Published by the group thread after each turn; read from any thread.
struct NodeStatus {
  Role role = Role::looking;
  Phase phase = Phase::election;
  // The role a client may rely on: "leader" only once it accepts writes (broadcast), and the
  // same for followers and observers; before that "<role>-<phase>" (e.g.
  // "leader-synchronization"), and "looking" while electing. srvr's Mode and mntr's
  // zk_server_state say this.
  std::string mode() const;
  std::uint64_t leader = 0;
  std::int64_t epoch = 0;
  std::uint64_t last_zxid = 0;       // last logged
  std::uint64_t committed_zxid = 0;
  std::uint64_t applied = 0;         // entries applied since start
  std::uint64_t quorum_frames_in = 0, quorum_frames_out = 0, quorum_sessions_up = 0;
  std::uint64_t handshakes_refused = 0, connections_dropped_garbage = 0, frames_oversized = 0;
  // Unauthenticated quorum connections closed to make room for newer ones (net/README.md).
  std::uint64_t handshakes_evicted = 0;
  // DPDK: answers to HELLOs and stale packets left out by their rate limit (net/README.md).
  std::uint64_t quorum_answers_throttled = 0;
  // Records the log's recovery cut at start (a torn tail; log/FORMAT.md): 0 on a clean start.
  std::uint64_t recovery_records_cut = 0;
  // 1 while the log's state-lost mark is set (a recovery cut records that may have been
  // acknowledged): the server neither votes nor counts in a quorum until it has synchronized
  // with an established leader (README.md "Log recovery").
  std::uint64_t state_lost = 0;
  // Catch-up since start: snapshots installed from a leader (SNAP), truncations of this log by a
  // leader (TRUNC) and the records they dropped.
  std::uint64_t snapshots_installed = 0, truncations = 0, records_truncated = 0;
  // The log's group commit since start: batches written (each one write, plus one fdatasync with
  // sync=fdatasync), their bytes and records. bytes / batches is the batch size.
  std::uint64_t log_batches = 0, log_bytes_written = 0, log_records_written = 0;
};

// Why Node::start() failed. `configuration`: the config, the options or the state machines
// passed do not describe a server that can run here (the file, a --cpus list, ports that
// overlap, poll=busy without CPUs, transport=dpdk in a build without it): fix them, a retry
// cannot help (fastzab-server exits 2). `environment`: the machine refused (the log's files, a
// taken port, descriptors, the data directory): fastzab-server exits 1.
struct StartError {
  enum class Kind : std::uint8_t { configuration, environment };
  Kind kind = Kind::environment;
  std::string message;  // one line naming what is wrong
};
const char* to_string(StartError::Kind k) noexcept;

class Node {
 public:
  // Reads the config, opens and recovers the log (restoring `app` from the newest snapshot),
  // opens the transport and starts the group thread. `app` must outlive the Node. Errors are
  // one line naming what is wrong (a config line, a corrupt log file and offset, a taken port).
  static std::expected<std::unique_ptr<Node>, StartError> start(const NodeOptions& options,
                                                                 StateMachine& app);
  // With `groups=G` in the config: G independent replication groups, each with its own thread,
  // log (dataDir/group-<g>), quorum port (quorumPort + g) and state machine (apps[g]). Groups
  // share nothing; each orders its own writes. Group threads are pinned only as the config's
  // `cpus` (or NodeOptions::cpus) says; poll=busy without one listed CPU per group is refused.
  static std::expected<std::unique_ptr<Node>, StartError> start(
      const NodeOptions& options, std::span<StateMachine* const> apps);
  unsigned groups() const noexcept;
  ~Node();  // stop()s
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Queues a write; its outcome arrives through poll() with the same tag (exactly one
  // write_committed or write_failed). Returns false, queuing nothing, when the ring to the group
  // thread is full (8192 writes, or 2 MiB of values over 232 bytes not yet taken by the group
  // thread): poll() and try again. Allocates nothing (but for a value larger than any entry,
  // which fails as too_large). Followers forward writes to the leader.
  bool propose(std::uint64_t tag, std::span<const std::byte> entry);  // to group 0
  bool propose(unsigned group, std::uint64_t tag, std::span<const std::byte> entry);
  // The same, recording for commit tracing when the application received the write
  // (CLOCK_MONOTONIC nanoseconds; ignored unless tracing is on).
  bool propose(unsigned group, std::uint64_t tag, std::span<const std::byte> entry,
               std::uint64_t received_ns);
  // A write named by `id` (WriteId above): retrying it with the same id applies it at most once.
  bool propose(unsigned group, std::uint64_t tag, std::span<const std::byte> entry, WriteId id,
               std::uint64_t received_ns = 0);

  // Planned failover: asks this server, if it is the group's established leader, to hand
  // leadership to server `target` (0: the voting follower that has acknowledged the most). The
  // leader stops taking writes (they fail with no_leader: nothing proposed, retry), waits until
  // the target durably holds and a quorum has committed everything, then tells every server to
  // follow the target, which becomes leader of the next epoch without an election. No
  // acknowledged write is lost. The outcome arrives through poll() as transfer_ended with
  // `tag`. Returns false, queuing nothing, while an earlier request has not yet reached the
  // group thread. To stop after a hand-over (a planned restart), wait first for the
  // role_changed event that shows this server an established follower: stopping at once can
  // close the connections before the others read the hand-over (fastzab-server does this on
  // SIGTERM).
  bool transfer_leadership(unsigned group, std::uint64_t tag, std::uint64_t target = 0);

  // Calls `on_event` for each waiting event (write outcomes, role changes), in order; returns
  // how many. Never blocks.
  std::size_t poll(EventHandler on_event);
  // Blocks until an event waits or `timeout` passes; true if one waits.
  bool wait(std::chrono::microseconds timeout);
  // Readable (an eventfd) while events wait: for applications with their own epoll loop. Read
  // it (8 bytes) to rearm it, then poll().
  int event_fd() const noexcept;

  NodeStatus status(unsigned group = 0) const;

  // Commit tracing (zoo.cfg `trace=on`; engine/runtime/README.md, "Commit tracing"): per write,
  // the CLOCK_MONOTONIC time of each stage of its commit, for the last 4096 zxids per group.
  bool tracing() const noexcept;
  // The application wrote the reply of the write that committed at `zxid` (in `group`) back to
  // its client at `written_ns` (CLOCK_MONOTONIC). A no-op unless tracing is on.
  void trace_reply_written(unsigned group, std::uint64_t zxid, std::uint64_t written_ns);
  // One line per traced zxid (the format is in engine/cmd/README.md, `trce`), ascending zxids
  // per group; empty when tracing is off. These two and the stamps taken in propose() and
  // poll() belong to the application's thread.
  std::string trace_dump() const;
  // Stops the group thread (the log is left consistent; a restart recovers it). Pending writes
  // end as write_failed/stopped at the next poll(). Idempotent.
  void stop();
  // True once the group thread stopped on its own (a failed log write or sync: the node must be
  // stopped and restarted; recovery keeps every acknowledged write). failure() says why.
  bool failed() const noexcept;
  std::string failure() const;

  struct Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fastzab
