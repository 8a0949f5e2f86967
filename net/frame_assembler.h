// Splits a TCP byte stream into frames (u32 little-endian length, then that many bytes), pure:
// it sees only the chunks a recv produced, so it is tested on its own with any chunking.
//
// A frame that lies inside one chunk is handed out as a span into that chunk: no copy. Only a
// frame (or a header) that spans chunks is copied, into a buffer from a SpillPool; the span of
// such a frame stays valid until the pool's reclaim() (the transport calls it at the start of the
// next poll()), so several spilled frames can be handed out in one pass. Spill buffers keep their
// capacity, so a steady stream allocates nothing per frame.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "net/wire.h"

namespace fastzab::net {

class SpillPool {
 public:
  // A cleared buffer, with the capacity of an earlier one when there is one to reuse.
  std::vector<std::byte> acquire();
  // A delivered frame points into `buffer`: keep it untouched until reclaim().
  void lend(std::vector<std::byte>&& buffer);
  // The buffer was never handed out (its connection closed mid-frame): reusable at once.
  void release(std::vector<std::byte>&& buffer);
  // Every frame handed out so far is dead: lent buffers become reusable.
  void reclaim();

  std::size_t lent_count() const noexcept { return lent_.size(); }
  std::size_t free_count() const noexcept { return free_.size(); }

  // Bounds on what is kept for reuse: a rare huge frame should not pin its memory for ever.
  static constexpr std::size_t kMaxFreeBuffers = 32;
  static constexpr std::size_t kMaxRetainedCapacityBytes = std::size_t{4} << 20;

 private:
  std::vector<std::vector<std::byte>> free_;
  std::vector<std::vector<std::byte>> lent_;
};

class FrameAssembler {
 public:
  enum class Status : std::uint8_t {
    ok,           // every byte was consumed (a partial frame may be held)
    zero_length,  // a header claimed 0 bytes: not a frame this protocol sends (garbage)
    oversized,    // a header claimed more than max_frame_bytes: nothing was allocated for it
  };
  // Where a delivered frame lives: in the caller's chunk, or in a spill buffer of the pool.
  enum class Source : std::uint8_t { chunk, spill };

  FrameAssembler(std::uint32_t max_frame_bytes, SpillPool& pool)
      : max_frame_bytes_(max_frame_bytes), pool_(&pool) {}
  FrameAssembler(FrameAssembler&&) = default;
  FrameAssembler& operator=(FrameAssembler&&) = default;
  ~FrameAssembler() { reset(); }

  // Consumes `chunk`; calls on_frame(std::span<const std::byte>, Source) for each complete frame,
  // in order. At the first bad header it stops and returns the error; the stream is then dead
  // (every later feed returns the same error) because the frame boundaries are lost.
  template <class OnFrame>
  Status feed(std::span<const std::byte> chunk, OnFrame&& on_frame);

  // True when bytes of an unfinished frame (or its header) are held: EOF now means truncation.
  bool mid_frame() const noexcept { return header_have_ > 0 || body_remaining_ > 0; }
  // The length the last bad header claimed (for the log line).
  std::uint32_t last_claimed_length() const noexcept { return claimed_length_; }
  // Drops a partial frame and any error: the assembler starts a fresh stream.
  void reset();

 private:
  std::uint32_t max_frame_bytes_;
  SpillPool* pool_;
  std::array<std::byte, wire::kFrameHeaderBytes> header_{};
  std::size_t header_have_ = 0;
  std::size_t body_remaining_ = 0;  // > 0: a frame is being copied into spill_
  std::vector<std::byte> spill_;
  std::uint32_t claimed_length_ = 0;
  Status dead_ = Status::ok;
};

template <class OnFrame>
FrameAssembler::Status FrameAssembler::feed(std::span<const std::byte> chunk, OnFrame&& on_frame) {
  if (dead_ != Status::ok) return dead_;
  std::size_t at = 0;
  while (at < chunk.size()) {
    const std::size_t available = chunk.size() - at;
    if (body_remaining_ > 0) {
      const std::size_t take = std::min(body_remaining_, available);
      spill_.insert(spill_.end(), chunk.begin() + static_cast<std::ptrdiff_t>(at),
                    chunk.begin() + static_cast<std::ptrdiff_t>(at + take));
      at += take;
      body_remaining_ -= take;
      if (body_remaining_ == 0) {
        // Moved out first: the callback may reset() this assembler, which must not hand the
        // buffer of a delivered frame back to the pool.
        std::vector<std::byte> done = std::move(spill_);
        spill_ = {};
        on_frame(std::span<const std::byte>(done), Source::spill);
        pool_->lend(std::move(done));
      }
      continue;
    }
    std::uint32_t length = 0;
    if (header_have_ == 0 && available >= wire::kFrameHeaderBytes) {
      length = wire::load_u32_le(chunk.data() + at);
      at += wire::kFrameHeaderBytes;
    } else {
      const std::size_t take = std::min(wire::kFrameHeaderBytes - header_have_, available);
      std::copy_n(chunk.data() + at, take, header_.data() + header_have_);
      header_have_ += take;
      at += take;
      if (header_have_ < wire::kFrameHeaderBytes) break;
      header_have_ = 0;
      length = wire::load_u32_le(header_.data());
    }
    if (length == 0 || length > max_frame_bytes_) {
      claimed_length_ = length;
      dead_ = length == 0 ? Status::zero_length : Status::oversized;
      return dead_;
    }
    const std::size_t rest = chunk.size() - at;
    if (rest >= length) {
      on_frame(chunk.subspan(at, length), Source::chunk);
      at += length;
    } else {
      // Only now, with a length we accept, is memory committed for the frame.
      spill_ = pool_->acquire();
      spill_.reserve(length);
      spill_.insert(spill_.end(), chunk.begin() + static_cast<std::ptrdiff_t>(at), chunk.end());
      body_remaining_ = length - rest;
      at = chunk.size();
    }
  }
  return Status::ok;
}

}  // namespace fastzab::net
