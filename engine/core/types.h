// Strong types for the identifiers and counters of the protocol (reference §1-§3).
#pragma once

#include <compare>
#include <cstdint>
#include <limits>

namespace fastzab::core {

// A server id as configured (`server.N`). Signed 64-bit, as on ZooKeeper's wire.
struct ServerId {
  std::int64_t value = 0;
  friend constexpr auto operator<=>(ServerId, ServerId) = default;
};
inline constexpr ServerId kNoServer{std::numeric_limits<std::int64_t>::min()};

// An epoch: 32 bits are usable (it is the high half of a zxid); kept in 64 bits like ZooKeeper.
struct Epoch {
  std::int64_t value = 0;
  friend constexpr auto operator<=>(Epoch, Epoch) = default;
};
inline constexpr Epoch kNoEpoch{std::numeric_limits<std::int64_t>::min()};
// ZooKeeper treats epochs near 2^31 as fatal because ACKEPOCH carries an int32 (reference §3).
inline constexpr std::int64_t kMaxEpoch = 0x7ffffffe;

// A transaction id: epoch in the high 32 bits, counter in the low 32 bits. Numeric order is
// (epoch, counter) order. Counter 0 carries no transaction; it names an epoch's start.
struct Zxid {
  std::int64_t value = 0;

  static constexpr Zxid make(Epoch e, std::uint32_t counter) {
    return Zxid{static_cast<std::int64_t>((static_cast<std::uint64_t>(e.value) << 32) | counter)};
  }
  constexpr Epoch epoch() const { return Epoch{value >> 32}; }
  constexpr std::uint32_t counter() const { return static_cast<std::uint32_t>(value & 0xffffffff); }
  constexpr Zxid next() const { return Zxid{value + 1}; }
  friend constexpr auto operator<=>(Zxid, Zxid) = default;
};
inline constexpr Zxid kZeroZxid{0};
// "Unknown or lost state" (reference §3, ZOOKEEPER-261).
inline constexpr Zxid kLostZxid{-1};
inline constexpr Zxid kNoZxid{std::numeric_limits<std::int64_t>::min()};
// Counter 0xffffffff is never proposed (ZOOKEEPER-1277); the last usable counter:
inline constexpr std::uint32_t kMaxZxidCounter = 0xfffffffe;

// Server state; the value is the wire value of an election notification (reference §1.1).
enum class PeerState : std::int32_t { looking = 0, following = 1, leading = 2, observing = 3 };
const char* to_string(PeerState s) noexcept;

// A connection between two servers. A fresh id for every connection, so that nothing from a
// closed session is ever mistaken for the current one (reference I20).
struct SessionId {
  std::uint64_t value = 0;
  friend constexpr auto operator<=>(SessionId, SessionId) = default;
};

// An election vote (reference §2.1). `round` is the sender's logical clock.
struct Vote {
  ServerId leader = kNoServer;
  Zxid zxid = kNoZxid;
  std::int64_t round = 0;
  Epoch peer_epoch = kNoEpoch;
  friend constexpr bool operator==(const Vote&, const Vote&) = default;
};

}  // namespace fastzab::core
