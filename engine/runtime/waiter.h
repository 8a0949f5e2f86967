// How a consumer thread (a core's poll loop) waits for work, in the three polling modes of
// style practice 12 (PollMode comes from config.h, the `poll` key):
//
//   busy      spin until the predicate holds or the timeout passes (a pause instruction per
//             spin, a yield every kSpinsPerYield spins so a shared machine still makes progress)
//   adaptive  spin like busy for the configured spin duration, then block
//   blocking  block at once (the default in tests)
//
// Blocking is a Linux futex on one 32-bit word that is also the consumer's "sleeping" flag. A
// producer calls notify() after publishing (once per batch); notify() makes a system call only
// when the consumer announced it is asleep, so an awake consumer costs the producer one
// uncontended atomic exchange and no syscall.
//
// Not std::atomic<uint32_t>::wait: C++20 gives it no timeout, and a poll loop must wake for its
// drain deadline and timers. The futex is the same kernel object atomic::wait uses on Linux.
//
// One consumer calls wait(); any number of producers may call notify().
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "engine/runtime/config.h"
#include "engine/runtime/spsc_ring.h"

namespace fastzab::runtime {

class Waiter {
 public:
  // How long adaptive mode spins before it blocks, unless told otherwise.
  static constexpr std::chrono::nanoseconds kDefaultSpin = std::chrono::microseconds(50);
  // Busy and adaptive spinning read the clock once per this many spins...
  static constexpr std::uint32_t kSpinsPerClockRead = 64;
  // ...and yield the processor once per this many.
  static constexpr std::uint32_t kSpinsPerYield = 1024;
  static_assert(kSpinsPerYield % kSpinsPerClockRead == 0);

  explicit Waiter(PollMode mode, std::chrono::nanoseconds spin = kDefaultSpin) noexcept
      : mode_(mode), spin_(spin) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  PollMode mode() const noexcept { return mode_; }

  // Consumer: returns true as soon as ready() holds, false when `timeout` passes first. ready()
  // must read what producers publish with release stores (e.g. !ring.empty_approx()); it may be
  // called many times.
  template <class Pred>
  bool wait(Pred&& ready, std::chrono::nanoseconds timeout) {
    if (ready()) return true;
    const Clock::time_point now = Clock::now();
    const Clock::time_point deadline =
        timeout >= Clock::time_point::max() - now ? Clock::time_point::max() : now + timeout;
    if (mode_ != PollMode::blocking) {
      const Clock::time_point spin_end =
          mode_ == PollMode::busy || spin_ >= deadline - now ? deadline : now + spin_;
      for (std::uint32_t spins = 1;; ++spins) {
        cpu_relax();
        if (ready()) return true;
        if (spins % kSpinsPerClockRead == 0) {
          if (Clock::now() >= spin_end) break;
          if (spins % kSpinsPerYield == 0) std::this_thread::yield();
        }
      }
      if (mode_ == PollMode::busy) return false;
    }
    return block(ready, deadline);
  }

  // Producer: call after publishing (after the release store, once per batch). Wakes the consumer
  // if, and only if, it is asleep or about to fall asleep; returns whether it did (a system call).
  bool notify() noexcept {
    if (sleeping_.exchange(kAwake, std::memory_order_acq_rel) != kSleeping) return false;
    futex(FUTEX_WAKE_PRIVATE, 1, nullptr);
    return true;
  }

  // Whether the consumer has announced it is going to sleep (a snapshot, for tests and metrics).
  bool consumer_asleep() const noexcept {
    return sleeping_.load(std::memory_order_acquire) == kSleeping;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::uint32_t kAwake = 0;
  static constexpr std::uint32_t kSleeping = 1;

  // Why no wake-up is lost. The consumer (C) and a producer (P) each write one location and
  // then read the other's:
  //   C: sleeping_ := 1 (acq_rel exchange);  re-check ready() (reads what P published)
  //   P: publish (release store);            sleeping_ := 0 (acq_rel exchange), wake if it was 1
  // Every write to sleeping_ is a read-modify-write, so the two exchanges are ordered in
  // sleeping_'s modification order, and each reads the value the other left:
  //   - P's exchange first: C's exchange reads from P's release sequence, so P's publish
  //     happens before C's re-check, which sees the work and C does not sleep;
  //   - C's exchange first: P's exchange reads 1, so P clears the flag and calls FUTEX_WAKE.
  //     If C has not yet entered FUTEX_WAIT, the kernel finds the word no longer 1 and returns
  //     at once; if it has, the wake finds it.
  // Plain load/store would not do: a store followed by a load of another location may be
  // reordered (store buffering) without a seq_cst fence, and both sides could miss each other.
  template <class Pred>
  bool block(Pred& ready, Clock::time_point deadline) {
    for (;;) {
      sleeping_.exchange(kSleeping, std::memory_order_acq_rel);  // 1. announce
      if (ready()) {                                             // 2. re-check
        sleeping_.exchange(kAwake, std::memory_order_relaxed);
        return true;
      }
      const Clock::time_point now = Clock::now();
      if (now >= deadline) {
        sleeping_.exchange(kAwake, std::memory_order_relaxed);
        return false;
      }
      // 3. sleep while the word is still kSleeping. A wake, a signal, a spurious return or the
      // timeout all come back here; the loop re-checks.
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
      futex(FUTEX_WAIT_PRIVATE, kSleeping, &ts);
    }
  }

  long futex(int op, std::uint32_t value, const timespec* timeout) noexcept {
    // The kernel reads the word as a plain 32-bit integer; std::atomic<uint32_t> is exactly
    // that (lock-free, same size), which is what libstdc++'s own atomic::wait relies on too.
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&sleeping_), op, value, timeout,
                     nullptr, 0);
  }

  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

  PollMode mode_;
  std::chrono::nanoseconds spin_;
  // On a cache line of its own (the class is aligned and sized to whole lines): producers write
  // it on every notify(), the consumer when it goes to sleep.
  alignas(kCacheLineBytes) std::atomic<std::uint32_t> sleeping_{kAwake};
};

}  // namespace fastzab::runtime
