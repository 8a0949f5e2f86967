// Simulated time and the discrete event queue. Events are ordered by (time, sequence number):
// the sequence number is assigned at scheduling, so two events at the same time run in the
// order they were scheduled and a run never depends on heap internals.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/core/codec.h"

namespace fastzab::sim {

// Simulated time units. The tick period of every node is kTickPeriod units.
using Time = std::int64_t;
inline constexpr Time kTickPeriod = 10;

enum class EventKind : std::uint8_t {
  tick,          // a: node
  deliver,       // a: from, b: to, x: session, data: frame
  session_up,    // a: node, b: peer, x: session
  session_down,  // a: node, b: peer, x: session
  connect,       // a < b: pair to (re)connect
  session_kill,  // a < b: pair, x: session (half-open connection detected dead)
  disk_done,     // a: node, x: incarnation, y: op id
  workload,      // client submissions
  chaos,         // next fault action (safety phase)
  heal,          // x: partition generation to heal
  restart,       // a: node, x: incarnation that crashed
  spike_end,     // a: from, b: to, x: spike generation
  slow_end,      // a: node, x: slow-disk generation
  thaw,          // a: node, x: freeze generation
};
const char* to_string(EventKind k) noexcept;

struct Event {
  Time time = 0;
  std::uint64_t seq = 0;
  EventKind kind = EventKind::tick;
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  std::uint64_t x = 0;
  std::uint64_t y = 0;
  core::ByteBuffer data;
};

class EventQueue {
 public:
  Time now() const noexcept { return now_; }
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }

  void schedule(Time at, Event e) {
    e.time = at < now_ ? now_ : at;
    e.seq = next_seq_++;
    heap_.push_back(std::move(e));
    std::push_heap(heap_.begin(), heap_.end(), Later{});
  }
  Event pop() {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    Event e = std::move(heap_.back());
    heap_.pop_back();
    now_ = e.time;
    return e;
  }

 private:
  struct Later {
    bool operator()(const Event& l, const Event& r) const noexcept {
      return l.time != r.time ? l.time > r.time : l.seq > r.seq;
    }
  };
  std::vector<Event> heap_;
  std::uint64_t next_seq_ = 0;
  Time now_ = 0;
};

inline const char* to_string(EventKind k) noexcept {
  switch (k) {
    case EventKind::tick: return "tick";
    case EventKind::deliver: return "deliver";
    case EventKind::session_up: return "session_up";
    case EventKind::session_down: return "session_down";
    case EventKind::connect: return "connect";
    case EventKind::session_kill: return "session_kill";
    case EventKind::disk_done: return "disk_done";
    case EventKind::workload: return "workload";
    case EventKind::chaos: return "chaos";
    case EventKind::heal: return "heal";
    case EventKind::restart: return "restart";
    case EventKind::spike_end: return "spike_end";
    case EventKind::slow_end: return "slow_end";
    case EventKind::thaw: return "thaw";
  }
  return "?";
}

}  // namespace fastzab::sim
