// The test world that the unit and scenario suites share (tests/support/README.md): a scripted,
// deterministic host of the real core.
//
// An Ensemble runs the real core::Node of every member that is "up", on a network and disks the
// test controls completely:
//
//  * network: one session per pair of members, each with a fresh SessionId. Frames queue in send
//    order; the test delivers them one by one (deliver_next / deliver(from, to)) or until quiet
//    (settle). A pair can be disconnected (SessionDown to both ends, the session's in-flight
//    frames dropped), a link held (its frames wait), the members split by a partition, and every
//    delivery passed through a filter that may rewrite or drop it.
//  * disk: each member has a queue of durable operations in issue order (append, truncate,
//    persist_epochs, install_snapshot). complete_disk(sid) carries them out against the member's
//    durable image and feeds LogDurable / EpochsDurable / SnapshotInstalled to the node and its
//    SendGate; hold_disk(sid) keeps them pending. settle() completes every disk not held.
//  * crash(sid) loses the pending operations and keeps the durable image (epochs, log, the
//    application's state); restart(sid) builds a new Node from that image.
//  * the application of a member is the sequence of entries delivered to it; it is durable as
//    soon as it is delivered. send_snapshot outputs become SNAP frames carrying it.
//  * fake members: config members without a Node, driven by the test. Frames sent to a fake are
//    kept in its inbox; the test sends it arbitrary frames with the fake_* helpers.
//
// Everything is single-threaded and ordered; the same script gives the same run. A transcript
// records one compact line per notable event (see Transcript), so that tests can assert on
// sequences the way the protocol paper states them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/codec.h"
#include "engine/core/io.h"
#include "engine/core/node.h"
#include "engine/core/quorum.h"
#include "engine/core/host.h"
#include "engine/core/types.h"

namespace fastzab::test {

using core::ByteBuffer;
using core::Bytes;
using core::Epoch;
using core::PacketType;
using core::PeerState;
using core::ServerId;
using core::SessionId;
using core::Zxid;
using core::ZabPhase;

using Sid = std::int64_t;

// make(epoch, counter), the way the protocol texts write zxids.
constexpr Zxid z(std::int64_t epoch, std::uint32_t counter) {
  return Zxid::make(Epoch{epoch}, counter);
}
// "1:3" for make(1,3); "-1" for the lost zxid; "none" for kNoZxid.
std::string str(Zxid zxid);

// One transaction of the application: the zxid it was committed with and its bytes.
struct Entry {
  Zxid zxid;
  std::string value;
  friend bool operator==(const Entry&, const Entry&) = default;
};

// What survives a crash of a member.
struct DurableImage {
  Epoch accepted{0};
  Epoch current{0};
  Zxid log_base = core::kZeroZxid;
  std::vector<Entry> log;  // every logged entry after log_base, in zxid order
  std::vector<Entry> app;  // the application: every entry delivered, in order
  Zxid applied = core::kZeroZxid;

  // A member that promised and holds `current`, whose log is `log` and whose application has
  // applied every entry of the log up to `applied`.
  static DurableImage with(std::int64_t accepted, std::int64_t current, std::vector<Entry> log,
                           Zxid applied);
  Zxid last_logged() const { return log.empty() ? log_base : log.back().zxid; }
  bool logs(Zxid zxid) const;
  core::DurableState to_core() const;
};

// The application state as a snapshot travels in a SNAP frame: int32 count, then per entry int64
// zxid, int32 length, bytes.
ByteBuffer encode_app_state(const std::vector<Entry>& entries);
std::optional<std::vector<Entry>> decode_app_state(Bytes bytes);
// A log entry holding `value` (an anonymous write's header, then the value).
ByteBuffer log_entry(const std::string& value);
// A snapshot as the core frames it: an empty client table, then encode_app_state(entries).
ByteBuffer encode_snapshot(const std::vector<Entry>& entries);
std::optional<std::vector<Entry>> decode_snapshot(Bytes bytes);

// An owned, decoded copy of a frame a member received.
struct Heard {
  Sid from = 0;
  SessionId session;
  core::FrameKind kind = core::FrameKind::quorum;
  // notification
  PeerState state = PeerState::looking;
  Sid leader = 0;
  Zxid zxid = core::kNoZxid;
  std::int64_t round = 0;
  Epoch peer_epoch = core::kNoEpoch;
  // quorum packet (zxid above)
  PacketType type = PacketType::ping;
  ByteBuffer data;

