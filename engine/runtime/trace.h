// Commit tracing (zoo.cfg `trace=on`): per write, the CLOCK_MONOTONIC time at which it passed
// each stage of its commit, on every server it touched, so that one commit's time can be split
// into where it went (bench/cluster/waterfall.h joins the servers' tables). README.md,
// "Commit tracing", has the stages and the `trce` line format.
//
// Storage: a Table per group and per writing thread: kSlots slots indexed by the zxid's low bits
// (consecutive zxids, consecutive slots), allocated once when tracing is on. Stamps are taken in
// the runtime and the server, never in engine/core (which has no clock). One thread writes a
// Table: the group thread its group's table, the application (client) thread a table of its own;
// stamps the client thread takes before the zxid is known travel with the write in its ring slot.
// Any thread may read a Table while its writer runs (read() below): each slot's zxid doubles as
// a sequence lock, so a reader never mixes two writes' stamps.
//
// Off (the default) no Table exists: every stage costs one predictable branch on a null pointer
// or a false flag, and nothing else is done.
#pragma once

#include <time.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace fastzab::runtime::trace {

// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of one host, so stamps taken
// by different servers (and by a benchmark client) on one machine compare directly.
inline std::uint64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// The stages, in the order a write passes them (a follower's and a leader's interleave: see
// README.md). A follower's ACK as the leader receives it is kept apart (Record::acks), one per
// follower.
enum class Stage : std::uint8_t {
  sock_read,      // client thread of the server the client talks to: the request's bytes read
  ring_push,      // client thread: the write pushed onto the ring to the group thread
  ring_pop,       // group thread: the write popped from that ring
  forwarded,      // group thread of a follower: the write sent to the leader
  proposed,       // leader's group thread: handed to the core, which gave it its zxid
  proposal_sent,  // leader: the PROPOSAL handed to the transport (the first follower's)
  proposal_recv,  // follower: the PROPOSAL received
  log_submit,     // the log batch holding it submitted (one write + fdatasync)
  durable,        // that batch durable (fdatasync returned)
  ack_sent,       // follower: the ACK handed to the transport (after durable: persist-before-ack)
  commit,         // leader: a quorum holds it (Record::quorum names whose durability completed it)
  commit_recv,    // follower: the COMMIT received
  applied,        // StateMachine::apply done
  reply_handed,   // group thread: the outcome pushed onto the ring to the client thread
  reply_polled,   // client thread: the outcome taken from that ring
  reply_written,  // client thread: the reply written to the client's socket
};
inline constexpr std::size_t kStageCount = 16;
static_assert(static_cast<std::size_t>(Stage::reply_written) + 1 == kStageCount);

inline constexpr std::array<std::string_view, kStageCount> kStageNames = {
    "sock_read", "ring_push",  "ring_pop",    "forwarded",   "proposed",     "proposal_sent",
    "proposal_recv", "log_submit", "durable", "ack_sent",    "commit",       "commit_recv",
    "applied",   "reply_handed", "reply_polled", "reply_written"};

constexpr std::string_view name(Stage s) noexcept {
  return kStageNames[static_cast<std::size_t>(s)];
}
constexpr std::optional<Stage> stage_named(std::string_view n) noexcept {
  for (std::size_t i = 0; i < kStageCount; ++i) {
    if (kStageNames[i] == n) return static_cast<Stage>(i);
  }
  return std::nullopt;
}

// The server's role when it first traced the zxid.
enum class Role : std::uint8_t { none = 0, leader, follower, observer, looking };
constexpr std::string_view name(Role r) noexcept {
  switch (r) {
    case Role::leader: return "leader";
    case Role::follower: return "follower";
    case Role::observer: return "observer";
    case Role::looking: return "looking";
    case Role::none: break;
  }
  return "none";
}

// Stamps the client thread takes before the zxid exists; they ride in the write's ring slot.
struct ClientStamps {
  std::uint64_t sock_read = 0;
  std::uint64_t ring_push = 0;
  std::uint64_t ring_pop = 0;  // taken by the group thread when it pops the slot
};

inline constexpr std::size_t kSlots = 4096;  // the last kSlots zxids traced, per table
inline constexpr std::size_t kMaxAcks = 6;   // ACKs kept per zxid (the first followers')
static_assert((kSlots & (kSlots - 1)) == 0, "kSlots is a power of two");

struct Ack {
  std::uint64_t peer = 0;
  std::uint64_t ns = 0;
};

