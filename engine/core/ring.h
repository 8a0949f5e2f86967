// A growable ring buffer (FIFO with random access). Unlike std::deque, popping and pushing in the
// steady state never allocates: storage grows (doubling) only when full and is never returned.
#pragma once

#include <compare>
#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

#include "invariant.h"

namespace fastzab::core {

template <class T>
class Ring {
 public:
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & mask()]; }
  const T& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & mask()]; }
  T& front() noexcept { return (*this)[0]; }
  T& back() noexcept { return (*this)[size_ - 1]; }
  const T& front() const noexcept { return (*this)[0]; }
  const T& back() const noexcept { return (*this)[size_ - 1]; }

  void push_back(T value) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & mask()] = std::move(value);
    ++size_;
  }
  // Appends a slot that still holds the value last popped from it (default-constructed after
  // a grow) and returns it: a caller that overwrites it in place (assign, not move) reuses that
  // value's buffers, so a queue of byte buffers allocates nothing once it has grown.
  T& push_back_slot() {
    if (size_ == slots_.size()) grow();
    T& slot = slots_[(head_ + size_) & mask()];
    ++size_;
    return slot;
  }
  // The removed slot keeps its value's resources (e.g. a vector's capacity) until overwritten;
  // callers that recycle buffers move them out first.
  void pop_front() noexcept {
    FASTZAB_ASSERT(size_ > 0);
    head_ = (head_ + 1) & mask();
    --size_;
  }
  void pop_back() noexcept {
    FASTZAB_ASSERT(size_ > 0);
    --size_;
  }
  void clear() noexcept {
    head_ = 0;
    size_ = 0;
  }

  // Iteration in FIFO order, enough for std::upper_bound and range-for.
  template <class R, class V>
  class Iter {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = V*;
    using reference = V&;
    Iter() = default;
    Iter(R* ring, std::size_t i) : ring_(ring), i_(i) {}
    V& operator*() const { return (*ring_)[i_]; }
    V* operator->() const { return &(*ring_)[i_]; }
    V& operator[](difference_type d) const { return (*ring_)[i_ + static_cast<std::size_t>(d)]; }
    Iter& operator++() { ++i_; return *this; }
    Iter operator++(int) { Iter t = *this; ++i_; return t; }
    Iter& operator--() { --i_; return *this; }
    Iter operator--(int) { Iter t = *this; --i_; return t; }
    Iter& operator+=(difference_type d) { i_ += static_cast<std::size_t>(d); return *this; }
    Iter& operator-=(difference_type d) { i_ -= static_cast<std::size_t>(d); return *this; }
    friend Iter operator+(Iter a, difference_type d) { return a += d; }
    friend Iter operator+(difference_type d, Iter a) { return a += d; }
    friend Iter operator-(Iter a, difference_type d) { return a -= d; }
    friend difference_type operator-(const Iter& a, const Iter& b) {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(const Iter& a, const Iter& b) { return a.i_ == b.i_; }
    friend auto operator<=>(const Iter& a, const Iter& b) { return a.i_ <=> b.i_; }

   private:
    R* ring_ = nullptr;
    std::size_t i_ = 0;
  };
  using iterator = Iter<Ring, T>;
  using const_iterator = Iter<const Ring, const T>;
  iterator begin() { return iterator(this, 0); }
  iterator end() { return iterator(this, size_); }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size_); }

 private:
  std::size_t mask() const noexcept { return slots_.size() - 1; }
  void grow() {
    std::vector<T> bigger(slots_.empty() ? 16 : slots_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    slots_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace fastzab::core