  bool is(PacketType t) const { return kind == core::FrameKind::quorum && type == t; }
  // The entries of a PROPOSAL / INFORM batch.
  std::vector<Entry> entries() const;
  // LEADERINFO's protocol version, ACKEPOCH's currentEpoch, ...
  std::int32_t int32() const;
  std::string describe() const;  // "LEADERINFO 1:0"
};

// One line per notable event:
//   "n3 LEADING e1" / "n3 LEADING e1 established" / "n1 FOLLOWING n3" / "n1 LOOKING"
//   "n3>n1 LEADERINFO 1:0"        a quorum packet leaving n3 for n1 (after its SendGate)
//   "n1>n3 ACK 1:0"
//   "n2 deliver 1:1-1:3"          deliveries (first-last of one output)
//   "n2 append 1:1-1:2" / "n2 truncate 1:1" / "n2 epochs a1 c0" / "n2 snapshot 1:8"  issued
//   "n2 crash" / "n2 restart" / "n2 start" / "n2 recovery truncate 1:1" / "n2 refused to start"
// PINGs and election notifications are left out unless asked for.
class Transcript {
 public:
  void add(std::string line) { lines_.push_back(std::move(line)); }
  const std::vector<std::string>& lines() const { return lines_; }
  // The lines containing `needle`, in order.
  std::vector<std::string> grep(const std::string& needle) const;
  // The lines containing any of the needles, in order.
  std::vector<std::string> grep_any(std::initializer_list<std::string> needles) const;
  bool contains(const std::string& needle) const { return !grep(needle).empty(); }
  std::size_t count(const std::string& needle) const { return grep(needle).size(); }
  // Index of the first line at or after `from` containing the needle (lines().size() if none).
  std::size_t find(const std::string& needle, std::size_t from = 0) const;
  // True when lines containing the needles appear in this order (other lines may come between).
  ::testing::AssertionResult in_order(const std::vector<std::string>& needles) const;
  std::string dump() const;
  std::size_t size() const { return lines_.size(); }

 private:
  std::vector<std::string> lines_;
};

// The members and tuning of an ensemble.
struct Spec {
  std::vector<core::Member> members;
  core::QuorumVerifier::Kind kind = core::QuorumVerifier::Kind::majority;
  core::NodeConfig tuning;     // cluster and self are filled in per member
  std::set<Sid> fakes;         // members driven by the test

  // Voters 1..voters, then observers voters+1..voters+observers.
  static Spec majority(std::size_t voters, std::size_t observers = 0);
  // Voters in the given groups (sids), with weights (default 1), observers after them.
  static Spec hierarchical(const std::vector<std::vector<Sid>>& groups,
                           const std::map<Sid, std::int64_t>& weights = {},
                           const std::vector<Sid>& observers = {});
  Spec& fake(std::initializer_list<Sid> sids);
};

class Ensemble {
 public:
  enum class Mode { down, up, fake };

  explicit Ensemble(const Spec& spec);
  ~Ensemble();
  Ensemble(Ensemble&&) noexcept;

  // ---- membership and lifetime ----
  // The durable image a member starts from; edit it before start().
  DurableImage& disk(Sid sid) { return m(sid).durable; }
  const DurableImage& disk(Sid sid) const { return m(sid).durable; }
  // The node config of a member (timings, limits); edit before start()/restart().
  core::NodeConfig& config(Sid sid) { return m(sid).config; }
  // Starts every member that is not fake (connecting it to every reachable member).
  void start_all();
  // Builds the member's Node from its durable image (after the host recovery rule
  // core::drop_unacknowledged_tail, logged as "nX recovery truncate Z") and connects it to every
  // reachable member.
  // A fake member may be started: it becomes a real one.
  void start(Sid sid);
  void crash(Sid sid);
  void restart(Sid sid) { start(sid); }
  Mode mode(Sid sid) const { return m(sid).mode; }
  bool up(Sid sid) const { return m(sid).mode == Mode::up; }
  std::vector<Sid> sids() const;

