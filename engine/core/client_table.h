// Exactly-once writes: for each client that tags its writes with an id, the last sequence
// committed (or proposed, in the leader's in-flight table) and its zxid. Bounded: when a new
// client finds the table full, the quarter of clients whose last write is oldest are forgotten
// (their retries are no longer recognized). The table is a function of the entries recorded in
// order, so every server that applied the same prefix holds the same table; it travels in
// snapshots. Fixed memory after construction: recording and lookups never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "codec.h"
#include "types.h"

namespace fastzab::core {

class ClientTable {
 public:
  struct Last {
    std::uint64_t seq = 0;
    Zxid zxid;
  };

  explicit ClientTable(std::size_t max_clients);

  std::optional<Last> find(std::uint64_t client) const noexcept;
  // Records that `id` was written at `zxid` unless a later sequence is already recorded for it.
  // zxids must be recorded in increasing order (eviction forgets the oldest).
  void record(WriteId id, Zxid zxid);
  void clear() noexcept;
  std::size_t size() const noexcept { return size_; }
  std::size_t max_clients() const noexcept { return max_clients_; }
  // The encoding of codec.h (encode_client_records), sorted by client.
  void encode(ByteBuffer& out) const;
  // Replaces the table by an encoded one (untrusted: a SNAP, a snapshot file). A table with
  // more clients than this one holds keeps the newest. Returns the clients decoded.
  Expected<std::size_t, DecodeError> decode(Bytes table);

 private:
  struct Slot {
    std::uint64_t client = 0;  // 0: empty
    std::uint64_t seq = 0;
    Zxid zxid;
  };
  std::size_t home(std::uint64_t client) const noexcept;
  Slot* slot_for(std::uint64_t client) noexcept;  // the client's slot, or the empty one to use
  void forget_oldest();
  void grow();
  static constexpr std::size_t kFirstSlots = 16;

  std::size_t max_clients_;
  std::size_t size_ = 0;
  std::vector<Slot> slots_;  // open addressing, linear probing; at most half full (a power of 2)
  std::vector<Slot> scratch_;
  std::vector<Zxid> ages_;
};

}  // namespace fastzab::core
