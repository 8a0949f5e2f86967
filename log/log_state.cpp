// The directory's other durable state: the epoch file, snapshots, the state-lost mark, purge(),
// and the atomic write (temp file, rename) they share.
#include <algorithm>
#include <array>
#include <vector>

#include "log/log.h"
#include "log/log_internal.h"

namespace fastzab::log {

using detail::cluster_error;
using detail::header_error;
using detail::hex16;
using detail::kEpochFile;
using detail::kSnapshotPrefix;
using detail::kStateLostFile;
using detail::kTempSuffix;

Result<void> Log::write_atomically(const std::string& name, std::span<const std::byte> head,
                                   std::span<const std::byte> body) {
  const std::string path = dir_ + "/" + name;
  const std::string tmp = path + std::string(kTempSuffix);
  auto r = [&]() -> Result<void> {
    auto f = fs_.open(tmp, OpenMode::create_truncate);
    if (!f) return std::unexpected(f.error());
    if (auto w = (*f)->write_at(0, head); !w) return w;
    if (!body.empty()) {
      if (auto w = (*f)->write_at(head.size(), body); !w) return w;
    }
    if (auto w = (*f)->sync_data(); !w) return w;
    if (auto w = fs_.rename(tmp, path); !w) return w;
    return fs_.sync_dir(dir_);
  }();
  if (!r) (void)fs_.remove(tmp);
  return r;
}

Result<void> Log::clear_state_lost() {
  if (!report_.state_lost) return {};
  if (auto r = fs_.remove(dir_ + "/" + std::string(kStateLostFile)); !r) return r;
  if (auto r = fs_.sync_dir(dir_); !r) return r;
  report_.state_lost = false;
  return {};
}

// write_epochs() refuses a currentEpoch above the acceptedEpoch, so a whole record (its checksum
// good) that holds one was not written by a log: corruption, not a torn write, and never handed
// to the protocol, whose invariant it breaks.
namespace {
Result<void> check_epoch_order(const std::string& path, const format::EpochRecord& e,
                               const std::string& where) {
  if (e.current <= e.accepted) return {};
  return fail(errc::corrupt, path + ": " + where + ": currentEpoch " + std::to_string(e.current) +
                                 " above acceptedEpoch " + std::to_string(e.accepted) +
                                 " (never written so by this log)");
}
}  // namespace

// Reads the epoch file into epochs_ (FORMAT.md, "Epoch file"). Returns true for the previous
// 48-byte file, which recover() replaces with a slotted one once the rest of the directory
// checked out.
Result<bool> Log::read_epoch_file(const std::string& path) {
  auto f = fs_.open(path, OpenMode::read_write);
  if (!f) return std::unexpected(f.error());
  auto size = (*f)->size();
  if (!size) return std::unexpected(size.error());
  if (*size == format::kLegacyEpochFileBytes) {
    std::array<std::byte, format::kLegacyEpochFileBytes> buf{};
    auto n = (*f)->read_at(0, buf);
    if (!n) return std::unexpected(n.error());
    if (*n != buf.size()) return fail(errc::corrupt, path + ": short read of the epoch file");
    format::EpochRecord e;
    if (auto st = format::decode_legacy_epochs(buf, e); st != format::HeaderStatus::ok) {
      return std::unexpected(header_error(st, path, "epoch file"));
    }
    if (e.cluster_id != opt_.cluster_id) {
      return std::unexpected(cluster_error(path, e.cluster_id, opt_.cluster_id));
    }
    if (auto ok = check_epoch_order(path, e, "epoch file"); !ok) return std::unexpected(ok.error());
    epochs_ = Epochs{e.accepted, e.current};
    return true;
  }
  if (*size != format::kEpochFileBytes) {
    return fail(errc::corrupt, path + ": " + std::to_string(*size) + " bytes; an epoch file has " +
                                   std::to_string(format::kEpochFileBytes) + " (or " +
                                   std::to_string(format::kLegacyEpochFileBytes) +
                                   " in the previous format)");
  }
  std::optional<format::EpochRecord> newest;
  std::size_t newest_slot = 0;
  std::string why;  // of the invalid slots
  bool damaged = false;
  for (std::size_t i = 0; i < format::kEpochSlots; ++i) {
    std::array<std::byte, format::kEpochSlotBytes> slot{};
    auto n = (*f)->read_at(i * format::kEpochSlotStride, slot);
    if (!n) return std::unexpected(n.error());
    if (*n != slot.size()) return fail(errc::corrupt, path + ": short read of the epoch file");
    format::EpochRecord e;
    const auto st = format::decode(slot, e);
    if (st == format::HeaderStatus::bad_version) {
      // A whole record of another version, not a torn one: this build does not read the file.
      return std::unexpected(header_error(st, path, "epoch file"));
    }
    if (st != format::HeaderStatus::ok) {
      // Torn by a crash in the middle of its write (or never written): the other slot holds
      // the epochs, which the interrupted write_epochs() never reported durable.
      const bool blank = format::all_zero(slot.data(), slot.size());
      damaged = damaged || !blank;
      why += ", slot " + std::to_string(i) + ": " +
             (blank ? "never written"
                    : st == format::HeaderStatus::bad_magic ? "bad magic" : "checksum mismatch");
      continue;
    }
    if (e.cluster_id != opt_.cluster_id) {
      return std::unexpected(cluster_error(path, e.cluster_id, opt_.cluster_id));
    }
    if (auto ok = check_epoch_order(path, e, "slot " + std::to_string(i)); !ok) {
      return std::unexpected(ok.error());
    }
    if (newest && e.sequence == newest->sequence) {
      // write_epochs() never writes the sequence of the newest record again.
      return fail(errc::corrupt, path + ": both slots hold sequence " + std::to_string(e.sequence));
    }
    if (!newest || e.sequence > newest->sequence) {
      newest = e;
      newest_slot = i;
    }
  }
  if (!newest) return fail(errc::corrupt, path + ": no valid epoch record (" + why.substr(2) + ")");
  report_.epoch_slot_ignored = damaged;
  epochs_ = Epochs{newest->accepted, newest->current};
  epoch_sequence_ = newest->sequence;
  epoch_slot_ = newest_slot;
  epoch_file_ = std::move(*f);
  return false;
}

// The slotted epoch file holding epochs_ in slot 0, created atomically so that its size and
// existence are durable before write_epochs() overwrites a slot in place with a bare fdatasync.
// Every byte is written rather than fallocated: an overwrite of a written extent leaves the file
// system no metadata to commit, so that fdatasync is the data-only fast path.
Result<void> Log::create_epoch_file() {
  std::vector<std::byte> image(format::kEpochFileBytes);
  format::encode(format::EpochRecord{opt_.cluster_id, 1, epochs_.accepted, epochs_.current},
                 std::span<std::byte, format::kEpochSlotBytes>(image.data(),
                                                               format::kEpochSlotBytes));
  epoch_file_.reset();
  if (auto r = write_atomically(std::string(kEpochFile), image, {}); !r) return r;
  auto f = fs_.open(dir_ + "/" + std::string(kEpochFile), OpenMode::read_write);
  if (!f) return std::unexpected(f.error());
  epoch_file_ = std::move(*f);
  epoch_sequence_ = 1;
  epoch_slot_ = 0;
  return {};
}

Result<void> Log::write_epochs(Epochs e) {
  if (e.current > e.accepted) {
    return fail(errc::invalid_argument, "currentEpoch " + std::to_string(e.current) +
                                            " above acceptedEpoch " + std::to_string(e.accepted));
  }
  // Durable effects complete in issue order (the simulator's disk model, which the core was
  // checked against, assumes it; tests/log/differential_test.cpp checks it): records appended
  // before this call are made durable before the new epochs can be.
  if (!queued_.empty() || !inflight_.empty()) {
    if (auto r = flush(); !r) return std::unexpected(r.error());
  }
  FASTZAB_LOG_ASSERT(epoch_file_ != nullptr);
  // Never the slot holding epochs_: a crash or failure part way leaves that one whole. After a
  // failure the same slot is written again next time (epoch_slot_ does not move), whatever it
  // now holds.
  const std::size_t slot = (epoch_slot_ + 1) % format::kEpochSlots;
  std::array<std::byte, format::kEpochSlotBytes> rec{};
  format::encode(format::EpochRecord{opt_.cluster_id, epoch_sequence_ + 1, e.accepted, e.current},
                 rec);
  if (auto r = epoch_file_->write_at(slot * format::kEpochSlotStride, rec); !r) return r;
  if (auto r = epoch_file_->sync_data(); !r) return r;
  epoch_slot_ = slot;
  ++epoch_sequence_;
  epochs_ = e;
  return {};
}

Result<void> Log::save_snapshot(std::uint64_t zxid, std::span<const std::byte> data) {
  if (data.size() > format::kMaxSnapshotBytes) {
    return fail(errc::invalid_argument, "snapshot of " + std::to_string(data.size()) + " bytes");
  }
  format::SnapshotHeader h{opt_.cluster_id, zxid, data.size(), crc32c(data.data(), data.size())};
  std::array<std::byte, format::kSnapshotHeaderBytes> head{};
  format::encode(h, head);
  const std::string name = std::string(kSnapshotPrefix) + hex16(zxid);
  if (auto r = write_atomically(name, head, data); !r) return r;
  if (std::find(snapshots_.begin(), snapshots_.end(), zxid) == snapshots_.end()) {
    snapshots_.push_back(zxid);
    std::sort(snapshots_.begin(), snapshots_.end());
  }
  return {};
}

Result<std::optional<Snapshot>> Log::latest_snapshot() {
  if (snapshots_.empty()) return std::optional<Snapshot>{};
  const std::uint64_t zxid = snapshots_.back();
  const std::string path = snap_path(zxid);
  auto f = fs_.open(path, OpenMode::read_write);
  if (!f) return std::unexpected(f.error());
  std::array<std::byte, format::kSnapshotHeaderBytes> head{};
  auto n = (*f)->read_at(0, head);
  if (!n) return std::unexpected(n.error());
  if (*n != head.size()) return fail(errc::corrupt, path + ": shorter than a snapshot header");
  format::SnapshotHeader h;
  if (auto st = format::decode(std::span<const std::byte, format::kSnapshotHeaderBytes>(head), h);
      st != format::HeaderStatus::ok) {
    return std::unexpected(header_error(st, path, "snapshot"));
  }
  if (h.cluster_id != opt_.cluster_id) {
    return std::unexpected(cluster_error(path, h.cluster_id, opt_.cluster_id));
  }
  if (h.zxid != zxid || h.length > format::kMaxSnapshotBytes) {
    return fail(errc::corrupt, path + ": header does not match the file name");
  }
  Snapshot s;
  s.zxid = h.zxid;
  s.data.resize(h.length);
  auto m = (*f)->read_at(format::kSnapshotHeaderBytes, s.data);
  if (!m) return std::unexpected(m.error());
  if (*m != h.length || crc32c(s.data.data(), s.data.size()) != h.payload_crc) {
    return fail(errc::corrupt, path + ": snapshot body fails its checksum");
  }
  return std::optional<Snapshot>(std::move(s));
}

Result<PurgeReport> Log::purge() {
  PurgeReport rep;
  if (snapshots_.empty()) return rep;
  const std::uint64_t snap = snapshots_.back();
  // Oldest first: a crash in between leaves a suffix, still covered by the snapshot.
  while (segments_.size() > 1) {
    Segment& s = segments_.front();
    if (!s.file || s.records == 0) break;
    const std::uint64_t last = s.last_zxid;
    if (last > snap || last > durable_zxid_) break;
    const std::string path = s.path;
    s.file.reset();
    segments_.pop_front();
    if (auto r = remove_file(path); !r) return std::unexpected(r.error());
    ++rep.segments_removed;
  }
  const std::size_t keep = std::max<std::size_t>(opt_.keep_snapshots, 1);
  while (snapshots_.size() > keep) {
    if (auto r = remove_file(snap_path(snapshots_.front())); !r) return std::unexpected(r.error());
    snapshots_.erase(snapshots_.begin());
    ++rep.snapshots_removed;
  }
  return rep;
}

}  // namespace fastzab::log