  // ---- network ----
  void connect(Sid a, Sid b);     // no-op if connected or not reachable
  void disconnect(Sid a, Sid b);  // SessionDown to both ends; in-flight frames are dropped
  bool connected(Sid a, Sid b) const;
  SessionId session(Sid a, Sid b) const;
  // Members in different groups cannot reach each other: crossing sessions go down. Members not
  // listed form one more group of their own.
  void partition(const std::vector<std::vector<Sid>>& groups);
  // Cuts one pair (stays cut until heal()).
  void cut(Sid a, Sid b);
  // Removes every partition and cut and reconnects every pair of live members.
  void heal();
  bool reachable(Sid a, Sid b) const;
  // While held, the frames from `from` to `to` stay queued (the session stays up).
  void hold_link(Sid from, Sid to, bool held = true);
  // A stopped process (SIGSTOP): no ticks, its links and disk held, its sessions up. (Session
  // changes still reach it: the world has no queue for them.)
  void freeze(Sid sid, bool frozen = true);
  // Reconnect, at every tick, pairs whose session went down (close_session, crash) but that are
  // reachable. On by default.
  bool auto_reconnect = true;
  // Called for every frame about to be delivered; may rewrite the bytes. Returning false drops it.
  std::function<bool(Sid from, Sid to, ByteBuffer& frame)> filter;

  // Delivers the oldest deliverable frame in flight; false if there is none.
  bool deliver_next();
  // Delivers the oldest frame from `from` to `to`; false if there is none.
  bool deliver(Sid from, Sid to);
  std::size_t in_flight() const { return net_.size(); }
  std::size_t in_flight(Sid from, Sid to) const;
  // Hands a frame straight to real member `to` as if `from` sent it on `session` (which need not
  // be current: this is how a late frame of a closed session is simulated).
  void inject(Sid from, Sid to, SessionId session, ByteBuffer frame);
  // Drops every frame in flight from `from` to `to` (as a lossy link would).
  std::size_t drop_in_flight(Sid from, Sid to);

  // ---- disks ----
  void hold_disk(Sid sid, bool held = true) { m(sid).disk_held = held; }
  // Completes up to `ops` pending durable operations of the member, in order.
  std::size_t complete_disk(Sid sid, std::size_t ops = SIZE_MAX);
  std::size_t pending_disk(Sid sid) const { return m(sid).disk_queue.size(); }
  // Frames the member's SendGate holds back (waiting for durability).
  std::size_t gate_held(Sid sid) const { return m(sid).core->held(); }
  // The outputs of the member's last step (which frames it sent, and where their bytes are).
  const core::Outputs& last_outputs(Sid sid) const { return m(sid).core->last_outputs(); }

  // ---- time ----
  // Completes every disk not held and delivers every deliverable frame, until nothing moves.
  // Gives up after settle_limit steps: the members keep exchanging frames forever (a storm),
  // which is recorded (stormed(), violations()) and fails the test unless fail_on_storm is off.
  void settle();
  std::size_t settle_limit = 200'000;
  bool fail_on_storm = true;
  bool stormed() const { return stormed_; }
  // One unit of work: the oldest pending durable operation of the first member (in sid order)
  // whose disk is not held, else the next deliverable frame. False when there is nothing to do.
  bool step_once();
  // step_once() until pred() holds; false if the ensemble went quiet first.
  bool settle_until(const std::function<bool()>& pred);
  // n times: reconnect (if auto_reconnect), one Tick to every live node, settle().
  void tick(int n = 1);
  // A Tick to every live node, nothing else.
  void tick_only();
  // Ticks until pred() holds (checked before each tick); false if it still fails after max_ticks.
  bool run_until(const std::function<bool()>& pred, int max_ticks = 500);
  // Ticks until one established leader is served by every live member reachable from it.
  std::optional<Sid> elect(int max_ticks = 500);
  // start_all(), then elect(): the preamble of most scenarios.
  std::optional<Sid> start_and_elect(int max_ticks = 500) {
    start_all();
    return elect(max_ticks);
  }
  // The first member (in id order) following `leader`, or 0.
  Sid follower_of(Sid leader) const;

