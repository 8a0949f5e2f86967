// A bounded, lock-free, single-producer single-consumer ring: the hand-off between an
// application thread and a pinned core thread, or between two cores (style practice 11).
//
// - The indices are free-running 64-bit counters (slot = index & (Capacity - 1)); the ring is
//   full when tail - head == Capacity. Unsigned wrap-around keeps that right even past 2^64.
// - head_ (written by the consumer) and tail_ (written by the producer) sit on cache lines of
//   their own, and each side keeps a private copy of the other side's index, refreshed only when
//   that copy says "full" (producer) or "empty" (consumer). A steady stream therefore touches the
//   other side's line once per lap rather than once per element.
// - Only acquire/release ordering: the producer's release store of tail_ publishes the elements
//   it constructed; the consumer's release store of head_ hands the slots back after it has
//   destroyed their elements. Batches cost one release store each.
// - No allocation after construction: the slots are allocated once, in the constructor.
// - Owner assertion, on in every build: the first thread to push becomes the producer and the
//   first to pop the consumer; any other thread on either side aborts (FASTZAB_ASSERT). The
//   check is one relaxed load and a compare. empty_approx() and size_approx() may be called from
//   any thread and give a snapshot that may be stale by the time it is used.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>

#include "engine/core/invariant.h"

namespace fastzab::runtime {

// One cache line on the x86-64 and AArch64 machines fastzab targets. Deliberately not
// std::hardware_destructive_interference_size: g++ warns (-Winterference-size) that its value
// may change between compiler versions and flags, which would silently change this layout.
inline constexpr std::size_t kCacheLineBytes = 64;

namespace detail {

// The thread that owns one side of a ring: recorded on first use, compared on every later one.
class OwnerThread {
 public:
  void check(const char* side) noexcept {
    const std::thread::id me = std::this_thread::get_id();
    std::thread::id seen = id_.load(std::memory_order_relaxed);
    if (seen == me) [[likely]] return;
    if (seen == std::thread::id{} &&
        id_.compare_exchange_strong(seen, me, std::memory_order_relaxed)) {
      return;
    }
    ::fastzab::core::assertion_failed("SpscRing side used from a second thread", __FILE__,
                                      __LINE__, side, 0, 0);
  }

 private:
  static_assert(std::atomic<std::thread::id>::is_always_lock_free);
  std::atomic<std::thread::id> id_{};
};

}  // namespace detail

template <class T, std::size_t Capacity>
class SpscRing {
  static_assert(Capacity > 0 && (Capacity & (Capacity - 1)) == 0,
                "SpscRing capacity must be a power of two");
  static_assert(Capacity <= SIZE_MAX / sizeof(T), "SpscRing storage size overflows");
  // A hand-off must not fail half-way: moving an element in or out, and destroying it, cannot
  // throw (true of std::unique_ptr, std::vector and structs of them).
  static_assert(std::is_nothrow_move_constructible_v<T>);
  static_assert(std::is_nothrow_destructible_v<T>);

 public:
  SpscRing()
      : slots_(static_cast<T*>(::operator new(Capacity * sizeof(T), kStorageAlign))) {}
  ~SpscRing() {
    // Both sides have stopped (the owner joined them), so this thread may touch every slot.
    const std::size_t tail = tail_.load(std::memory_order_acquire);
    for (std::size_t i = head_.load(std::memory_order_acquire); i != tail; ++i) {
      std::destroy_at(slot(i));
    }
    ::operator delete(static_cast<void*>(slots_), kStorageAlign);
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  static constexpr std::size_t capacity() noexcept { return Capacity; }

  // ---- producer side -------------------------------------------------------------------------

  // Constructs one element in place; false when the ring is full (nothing is constructed then).
  template <class... Args>
  bool try_emplace(Args&&... args) {
    producer_.check("push");
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ == Capacity) {
      // The acquire pairs with the consumer's release of head_: its destruction of the element
      // that lived in the slot we are about to reuse happens before our construction.
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ == Capacity) return false;
    }
    if constexpr (std::is_constructible_v<T, Args...>) {
      std::construct_at(slot(tail), std::forward<Args>(args)...);
    } else {  // an aggregate, on a compiler without parenthesised aggregate initialisation
      ::new (static_cast<void*>(slot(tail))) T{std::forward<Args>(args)...};
    }
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }
  bool try_push(T&& value) { return try_emplace(std::move(value)); }
  bool try_push(const T& value) { return try_emplace(value); }

