// The simulated network: one session per unordered pair of nodes, FIFO and reliable while it
// lives, fenced when it ends (reference I20). Every (re)connection gets a fresh, globally
// increasing SessionId; SessionUp/SessionDown reach both ends separately, with delay; frames of a
// session that is no longer current are never delivered.
//
// Faults: a blocked direction (from -> to). Both directions blocked (a symmetric partition): the
// pair cannot connect. One direction blocked (asymmetric): connection attempts initiated from the
// blocked side are refused; one initiated from the other side comes up half-open, frames flow the
// open way, and the first frame sent the blocked way is never delivered and kills the session
// after a detection delay. Latency spikes add delay per direction; sessions may be dropped.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/types.h"
#include "events.h"
#include "rng.h"

namespace fastzab::sim {

struct NetParams {
  Time latency_min = 1;
  Time latency_max = 5;
  Time connect_min = 1;  // connection set-up delay per end
  Time connect_max = 5;
  Time backoff_min = 5;  // reconnect back-off
  Time backoff_max = 50;
  Time half_open_detect_min = 20;  // how long a half-open session lingers
  Time half_open_detect_max = 80;
};

class Network {
 public:
  Network(std::size_t nodes, Rng& rng, EventQueue& queue, NetParams params);

  // ---- node lifecycle ----
  void node_down(std::uint32_t node);  // every session of the node closes
  void node_up(std::uint32_t node);    // connects to every peer after a back-off
  bool is_up(std::uint32_t node) const noexcept { return up_[node]; }

  // ---- from a node (after its SendGate) ----
  // Schedules delivery; returns false when the frame is dropped (session not current).
  bool send(std::uint32_t from, std::uint32_t to, core::SessionId session, core::Bytes frame);
  void close(std::uint32_t a, std::uint32_t b, core::SessionId session);

  // ---- events ----
  void on_connect(std::uint32_t a, std::uint32_t b);
  void on_session_kill(std::uint32_t a, std::uint32_t b, core::SessionId session);
  // A deliver event is valid only while its session is the pair's current one.
  bool is_current(std::uint32_t a, std::uint32_t b, core::SessionId session) const noexcept;
  core::SessionId session_of(std::uint32_t a, std::uint32_t b) const noexcept;

  // ---- faults ----
  void block(std::uint32_t from, std::uint32_t to);  // closes the pair's session
  bool blocked(std::uint32_t from, std::uint32_t to) const noexcept;
  void heal_blocks();  // unblocks everything and reconnects
  void set_extra_latency(std::uint32_t from, std::uint32_t to, Time extra);
  void clear_extra_latency();
  bool drop_random_session();  // closes one live session, if any
  void set_params(const NetParams& p) noexcept { params_ = p; }

  std::uint64_t sessions_opened() const noexcept { return next_session_ - 1; }
  std::size_t live_sessions() const noexcept;

 private:
  struct Pair {
    core::SessionId session;  // 0 = none
    bool connect_pending = false;
    bool kill_pending = false;
    Time last_deliver[2] = {0, 0};  // per direction: 0 = lo->hi, 1 = hi->lo
    bool dir_dead[2] = {false, false};
  };
  std::size_t index(std::uint32_t a, std::uint32_t b) const noexcept;
  Pair& pair(std::uint32_t a, std::uint32_t b) noexcept { return pairs_[index(a, b)]; }
  const Pair& pair(std::uint32_t a, std::uint32_t b) const noexcept { return pairs_[index(a, b)]; }
  void close_pair(std::uint32_t a, std::uint32_t b);
  void schedule_connect(std::uint32_t a, std::uint32_t b);
  void establish(std::uint32_t a, std::uint32_t b);
  // A SessionUp/Down notification for `node` about `peer`, never before an earlier one.
  Time notify(std::uint32_t node, std::uint32_t peer, EventKind kind, core::SessionId s, Time at);
  Time latency(std::uint32_t from, std::uint32_t to) noexcept;

  std::size_t n_;
  Rng& rng_;
  EventQueue& q_;
  NetParams params_;
  std::vector<bool> up_;
  std::vector<Pair> pairs_;             // n*n, only [lo][hi] used
  std::vector<std::uint8_t> blocked_;   // n*n by (from, to)
  std::vector<Time> extra_;             // n*n by (from, to)
  std::vector<Time> last_note_;         // n*n by (node, peer)
  std::uint64_t next_session_ = 1;
};

}  // namespace fastzab::sim
