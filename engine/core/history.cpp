#include "history.h"

#include <algorithm>

#include "invariant.h"

namespace fastzab::core {

Bytes EntryRange::Iterator::operator*() const noexcept {
  const Bytes entry(r_->history_->at(i_).bytes);
  if (r_->part_ == Part::entry) return entry;
  // Every history entry was checked by decode_entry when it arrived.
  const auto e = decode_entry(entry);
  FASTZAB_ASSERT(e.has_value());
  return e->value;
}

void History::recycle(ByteBuffer& buffer) {
  if (spare_.size() < kMaxSpare && spare_bytes_ + buffer.capacity() <= kMaxSpareBytes) {
    spare_bytes_ += buffer.capacity();
    spare_.push_back(std::move(buffer));
  } else {
    // The ring keeps a popped slot's value until the slot is reused: free it now.
    ByteBuffer().swap(buffer);
  }
}

void History::reset(Zxid base) {
  while (!entries_.empty()) {
    recycle(entries_.back().bytes);
    entries_.pop_back();
  }
  base_ = base;
}

ByteBuffer History::take_buffer() {
  ByteBuffer buffer;
  if (!spare_.empty()) {
    buffer = std::move(spare_.back());
    spare_.pop_back();
    spare_bytes_ -= buffer.capacity();
  }
  return buffer;
}

void History::append(Zxid zxid, Bytes bytes) {
  FASTZAB_ASSERT_OP(zxid.value, >, last().value);
  ByteBuffer buffer = take_buffer();
  buffer.assign(bytes.begin(), bytes.end());
  entries_.push_back(Entry{zxid, std::move(buffer)});
}

void History::append(Zxid zxid, WriteId id, Bytes value) {
  FASTZAB_ASSERT_OP(zxid.value, >, last().value);
  ByteBuffer buffer = take_buffer();
  buffer.clear();
  encode_entry_header(id, buffer);
  buffer.insert(buffer.end(), value.begin(), value.end());
  entries_.push_back(Entry{zxid, std::move(buffer)});
}

void History::truncate_after(Zxid zxid) {
  FASTZAB_ASSERT(contains(zxid));
  while (!entries_.empty() && entries_.back().zxid > zxid) {
    recycle(entries_.back().bytes);
    entries_.pop_back();
  }
}

void History::evict(Zxid keep_above, std::size_t window) {
  const std::size_t applied = upper_bound(keep_above);
  std::size_t drop = applied > window ? applied - window : 0;
  while (drop-- > 0) {
    base_ = entries_.front().zxid;
    recycle(entries_.front().bytes);
    entries_.pop_front();
  }
}

bool History::contains(Zxid zxid) const noexcept {
  if (zxid == base_) return true;
  const std::size_t i = upper_bound(zxid);
  return i > 0 && entries_[i - 1].zxid == zxid;
}

std::size_t History::upper_bound(Zxid z) const noexcept {
  const auto it = std::upper_bound(entries_.begin(), entries_.end(), z,
                                   [](Zxid v, const Entry& e) { return v < e.zxid; });
  return static_cast<std::size_t>(it - entries_.begin());
}

std::optional<Zxid> History::largest_below(Zxid z) const noexcept {
  const auto it = std::lower_bound(entries_.begin(), entries_.end(), z,
                                   [](const Entry& e, Zxid v) { return e.zxid < v; });
  if (it != entries_.begin()) return std::prev(it)->zxid;
  if (base_ < z) return base_;
  return std::nullopt;
}

}  // namespace fastzab::core
