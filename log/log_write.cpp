// The write path: append, group commit (submit/poll/drain/flush), poisoning, new segments, and
// dropping records (truncate, reset_to_snapshot).
#include <algorithm>
#include <array>
#include <cstring>

#include "log/log.h"
#include "log/log_internal.h"

namespace fastzab::log {

using format::kRecordHeaderBytes;
using format::kSegmentHeaderBytes;
using detail::hex16;
using detail::kIndexIntervalBytes;
using detail::kTempSuffix;

Result<void> Log::poisoned_error() const {
  return fail(errc::poisoned, "refusing writes after: " + poison_->to_string());
}

void Log::Buffer::grow(std::size_t need) {
  const std::size_t cap = std::max<std::size_t>({need, 2 * cap_, 4096});
  auto p = std::make_unique_for_overwrite<std::byte[]>(cap);
  if (size_ > 0) std::memcpy(p.get(), data_.get(), size_);
  data_ = std::move(p);
  cap_ = cap;
}

Error Log::poison(Error e) {
  if (!poison_) poison_ = e;
  return e;
}

Result<void> Log::append(std::uint64_t zxid, std::span<const std::byte> payload) {
  if (auto r = check_poison(); !r) return r;
  if (zxid <= last_zxid_) {
    return fail(errc::invalid_argument,
                "zxid " + hex16(zxid) + " is not above the last appended " + hex16(last_zxid_));
  }
  if (payload.size() > opt_.max_record_bytes) {
    return fail(errc::invalid_argument, "record of " + std::to_string(payload.size()) +
                                            " bytes passes max_record_bytes " +
                                            std::to_string(opt_.max_record_bytes));
  }
  const std::uint64_t rec = kRecordHeaderBytes + payload.size();
  if (segments_.empty() || roll_on_next_append_ ||
      segments_.back().end + rec > opt_.segment_bytes) {
    Segment s;
    s.first_zxid = zxid;
    s.path = seg_path(zxid);
    s.end = kSegmentHeaderBytes;
    // Sized like the segment before it (records of similar sizes fill it alike), so its
    // sparse index does not grow by doubling, allocating again and again, as it fills.
    if (!segments_.empty()) s.index.reserve(segments_.back().index.size() + 1);
    segments_.push_back(std::move(s));
    roll_on_next_append_ = false;
  }
  Segment& seg = segments_.back();
  if (queued_.empty() || queued_.back().segment != &seg ||
      queued_.back().bytes.size() + rec > opt_.max_batch_bytes ||
      queued_.back().records >= opt_.max_batch_records) {
    Batch b;
    b.id = next_batch_id_++;
    b.segment = &seg;
    b.offset = seg.end;
    if (!spare_buffers_.empty()) {
      b.bytes = std::move(spare_buffers_.back());
      spare_buffers_.pop_back();
      b.bytes.clear();
    }
    queued_.push_back(std::move(b));
  }
  Batch& b = queued_.back();
  std::byte* out = b.bytes.extend(rec);
  // What of this segment is known synced now (FORMAT.md, "Record"): recovery tells a torn write
  // from corruption by it. Nothing is in sync=none.
  const std::uint32_t synced_back =
      opt_.sync == SyncMode::fdatasync ? format::synced_back(seg.end, seg.durable_end)
                                       : format::kSyncedUnknown;
  format::encode_record_header(zxid, payload, synced_back, out);
  if (!payload.empty()) std::memcpy(out + kRecordHeaderBytes, payload.data(), payload.size());
  b.last_zxid = zxid;
  ++b.records;
  note_record(seg, zxid, seg.end);
  seg.end += rec;
  last_zxid_ = zxid;
  return {};
}

Result<void> Log::create_segment(Segment& s) {
  const std::string tmp = s.path + std::string(kTempSuffix);
  auto made = [&]() -> Result<void> {
    auto f = fs_.open(tmp, OpenMode::create_truncate);
    if (!f) return std::unexpected(f.error());
    format::SegmentHeader h;
    h.cluster_id = opt_.cluster_id;
    h.first_zxid = s.first_zxid;
    h.segment_bytes = opt_.segment_bytes;
    h.tail_window_bytes = tail_window_bytes();
    std::array<std::byte, kSegmentHeaderBytes> head{};
    format::encode(h, head);
    if (auto r = (*f)->allocate(0, opt_.segment_bytes); !r) return r;
    if (auto r = (*f)->write_at(0, head); !r) return r;
    if (auto r = (*f)->sync_data(); !r) return r;
    if (auto r = fs_.rename(tmp, s.path); !r) return r;
    if (auto r = fs_.sync_dir(dir_); !r) return r;
    auto g = fs_.open(s.path, OpenMode::read_write);
    if (!g) return std::unexpected(g.error());
    s.file = std::move(*g);
    return {};
  }();
  if (!made) {
    (void)fs_.remove(tmp);  // best effort; open() removes leftovers anyway
    return std::unexpected(poison(made.error()));
  }
  return {};
}

Result<void> Log::submit() {
  if (auto r = check_poison(); !r) return r;
  while (!queued_.empty()) {
    Batch& b = queued_.front();
    if (!b.segment->file) {
      // A new segment starts only once everything before it is durable, so that only the last
      // segment can ever hold a torn tail (FORMAT.md).
      // In sync=none nothing waits for the disk: the previous segment is not synced, and
      // recovery treats the trailing run of sync=none segments as possibly torn (FORMAT.md).
      if (auto r = drain(); !r) return r;
      if (auto r = create_segment(*b.segment); !r) return r;
    }
    while (writer_->in_flight() >= writer_->capacity()) {
      if (auto r = poll(true); !r) return std::unexpected(r.error());
      if (auto r = check_poison(); !r) return r;
    }
    inflight_.push_back(std::move(queued_.front()));
    queued_.erase(queued_.begin());
    Batch& f = inflight_.back();
    WriteRequest req{f.segment->file.get(), f.offset, f.bytes, opt_.sync == SyncMode::fdatasync,
                     f.id};
    if (auto r = writer_->submit(req); !r) {
      inflight_.pop_back();
      return std::unexpected(poison(r.error()));
    }
  }
  return {};
}

Result<std::uint64_t> Log::poll(bool wait) {
  completions_.clear();
  if (auto r = writer_->reap(wait && !inflight_.empty(), completions_); !r) {
    return std::unexpected(poison(r.error()));
  }
  for (WriteCompletion& c : completions_) {
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [&](const Batch& b) { return b.id == c.id; });
    if (it == inflight_.end()) continue;  // cannot happen: ids are unique
    if (!c.result) {
      poison(c.result.error());
    } else {
      it->done = true;
    }
  }
  // Durability advances only over a prefix of batches that all succeeded.
  while (!poison_ && !inflight_.empty() && inflight_.front().done) {
    durable_zxid_ = inflight_.front().last_zxid;
    inflight_.front().segment->durable_end = inflight_.front().offset + inflight_.front().bytes.size();
    ++batch_stats_.batches;
    batch_stats_.bytes += inflight_.front().bytes.size();
    batch_stats_.records += inflight_.front().records;
    spare_buffers_.push_back(std::move(inflight_.front().bytes));
    inflight_.erase(inflight_.begin());
  }
  if (poison_) {
    // Drop finished batches (their buffers are free); the others are still in the kernel.
    if (writer_->in_flight() == 0) inflight_.clear();
  }
  return durable_zxid_;
}