// A consistent copy of one slot.
struct Record {
  std::uint64_t zxid = 0;
  Role role = Role::none;
  std::array<std::uint64_t, kStageCount> ns{};  // 0: not reached (or not seen here)
  std::uint64_t quorum = 0;                     // commit: whose durability completed the quorum
  std::array<Ack, kMaxAcks> acks{};
  std::size_t ack_count = 0;

  std::uint64_t at(Stage s) const noexcept { return ns[static_cast<std::size_t>(s)]; }
};

class Table {
 public:
  Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // ---- writer (one thread) ----
  // Makes `zxid`'s slot hold `zxid` (clearing what an older zxid left there); a no-op if it
  // already does.
  void claim(std::uint64_t zxid, Role role) noexcept;
  bool holds(std::uint64_t zxid) const noexcept;
  // Sets the stage if the slot holds `zxid` and the stage is not set yet (the first time wins).
  void stamp(std::uint64_t zxid, Stage s, std::uint64_t ns) noexcept;
  // stamp() for `count` consecutive zxids from `first` (at most kSlots of them).
  void stamp_range(std::uint64_t first, std::uint64_t count, Stage s, std::uint64_t ns) noexcept;
  // stamp() for `last`, then `last`-1, ... while the slot holds that zxid, the stage is unset and
  // the zxid is in `last`'s epoch: how cumulative events (durable up to Z, COMMIT Z) reach every
  // traced zxid they cover without any state of their own.
  void stamp_down(std::uint64_t last, Stage s, std::uint64_t ns) noexcept;
  // The leader's commit of everything up to `last`, completed by `quorum`'s durability.
  void commit_down(std::uint64_t last, std::uint64_t quorum, std::uint64_t ns) noexcept;
  // `peer`'s ACK of `last` (cumulative): an ack stamp on `last` and down, as stamp_down().
  void ack_down(std::uint64_t last, std::uint64_t peer, std::uint64_t ns) noexcept;

  // ---- any thread ----
  // A consistent copy of slot `index` (< kSlots); false when it is empty or was being reused.
  bool read(std::size_t index, Record& out) const noexcept;

 private:
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> zxid{0};  // 0 while empty or being reset (the sequence lock)
    std::atomic<std::uint8_t> role{0};
    std::atomic<std::uint8_t> ack_count{0};
    std::array<std::atomic<std::uint64_t>, kStageCount> ns{};
    std::atomic<std::uint64_t> quorum{0};
    std::array<std::atomic<std::uint64_t>, kMaxAcks> ack_peer{};
    std::array<std::atomic<std::uint64_t>, kMaxAcks> ack_ns{};
  };
  Slot& slot(std::uint64_t zxid) noexcept { return slots_[zxid & (kSlots - 1)]; }
  const Slot& slot(std::uint64_t zxid) const noexcept { return slots_[zxid & (kSlots - 1)]; }
  bool add_ack(Slot& s, std::uint64_t peer, std::uint64_t ns) noexcept;

  std::unique_ptr<Slot[]> slots_;
};

// Client stamps of writes whose zxid is not known yet, by the Replica's internal write tag
// (group thread only: no atomics). The leader learns the zxid when the core accepts the
// proposal, a follower when the leader's forward reply comes back; bind() then moves them into
// the zxid's slot.
class PendingWrites {
 public:
  PendingWrites();
  void add(std::uint64_t itag, const ClientStamps& s) noexcept;
  void forwarded(std::uint64_t itag, std::uint64_t ns) noexcept;
  void bind(std::uint64_t itag, std::uint64_t zxid, Role role, Table& into) noexcept;

 private:
  struct Entry {
    std::uint64_t itag = 0;
    ClientStamps stamps;
    std::uint64_t forwarded = 0;
  };
  std::unique_ptr<Entry[]> entries_;
};

// What a quorum frame (engine/core/codec.h) says, as far as tracing cares: PROPOSAL (zxid and
// how many entries), ACK and COMMIT (zxid). Bounds-checked; nullopt for anything else.
struct FramePeek {
  enum class Kind : std::uint8_t { proposal, ack, commit } kind;
  std::uint64_t zxid;
  std::uint64_t count;  // proposal: entries in the batch; else 1
};
std::optional<FramePeek> peek(std::span<const std::byte> frame) noexcept;

// Appends one `trce` line (README.md "Commit tracing"), with '\n'. `app` is the client thread's
// record of the same zxid, or null; its stages are merged in.
void append_line(std::string& out, const Record& group_record, const Record* app,
                 std::uint64_t server, unsigned group);

}  // namespace fastzab::runtime::trace
