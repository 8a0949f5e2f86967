// The durable log: segmented, CRC-checked, group-committed. It stores opaque records keyed by a
// strictly increasing 64-bit zxid, plus the epoch file and snapshots of one directory. See
// FORMAT.md for the bytes and the recovery rules, README.md for how the engine uses it.
//
// Group commit: append() only queues. submit() starts writing everything queued, one write (and
// one fdatasync) per batch; poll() reaps completions and returns "durable up to zxid Z"; flush()
// is submit() plus waiting for all of it. After any failed write or sync the log is poisoned:
// every later append/submit/flush/truncate fails with errc::poisoned, and durable_zxid() never
// moves again, so nothing unsynced is ever reported durable.
//
// Not thread-safe: one thread (the runtime's log core) owns a Log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "log/errc.h"
#include "log/file.h"
#include "log/format.h"
#include "log/modes.h"
#include "log/writer.h"

namespace fastzab::log {


enum class WriterKind : std::uint8_t { sync, io_uring };

struct Options {
  std::uint64_t cluster_id = 0;
  std::uint64_t segment_bytes = 64ull << 20;   // preallocated size of each segment file
  std::uint32_t max_record_bytes = 4u << 20;   // largest payload append() accepts
  std::size_t max_batch_bytes = 1u << 20;      // a batch is cut when the next record would pass it
  std::size_t max_batch_records = 4096;
  std::size_t max_inflight_batches = 4;        // io_uring writer only
  SyncMode sync = SyncMode::fdatasync;
  RecoveryMode recovery = RecoveryMode::cut_torn_tail;
  // How the embedder lets an operator set `recovery` (a configuration key such as "logRecovery"),
  // for the corruption error: it then says "<recovery_setting>=truncate_at_corruption". Empty:
  // it names log::Options::recovery = RecoveryMode::truncate_at_corruption.
  std::string recovery_setting;
  WriterKind writer = WriterKind::sync;
  std::size_t keep_snapshots = 2;              // purge() keeps this many newest snapshots
  FileSystem* fs = nullptr;                    // nullptr: posix_fs()
};

struct Record {
  std::uint64_t zxid = 0;
  std::vector<std::byte> payload;
};

struct Epochs {
  std::uint64_t accepted = 0;
  std::uint64_t current = 0;
  friend bool operator==(const Epochs&, const Epochs&) = default;
};

struct Snapshot {
  std::uint64_t zxid = 0;
  std::vector<std::byte> data;
};

// What open() found and did. A cut is never silent: when torn_tail_cut or corruption_cut is
// set, records_cut, cut_first_zxid, cut_last_zxid and bytes_cut say what went, and
// describe_cut() puts it in one line for the operator.
struct RecoveryReport {
  std::size_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t first_zxid = 0;  // 0: the log is empty
  std::uint64_t last_zxid = 0;
  bool torn_tail_cut = false;       // a torn tail was cut (normal after a crash)
  bool corruption_cut = false;      // truncate_at_corruption dropped data after a bad record
  std::string cut_file;             // where the cut happened
  std::uint64_t cut_offset = 0;
  std::string cut_reason;           // what was wrong there
  // What the cut dropped: the records that could still be read in it (the bad record itself
  // when only its payload was damaged, every whole record after it, and those of the segments
  // dropped behind it), their lowest and highest zxid (0 when none could be read: a torn tail
  // of partial records), and the non-zero bytes. Every record kept is below cut_first_zxid.
  std::uint64_t records_cut = 0;
  std::uint64_t cut_first_zxid = 0;
  std::uint64_t cut_last_zxid = 0;
  std::uint64_t bytes_cut = 0;
  std::size_t segments_dropped = 0; // later segments removed behind a cut
  std::size_t version1_segments = 0;  // segments of format version 1 read (FORMAT.md)
  std::size_t empty_segments_removed = 0;
  std::size_t temp_files_removed = 0;
  bool epochs_migrated = false;     // the previous 48-byte epoch file was replaced by the slotted one
  bool epoch_slot_ignored = false;  // a written but invalid epoch slot (a torn write) was ignored
  // The directory holds the state-lost mark: this recovery or an earlier one cut records that
  // may have been acknowledged (any cut: a synced record whose header or payload went bad is
  // cut like a torn write when nothing later vouches for it). The mark is written durably
  // before the cut, so a crash in between cannot lose it, and stays until clear_state_lost().
  // The engine's node neither votes nor counts in an epoch quorum while it is set (I12).
  bool state_lost = false;
};

// One line naming what open() cut (empty when nothing was): kind, records and zxid range,
// bytes, file and offset, reason. For the engine's log.
std::string describe_cut(const RecoveryReport& r);

struct PurgeReport {
  std::size_t segments_removed = 0;
  std::size_t snapshots_removed = 0;
};

class Log {
 public:
  // Opens (creating if needed) the log in `dir` and recovers it. Errors: the directory cannot be
  // created or written (io_error naming it), a file of the wrong kind, version or cluster
  // (naming the file), corruption before the tail (file and offset).
  static Result<std::unique_ptr<Log>> open(const std::string& dir, const Options& options);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Queues a record. zxid must be above last_zxid(); payload at most max_record_bytes.
  Result<void> append(std::uint64_t zxid, std::span<const std::byte> payload);
  // Starts writing everything queued (waits for room when max_inflight_batches are in flight).
  Result<void> submit();
  // Reaps finished batches; with `wait`, waits for at least one if any is in flight. Returns
  // durable_zxid().
  Result<std::uint64_t> poll(bool wait);
  // submit() and wait for everything: returns the zxid durable up to (all appended records).
  Result<std::uint64_t> flush();