// Waits for every batch in flight. After a failure it still waits for the writer, so that no
// buffer is freed while the kernel may read it.
Result<void> Log::drain() {
  while (writer_->in_flight() > 0 || (!poison_ && !inflight_.empty())) {
    if (auto r = poll(true); !r) return std::unexpected(r.error());
  }
  if (poison_) {
    inflight_.clear();
    return check_poison();
  }
  return {};
}

Result<std::uint64_t> Log::flush() {
  const bool was_poisoned = poisoned();
  auto submitted = submit();
  auto drained = drain();
  // The call that meets the failure reports it as it is; later calls say "poisoned".
  if (!was_poisoned && poison_) return std::unexpected(*poison_);
  if (!submitted) return std::unexpected(submitted.error());
  if (!drained) return std::unexpected(drained.error());
  return durable_zxid_;
}

Result<void> Log::truncate(std::uint64_t zxid) {
  if (auto r = flush(); !r) return std::unexpected(r.error());
  // Segments wholly above zxid go first, newest first, each removal durable before the next, so
  // a crash in between leaves a prefix of the log.
  while (!segments_.empty() && segments_.back().first_zxid > zxid) {
    Segment& s = segments_.back();
    const std::string path = s.path;
    s.file.reset();
    segments_.pop_back();
    if (auto r = remove_file(path); !r) return std::unexpected(poison(r.error()));
  }
  if (!segments_.empty()) {
    Segment& s = segments_.back();
    if (s.last_zxid > zxid) {
      // The first record above zxid, and the count and last zxid of those kept.
      const Loc& from = index_at_or_before(s, zxid);
      std::uint64_t cut = 0, kept = from.ordinal, kept_last = 0;
      auto r = scan(s, from, false, [&](const Scanned& rec) {
        if (rec.zxid > zxid) {
          cut = rec.offset;
          return false;
        }
        ++kept;
        kept_last = rec.zxid;
        return true;
      });
      if (!r) return std::unexpected(poison(r.error()));
      FASTZAB_LOG_ASSERT(cut >= kSegmentHeaderBytes);  // s.first_zxid <= zxid < s.last_zxid
      if (auto z = zero_tail(s, cut); !z) return std::unexpected(poison(z.error()));
      while (!s.index.empty() && s.index.back().offset >= cut) s.index.pop_back();
      s.records = kept;
      s.last_zxid = kept_last;
      s.next_index_at = s.index.empty() ? 0 : s.index.back().offset + kIndexIntervalBytes;
    }
  }
  last_zxid_ = segments_.empty() ? 0 : segments_.back().last_zxid;
  durable_zxid_ = std::min(durable_zxid_, last_zxid_);
  return {};
}

Result<void> Log::reset_to_snapshot(std::uint64_t zxid) {
  if (std::find(snapshots_.begin(), snapshots_.end(), zxid) == snapshots_.end()) {
    return fail(errc::invalid_argument,
                "no snapshot at zxid " + hex16(zxid) + " to reset the log to (save_snapshot first)");
  }
  // Issue order, as truncate(): what was appended before is written first.
  if (auto r = flush(); !r) return std::unexpected(r.error());
  // Newest first, each removal durable before the next: a crash in between leaves the snapshot
  // and a prefix of the old log.
  while (!segments_.empty()) {
    Segment& s = segments_.back();
    const std::string path = s.path;
    const bool on_disk = s.file != nullptr;
    s.file.reset();
    segments_.pop_back();
    if (on_disk) {
      if (auto r = remove_file(path); !r) return std::unexpected(poison(r.error()));
    }
  }
  roll_on_next_append_ = false;
  last_zxid_ = zxid;
  durable_zxid_ = zxid;
  return {};
}

}  // namespace fastzab::log
