// The in-memory part of a node's log: every entry the application has not yet applied, plus a
// bounded window of applied (committed) entries that serves DIFF syncs (reference §4.4,
// ZooKeeper's committedLog). Everything before `base()` lives only in the application's state.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "codec.h"
#include "constants.h"
#include "ring.h"
#include "types.h"

namespace fastzab::core {

class History;

// Entries [first, first + count) of a History, as whole entries (header and value, what the log
// stores) or as their values (what the application applies). Views: valid until the node's
// next step (the node evicts and reuses history buffers only at the start of a step).
class EntryRange {
 public:
  enum class Part : std::uint8_t { entry, value };
  EntryRange(const History& history, std::size_t first, std::size_t count, Part part) noexcept
      : history_(&history), first_(first), count_(count), part_(part) {}
  std::size_t size() const noexcept { return count_; }
  class Iterator {
   public:
    Bytes operator*() const noexcept;
    Iterator& operator++() noexcept {
      ++i_;
      return *this;
    }
    bool operator==(const Iterator& o) const noexcept { return i_ == o.i_; }

   private:
    friend class EntryRange;
    Iterator(const EntryRange& r, std::size_t i) noexcept : r_(&r), i_(i) {}
    const EntryRange* r_;
    std::size_t i_;
  };
  Iterator begin() const noexcept { return Iterator(*this, first_); }
  Iterator end() const noexcept { return Iterator(*this, first_ + count_); }

 private:
  const History* history_;
  std::size_t first_;
  std::size_t count_;
  Part part_;
};

class History {
 public:
  struct Entry {
    Zxid zxid;
    ByteBuffer bytes;
  };

  void reset(Zxid base);
  // Entries must come in zxid order, all above the current last().
  void append(Zxid zxid, Bytes bytes);
  // Appends the entry of a client's write: the header of `id`, then `value`.
  void append(Zxid zxid, WriteId id, Bytes value);
  // Drops every entry > zxid. Requires contains(zxid).
  void truncate_after(Zxid zxid);
  // Drops entries <= keep_above from the front while more than `window` such entries remain.
  void evict(Zxid keep_above, std::size_t window);

  Zxid base() const noexcept { return base_; }
  Zxid last() const noexcept { return entries_.empty() ? base_ : entries_.back().zxid; }
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t size() const noexcept { return entries_.size(); }
  const Entry& at(std::size_t i) const noexcept { return entries_[i]; }

  // True when zxid is base() or the zxid of an entry.
  bool contains(Zxid zxid) const noexcept;
  // Index of the first entry with zxid > z (size() when none).
  std::size_t upper_bound(Zxid z) const noexcept;
  // The largest point of this history (base or entry) below z, if any.
  std::optional<Zxid> largest_below(Zxid z) const noexcept;

 private:
  Zxid base_ = kZeroZxid;
  Ring<Entry> entries_;
  void recycle(ByteBuffer& buffer);
  ByteBuffer take_buffer();
  // Byte buffers reused so the steady state does not allocate, up to kMaxSpare of them and
  // kMaxSpareBytes of capacity: one step evicts about as many entries as a batch appends, so
  // the spares must cover a batch of large values too (64 spares did not: a follower taking
  // batches of 100 16 KiB entries allocated for each one past 64). The rest are freed, so a
  // history that once held many entries (a restart replaying a long log, a long sync) gives
  // the memory back once they are evicted.
  std::vector<ByteBuffer> spare_;
  std::size_t spare_bytes_ = 0;

 public:
  static constexpr std::size_t kMaxSpare = kMaxBatchEntries;
  static constexpr std::size_t kMaxSpareBytes = std::size_t{16} << 20;
};

}  // namespace fastzab::core