  std::uint64_t last_zxid() const noexcept { return last_zxid_; }      // last appended
  std::uint64_t durable_zxid() const noexcept { return durable_zxid_; }
  std::uint64_t first_zxid() const noexcept;                           // 0 when empty
  bool poisoned() const noexcept { return poison_.has_value(); }
  std::size_t queued_batches() const noexcept { return queued_.size(); }
  std::size_t inflight_batches() const noexcept { return inflight_.size(); }
  std::size_t segment_count() const noexcept { return segments_.size(); }
  std::uint64_t record_count() const noexcept;                         // queued included
  // Signal `eventfd` whenever a write or sync completes in the background (io_uring writer), so
  // a thread waiting on other events wakes to poll() the log. Nothing to do for the sync writer.
  Result<void> notify_completions(int eventfd) { return writer_->notify_completions(eventfd); }
  const char* writer_name() const noexcept;

  // Records with from <= zxid <= to that are durable, in order, at most max_bytes of payload
  // (but at least one record when one is in range). Every record's checksums are verified.
  Result<std::vector<Record>> read(std::uint64_t from, std::uint64_t to,
                                   std::size_t max_bytes = SIZE_MAX);
  // Where a durable record lives: segment file and offset of its header (found through the
  // sparse index and a scan of record headers); nullopt when no durable record has that zxid.
  struct Position {
    std::string file;
    std::uint64_t offset = 0;
    std::uint32_t length = 0;
  };
  Result<std::optional<Position>> locate(std::uint64_t zxid);

  // Drops every record > zxid, durably (flushes first). last_zxid() becomes the last record
  // kept (0 when none is).
  Result<void> truncate(std::uint64_t zxid);

  // acceptedEpoch / currentEpoch: one in-place write of the epoch file's older slot and one
  // fdatasync (FORMAT.md, "Epoch file"). Once it returned, a crash reads back these epochs; a
  // crash or failure before that reads back the previous ones or these, never a mix. Records
  // appended before the call are flushed first (durable effects complete in issue order), and a
  // failure there is the flush's (poisoning). A failed epoch write does not poison the log and
  // leaves epochs() at the previous value (a restart may read back either).
  Result<void> write_epochs(Epochs epochs);
  Epochs epochs() const noexcept { return epochs_; }

  // Writes a snapshot of the application's state at `zxid` atomically, with a CRC.
  Result<void> save_snapshot(std::uint64_t zxid, std::span<const std::byte> data);
  // After a snapshot received from the leader is durable (save_snapshot(zxid) returned): drops
  // every record, in every segment. Those <= zxid are superseded by the snapshot, those above
  // it go as truncate() would drop them. Flushes first (issue order), then removes the segments
  // newest first, each removal durable (directory fsync) before the next, so a crash in between
  // leaves the snapshot and a prefix of the old log (the engine syncs again from there).
  // Afterwards the log is empty, last_zxid() and durable_zxid() are `zxid`, and the next append
  // must be above it. errc::invalid_argument when there is no snapshot at `zxid`.
  Result<void> reset_to_snapshot(std::uint64_t zxid);
  // The newest snapshot, verified; nullopt when there is none.
  Result<std::optional<Snapshot>> latest_snapshot();
  std::vector<std::uint64_t> snapshot_zxids() const { return snapshots_; }
  // Removes all but the newest keep_snapshots snapshots and every durable segment whose records
  // are all <= the newest snapshot's zxid (never the segment being written).
  Result<PurgeReport> purge();

  // Batches that completed since open(): each is one write, plus one fdatasync with
  // sync=fdatasync. Their mean size is the group commit's batching, which benchmarks compare to
  // a raw fdatasync of that size.
  struct BatchStats {
    std::uint64_t batches = 0;
    std::uint64_t bytes = 0;    // record bytes (headers included)
    std::uint64_t records = 0;
  };
  const BatchStats& batch_stats() const noexcept { return batch_stats_; }

  const RecoveryReport& recovery() const noexcept { return report_; }
  // Removes the state-lost mark (RecoveryReport::state_lost), durably: the records a cut may
  // have taken are held again (the engine: synchronized with an established leader).
  Result<void> clear_state_lost();
  const std::string& dir() const noexcept { return dir_; }
  // The tail window this log writes into its segment headers (FORMAT.md).
  std::uint64_t tail_window_bytes() const noexcept;