  // Moves items from the front of `items` into the ring, as many as fit, and publishes them with
  // one release store. Returns how many were moved (items[0, n) are then moved-from).
  std::size_t push_batch(std::span<T> items) noexcept {
    producer_.check("push");
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    std::size_t room = Capacity - (tail - head_cache_);
    if (room < items.size()) {
      head_cache_ = head_.load(std::memory_order_acquire);
      room = Capacity - (tail - head_cache_);
    }
    const std::size_t n = std::min(room, items.size());
    for (std::size_t i = 0; i < n; ++i) std::construct_at(slot(tail + i), std::move(items[i]));
    if (n != 0) tail_.store(tail + n, std::memory_order_release);
    return n;
  }

  // ---- consumer side -------------------------------------------------------------------------

  std::optional<T> try_pop() noexcept {
    consumer_.check("pop");
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      // The acquire pairs with the producer's release of tail_: the element is fully built.
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_) return std::nullopt;
    }
    T* p = slot(head);
    std::optional<T> out(std::in_place, std::move(*p));
    std::destroy_at(p);
    head_.store(head + 1, std::memory_order_release);
    return out;
  }

  // Pops up to `max` elements, calling f(T&&) on each in FIFO order, and hands their slots back
  // to the producer with one release store. Returns how many were popped. Should f throw, the
  // element it was given still counts as popped and the ones before it stay popped.
  template <class F>
  std::size_t pop_batch(std::size_t max, F&& f) {
    static_assert(std::is_invocable_v<F&, T&&>, "pop_batch wants a callable taking T&&");
    const std::size_t head = head_.load(std::memory_order_relaxed);
    const std::size_t n = consumer_ready(head, max);
    std::size_t done = 0;
    {
      const Release release{head_, head, done};
      while (done < n) {
        T* p = slot(head + done);
        ++done;
        const Destroy destroy{p};
        f(std::move(*p));
      }
    }
    return n;
  }

  // Calls f(const T&) on up to `max` ready elements in FIFO order and leaves them in place:
  // their slots stay the consumer's (so what they hold stays valid) until pop_batch takes them.
  // Returns how many it saw; a pop_batch of that many right after takes exactly those.
  template <class F>
  std::size_t peek_batch(std::size_t max, F&& f) {
    static_assert(std::is_invocable_v<F&, const T&>, "peek_batch wants a callable taking const T&");
    const std::size_t head = head_.load(std::memory_order_relaxed);
    const std::size_t n = consumer_ready(head, max);
    for (std::size_t i = 0; i < n; ++i) f(std::as_const(*slot(head + i)));
    return n;
  }

  // ---- either side (snapshots) ---------------------------------------------------------------

  bool empty_approx() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }
  std::size_t size_approx() const noexcept {
    // head first: the tail read afterwards is at least the head read (the consumer saw that
    // tail before it released that head), so the difference never underflows.
    const std::size_t head = head_.load(std::memory_order_acquire);
    const std::size_t tail = tail_.load(std::memory_order_acquire);
    return std::min(tail - head, Capacity);
  }

 private:
  static constexpr std::align_val_t kStorageAlign{std::max(alignof(T), kCacheLineBytes)};

  struct Destroy {
    T* p;
    ~Destroy() { std::destroy_at(p); }
  };
  struct Release {
    std::atomic<std::size_t>& head;
    std::size_t start;
    const std::size_t& done;
    ~Release() {
      if (done != 0) head.store(start + done, std::memory_order_release);
    }
  };

  T* slot(std::size_t index) const noexcept { return slots_ + (index & (Capacity - 1)); }

  // The consumer's count of elements ready from `head`, at most `max`; reloads tail_ only when
  // its cached view holds fewer than `max`.
  std::size_t consumer_ready(std::size_t head, std::size_t max) {
    consumer_.check("pop");
    std::size_t ready = tail_cache_ - head;
    if (ready < max) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      ready = tail_cache_ - head;
    }
    return std::min(ready, max);
  }

  // Written by the consumer, read by the producer when its cached copy says "full".
  alignas(kCacheLineBytes) std::atomic<std::size_t> head_{0};
  // Written by the producer, read by the consumer when its cached copy says "empty".
  alignas(kCacheLineBytes) std::atomic<std::size_t> tail_{0};
  // Producer-private: its last view of head_, and its thread.
  alignas(kCacheLineBytes) std::size_t head_cache_ = 0;
  detail::OwnerThread producer_;
  // Consumer-private: its last view of tail_, and its thread.
  alignas(kCacheLineBytes) std::size_t tail_cache_ = 0;
  detail::OwnerThread consumer_;
  // Read-only after construction; shared by both sides without contention.
  alignas(kCacheLineBytes) T* const slots_;
};

}  // namespace fastzab::runtime
