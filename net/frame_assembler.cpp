#include "net/frame_assembler.h"

namespace fastzab::net {

std::vector<std::byte> SpillPool::acquire() {
  if (free_.empty()) return {};
  std::vector<std::byte> buffer = std::move(free_.back());
  free_.pop_back();
  buffer.clear();
  return buffer;
}

void SpillPool::lend(std::vector<std::byte>&& buffer) { lent_.push_back(std::move(buffer)); }

void SpillPool::release(std::vector<std::byte>&& buffer) {
  if (buffer.capacity() == 0 || buffer.capacity() > kMaxRetainedCapacityBytes ||
      free_.size() >= kMaxFreeBuffers) {
    return;  // freed here
  }
  buffer.clear();
  free_.push_back(std::move(buffer));
}

void SpillPool::reclaim() {
  for (auto& buffer : lent_) release(std::move(buffer));
  lent_.clear();
}

void FrameAssembler::reset() {
  if (pool_ != nullptr && spill_.capacity() > 0) pool_->release(std::move(spill_));
  spill_ = {};
  header_have_ = 0;
  body_remaining_ = 0;
  claimed_length_ = 0;
  dead_ = Status::ok;
}

}  // namespace fastzab::net
