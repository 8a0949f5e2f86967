// The sparse in-memory index, and finding and reading durable records through it (scan() itself
// is in log_internal.h).
#include <algorithm>

#include "log/log.h"
#include "log/log_internal.h"

namespace fastzab::log {

using detail::kIndexIntervalBytes;

void Log::note_record(Segment& s, std::uint64_t zxid, std::uint64_t offset) {
  if (s.records == 0 || offset >= s.next_index_at) {
    s.index.push_back(Loc{zxid, offset, s.records});
    s.next_index_at = offset + kIndexIntervalBytes;
  }
  ++s.records;
  s.last_zxid = zxid;
}

// The last index entry with zxid <= `zxid` (the first entry when there is none).
const Log::Loc& Log::index_at_or_before(const Segment& s, std::uint64_t zxid) {
  FASTZAB_LOG_ASSERT(!s.index.empty());
  auto it = std::upper_bound(s.index.begin(), s.index.end(), zxid,
                             [](std::uint64_t z, const Loc& l) { return z < l.zxid; });
  return it == s.index.begin() ? *it : *(it - 1);
}

// The segment that would hold `zxid` (the last one starting at or below it), or null.
Log::Segment* Log::segment_for(std::uint64_t zxid) {
  auto seg = std::upper_bound(segments_.begin(), segments_.end(), zxid,
                              [](std::uint64_t z, const Segment& s) { return z < s.first_zxid; });
  if (seg == segments_.begin()) return nullptr;
  return &*(seg - 1);
}

Result<std::optional<Log::Position>> Log::locate(std::uint64_t zxid) {
  std::optional<Position> found;
  if (zxid > durable_zxid_) return found;
  Segment* seg = segment_for(zxid);
  if (seg == nullptr || seg->records == 0 || !seg->file) return found;
  auto r = scan(*seg, index_at_or_before(*seg, zxid), false, [&](const Scanned& rec) {
    if (rec.zxid == zxid) found = Position{seg->path, rec.offset, rec.length};
    return rec.zxid < zxid;
  });
  if (!r) return std::unexpected(r.error());
  return found;
}

Result<std::vector<Record>> Log::read(std::uint64_t from, std::uint64_t to,
                                      std::size_t max_bytes) {
  std::vector<Record> out;
  to = std::min(to, durable_zxid_);
  if (from > to) return out;
  auto seg = std::upper_bound(segments_.begin(), segments_.end(), from,
                              [](std::uint64_t z, const Segment& s) { return z < s.first_zxid; });
  if (seg != segments_.begin()) --seg;
  std::size_t bytes = 0;
  bool done = false;
  for (; seg != segments_.end() && !done; ++seg) {
    if (seg->records == 0 || !seg->file) continue;
    auto r = scan(*seg, index_at_or_before(*seg, from), true, [&](const Scanned& rec) {
      if (rec.zxid < from) return true;
      if (rec.zxid > to || (!out.empty() && bytes + rec.length > max_bytes)) {
        done = true;
        return false;
      }
      Record x;
      x.zxid = rec.zxid;
      x.payload.assign(rec.payload, rec.payload + rec.length);
      out.push_back(std::move(x));
      bytes += rec.length;
      return true;
    });
    if (!r) return std::unexpected(r.error());
  }
  return out;
}

}  // namespace fastzab::log