  // ---- clients ----
  // Submits values to the member as one ClientProposals input; returns their tags.
  std::vector<std::uint64_t> propose(Sid sid, const std::vector<std::string>& values);
  // propose(), settle(), tick(2): the values commit and every follower learns the last commit.
  std::vector<std::uint64_t> commit(Sid sid, const std::vector<std::string>& values) {
    auto tags = propose(sid, values);
    settle();
    tick(2);
    return tags;
  }
  // One write with a write id (exactly-once: a retry reuses the id); returns its tag.
  std::uint64_t propose_as(Sid sid, core::WriteId id, const std::string& value);
  std::optional<Zxid> accepted(std::uint64_t tag) const;
  std::optional<core::RejectReason> rejected(std::uint64_t tag) const;
  // The write_done of proposal `tag`: its outcome and (committed) zxid.
  std::optional<std::pair<core::WriteOutcome, Zxid>> write_done(std::uint64_t tag) const {
    const auto it = done_.find(tag);
    if (it == done_.end()) return std::nullopt;
    return it->second;
  }
  // Asks `leader` to hand leadership to `target` (none: its choice); returns the request's tag.
  std::uint64_t transfer(Sid leader, std::optional<Sid> target = std::nullopt);
  // How that request ended, once the member answered.
  std::optional<core::TransferOutcome> transfer_outcome(std::uint64_t tag) const;

  // ---- observation ----
  const core::Node& node(Sid sid) const;
  PeerState state(Sid sid) const { return node(sid).state(); }
  // The established leader (LEADING in broadcast) among live members, if exactly one.
  std::optional<Sid> leader() const;
  // True when the member is up and in the broadcast phase as leader, follower or observer.
  bool serving(Sid sid) const;
  // The values delivered to the member's application, in order (live state).
  std::vector<std::string> values(Sid sid) const;
  const std::vector<Entry>& app(Sid sid) const { return m(sid).app; }
  Transcript& transcript() { return transcript_; }
  const Transcript& transcript() const { return transcript_; }
  bool log_pings = false;
  bool log_notifications = false;
  // Problems the host saw (see check()): two leaders established in one epoch, deliveries out of
  // order, a node that refused to restart, ...
  const std::vector<std::string>& violations() const { return violations_; }
  // Agreement and prefix consistency over every member's application (live and durable), and no
  // violations. Use as EXPECT_TRUE(e.consistent()).
  ::testing::AssertionResult consistent() const;

  // ---- fake members ----
  // Frames the fake received, oldest first (PINGs included unless skip_pings).
  std::vector<Heard> inbox(Sid fake, bool skip_pings = true) const;
  // Removes and returns the fake's inbox.
  std::vector<Heard> take(Sid fake, bool skip_pings = true);
  // The packets of a type the fake received (not removed).
  std::vector<Heard> received(Sid fake, PacketType type) const;
  void clear_inbox(Sid fake) { m(fake).inbox.clear(); }
  // Answer every PING the fake receives with a PING of the same zxid (a live learner).
  void fake_answers_pings(Sid fake, bool on = true) { m(fake).answer_pings = on; }
  // Queues a raw frame from the fake to `to` on their session (dropped if there is none).
  void fake_send(Sid fake, Sid to, ByteBuffer frame);
  void fake_notify(Sid fake, Sid to, PeerState state, Sid leader, Zxid zxid, std::int64_t round,
                   Epoch peer_epoch, std::int32_t version = 2);
  void fake_packet(Sid fake, Sid to, PacketType type, Zxid zxid, Bytes data = {});
  void fake_followerinfo(Sid fake, Sid to, Epoch accepted, PacketType type = PacketType::followerinfo);
  // ACKEPOCH with fastzab's 12-byte payload.
  // `answered`: the LEADERINFO epoch the ACKEPOCH names (-1: none, as ZooKeeper's learners).
  void fake_ackepoch(Sid fake, Sid to, Zxid last_logged, std::int32_t current, Zxid applied,
                     std::int32_t answered = -1);
  // ACKEPOCH with ZooKeeper's 4-byte payload (no applied zxid).
  void fake_ackepoch_zk(Sid fake, Sid to, Zxid last_logged, std::int32_t current);
  void fake_batch(Sid fake, Sid to, PacketType type, Zxid first, const std::vector<std::string>& values);
  void fake_snap(Sid fake, Sid to, Zxid zxid, const std::vector<Entry>& app);
  // Plays a follower's discovery and synchronization against real leader `to`: FOLLOWERINFO,
  // then on LEADERINFO an ACKEPOCH with the given state, then on NEWLEADER its ACK. Settles in
  // between; returns the quorum packets (no PINGs) the fake received from the leader meanwhile,
  // in order (they also stay in its inbox). Stops early when the leader does not answer.
  std::vector<Heard> fake_follow(Sid fake, Sid to, Epoch accepted, Zxid last_logged,
                                 std::int32_t current, Zxid applied,
                                 PacketType type = PacketType::followerinfo);