 private:
  // A sparse index entry: the first record at or after every kIndexIntervalBytes of a segment.
  // A dense one (an entry per record) cost more than the appends it indexed (page faults and
  // copies: ~45% of a sync=none append of 64 B) and 18 MB per 64 MiB segment of small records.
  struct Loc {
    std::uint64_t zxid;
    std::uint64_t offset;
    std::uint64_t ordinal;  // records before it in the segment
  };
  struct Segment {
    std::uint64_t first_zxid = 0;
    std::uint32_t version = format::kVersion;  // of its header: how its records are framed
    std::string path;
    std::unique_ptr<File> file;    // null until created on disk
    std::uint64_t end = 0;         // bytes used, queued records included
    std::uint64_t durable_end = 0; // bytes of whole durable records (what reads may scan)
    std::uint64_t records = 0;     // queued records included
    std::uint64_t last_zxid = 0;   // of the last record, queued included; 0 when empty
    std::uint64_t next_index_at = 0;
    std::vector<Loc> index;        // sparse, ascending; index[0] is the first record
  };
  // A record met by scan().
  struct Scanned {
    std::uint64_t zxid;
    std::uint64_t offset;
    std::uint32_t length;
    const std::byte* payload;  // verified; only when scan() was asked for payloads
  };
  // A batch's bytes: grows without zero-filling (every byte is written by append() before it is
  // read), and is recycled through spare_buffers_ so the steady state allocates nothing.
  class Buffer {
   public:
    std::size_t size() const noexcept { return size_; }
    const std::byte* data() const noexcept { return data_.get(); }
    void clear() noexcept { size_ = 0; }
    // Extends by n bytes and returns where they start (contents unspecified).
    std::byte* extend(std::size_t n) {
      if (size_ + n > cap_) grow(size_ + n);
      std::byte* p = data_.get() + size_;
      size_ += n;
      return p;
    }
    operator std::span<const std::byte>() const noexcept { return {data_.get(), size_}; }

   private:
    void grow(std::size_t need);
    std::unique_ptr<std::byte[]> data_;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
  };
  struct Batch {
    std::uint64_t id = 0;
    Segment* segment = nullptr;
    std::uint64_t offset = 0;
    Buffer bytes;
    std::uint64_t last_zxid = 0;
    std::size_t records = 0;
    bool done = false;
  };

  Log(std::string dir, const Options& options, FileSystem& fs, std::unique_ptr<Writer> writer);
  Result<void> recover();
  std::optional<std::uint64_t> peek_tail_window(const std::string& path);
  Result<void> recover_segment(std::size_t i, bool last, bool may_be_torn,
                               std::uint64_t& prev_zxid);
  Result<void> zero_tail(Segment& s, std::uint64_t offset);
  Result<void> account_dropped_segment(const std::string& path, std::uint64_t& prev_zxid);
  void note_cut_record(std::uint64_t zxid);
  std::string corruption_advice() const;
  static void note_record(Segment& s, std::uint64_t zxid, std::uint64_t offset);
  static const Loc& index_at_or_before(const Segment& s, std::uint64_t zxid);
  Segment* segment_for(std::uint64_t zxid);
  template <typename Visit>
  Result<void> scan(Segment& s, const Loc& from, bool payloads, Visit&& visit);
  Result<void> create_segment(Segment& s);
  Result<void> remove_file(const std::string& path);
  Result<void> drain();
  Result<void> check_poison() const {
    if (poison_) [[unlikely]] return poisoned_error();
    return {};
  }
  Result<void> poisoned_error() const;
  Error poison(Error e);
  Result<void> write_atomically(const std::string& name, std::span<const std::byte> head,
                                std::span<const std::byte> body);
  Result<bool> read_epoch_file(const std::string& path);
  Result<void> create_epoch_file();
  std::string seg_path(std::uint64_t zxid) const;
  std::string snap_path(std::uint64_t zxid) const;

  // First member, so destroyed last: the directory stays locked until every file is closed.
  std::unique_ptr<FileSystem::Lock> lock_;
  std::string dir_;
  Options opt_;
  FileSystem& fs_;
  std::unique_ptr<Writer> writer_;
  std::deque<Segment> segments_;
  // Vectors, not deques: a deque allocates and frees a node as its few batches move along; these
  // hold a handful (inflight_ at most max_inflight_batches), so erasing the front is cheap.
  std::vector<Batch> queued_;
  std::vector<Batch> inflight_;
  std::vector<Buffer> spare_buffers_;
  std::vector<WriteCompletion> completions_;
  std::vector<std::byte> scan_buf_;
  std::uint64_t next_batch_id_ = 1;
  std::uint64_t last_zxid_ = 0;
  std::uint64_t durable_zxid_ = 0;
  BatchStats batch_stats_;
  bool roll_on_next_append_ = false;
  std::optional<Error> poison_;
  Epochs epochs_;
  std::unique_ptr<File> epoch_file_;  // kept open: write_epochs() is on the failover path
  std::uint64_t epoch_sequence_ = 0;  // of the slot holding epochs_
  std::size_t epoch_slot_ = 0;        // the slot holding epochs_; the other is written next
  std::vector<std::uint64_t> snapshots_;  // ascending
  RecoveryReport report_;
};

const char* to_string(WriterKind w) noexcept;

}  // namespace fastzab::log
