// The bytes of values too large for a ring slot, on their way from the application thread to a
// group thread: one buffer allocated at construction and reused as a circle, so that a write
// of any size up to the largest entry crosses threads without a heap allocation.
//
// It rides alongside an SpscRing of slots: the producer copies a value in here, then pushes a
// slot that holds the Ticket; the consumer pops the slot, reads the bytes, and releases the
// Ticket. The slot ring's release/acquire pair is what makes the bytes visible to the consumer;
// this ring only hands space back (consumer -> producer), through `released_`.
//
// - A value is contiguous: when it does not fit before the end of the buffer, the rest of the
//   buffer is skipped and it starts at offset 0; the skip is charged to its Ticket.
// - Tickets are released in the order they were taken (the slots are popped in that order).
// - With capacity at least twice the largest value, an empty ring always takes a value.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>

#include "engine/core/invariant.h"
#include "engine/runtime/spsc_ring.h"

namespace fastzab::runtime {

class SpscByteRing {
 public:
  struct Ticket {
    std::uint32_t offset = 0;  // where the value starts
    std::uint32_t charged = 0;  // its size plus any skipped end of the buffer
  };

  // The buffer's pages are not touched here: only the space values use becomes resident.
  explicit SpscByteRing(std::uint32_t capacity)
      : data_(new std::byte[capacity]), capacity_(capacity) {}

  std::uint32_t capacity() const noexcept { return capacity_; }

  // Producer: copies `value` in, or returns nullopt when the space is still held by values the
  // consumer has not released (or the value can never fit).
  std::optional<Ticket> push(std::span<const std::byte> value) noexcept {
    const std::uint64_t size = value.size();
    if (size > capacity_) return std::nullopt;
    const std::uint64_t at = head_ % capacity_;
    const std::uint64_t skip = at + size > capacity_ ? capacity_ - at : 0;
    const std::uint64_t charged = skip + size;
    if (head_ + charged - released_.load(std::memory_order_acquire) > capacity_) {
      return std::nullopt;
    }
    const auto offset = static_cast<std::uint32_t>(skip != 0 ? 0 : at);
    if (size != 0) std::memcpy(data_.get() + offset, value.data(), value.size());
    head_ += charged;
    return Ticket{offset, static_cast<std::uint32_t>(charged)};
  }

  // Producer: takes back the latest push (its slot could not be pushed after all).
  void unpush(Ticket t) noexcept { head_ -= t.charged; }

  // Consumer: the bytes of a ticket not yet released.
  std::span<const std::byte> view(Ticket t, std::size_t size) const noexcept {
    FASTZAB_ASSERT(t.offset + size <= capacity_);
    return {data_.get() + t.offset, size};
  }

  // Consumer: gives a ticket's space back; tickets come back in the order they were taken.
  void release(Ticket t) noexcept {
    consumer_released_ += t.charged;
    released_.store(consumer_released_, std::memory_order_release);
  }

 private:
  std::unique_ptr<std::byte[]> data_;
  std::uint32_t capacity_;
  alignas(kCacheLineBytes) std::uint64_t head_ = 0;  // the producer's: bytes charged so far
  alignas(kCacheLineBytes) std::atomic<std::uint64_t> released_{0};
  std::uint64_t consumer_released_ = 0;  // the consumer's copy of released_
};

}  // namespace fastzab::runtime