  // The fakes vote LOOKING for real member `real` in its current round, with its own (epoch,
  // zxid): with them it has a quorum and, after the finalize wait, leads.
  void fakes_elect(Sid real, const std::vector<Sid>& fakes);
  // Fake `leader` tells real member `real` it is LEADING in `epoch`, and every fake of
  // `followers` that it FOLLOWS it: `real` joins it as a learner and sends its hello.
  void fakes_lead(Sid leader, Sid real, const std::vector<Sid>& followers, Epoch epoch,
                  Zxid zxid = core::kZeroZxid);

  std::string name(Sid sid) const { return "n" + std::to_string(sid); }

 private:
  struct PendingOp {
    core::OutputKind kind;
    Zxid zxid;  // append: last entry; truncate: target; snapshot: its zxid
    Epoch accepted;
    Epoch current;
    std::vector<Entry> entries;  // append: the entries; snapshot: the application state
  };
  struct MemberEffects;  // a member's core::Effects (ensemble.cpp)
  struct Member {
    Sid sid = 0;
    Mode mode = Mode::down;
    core::NodeConfig config;
    std::unique_ptr<MemberEffects> effects;
    std::optional<core::Host> core;  // the node, its gate and output dispatch
    std::deque<PendingOp> disk_queue;
    bool disk_held = false;
    DurableImage durable;
    std::vector<Entry> app;  // live application state
    std::deque<Heard> inbox;
    bool answer_pings = false;
    bool started_before = false;
  };
  struct Frame {
    std::uint64_t seq;
    std::size_t from;
    std::size_t to;
    SessionId session;
    ByteBuffer bytes;
  };
  using Pair = std::pair<std::size_t, std::size_t>;

  Member& m(Sid sid);
  const Member& m(Sid sid) const;
  std::size_t index(Sid sid) const;
  Sid sid_of(std::size_t i) const { return members_[i].sid; }
  static Pair key(std::size_t a, std::size_t b) { return a < b ? Pair{a, b} : Pair{b, a}; }

  void step(std::size_t i, const core::Input& in);
  void emit(std::size_t from, ServerId peer, SessionId s, Bytes bytes);
  void log_frame(std::size_t from, std::size_t to, Bytes bytes);
  void do_connect(std::size_t a, std::size_t b);
  void do_disconnect(std::size_t a, std::size_t b);
  void reconnect_all();
  void deliver_frame(Frame f);
  bool deliverable(const Frame& f) const;
  bool complete_one(std::size_t i);
  void record_delivery(std::size_t i, const Entry& e);

  core::ClusterConfig cluster_;
  std::vector<Member> members_;
  std::map<Pair, SessionId> sessions_;
  std::vector<int> groups_;  // partition group of each member
  std::set<Pair> cuts_;
  std::set<std::pair<std::size_t, std::size_t>> held_links_;  // directed
  std::deque<Frame> net_;
  std::uint64_t next_seq_ = 0;
  std::uint64_t next_session_ = 0;
  std::uint64_t next_tag_ = 0;
  std::map<std::uint64_t, Zxid> accepted_;
  std::map<std::uint64_t, core::RejectReason> rejected_;
  std::map<std::uint64_t, std::pair<core::WriteOutcome, Zxid>> done_;
  std::map<std::uint64_t, core::TransferOutcome> transfers_;
  std::set<Sid> frozen_;
  std::map<std::int64_t, Sid> established_;  // epoch -> leader
  std::vector<std::string> violations_;
  bool stormed_ = false;
  Transcript transcript_;
};

}  // namespace fastzab::test
