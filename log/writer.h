// How a batch reaches the disk. The log hands a writer one request per batch: a contiguous write
// at an offset, optionally followed by fdatasync, and learns of its end from a completion. The
// synchronous writer does pwrite + fdatasync inside submit(); the io_uring writer links a write
// and an fdatasync SQE per batch and keeps several batches in flight. Both report the same way,
// so the log and its tests do not care which one runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "log/errc.h"
#include "log/file.h"

namespace fastzab::log {

struct WriteRequest {
  File* file = nullptr;
  std::uint64_t offset = 0;
  std::span<const std::byte> data;  // must stay valid until the request's completion is reaped
  bool sync = true;                 // fdatasync after the write, and only after all of it
  std::uint64_t id = 0;             // echoed in the completion
};

struct WriteCompletion {
  std::uint64_t id = 0;
  Result<void> result;  // success: all bytes written (and synced if asked)
};

class Writer {
 public:
  virtual ~Writer() = default;
  virtual const char* name() const noexcept = 0;
  // The most requests in flight; submit() needs in_flight() < capacity().
  virtual std::size_t capacity() const noexcept = 0;
  // Submitted requests whose completion has not been reaped yet.
  virtual std::size_t in_flight() const noexcept = 0;
  // Errors here mean the request was not started; I/O errors arrive as completions.
  virtual Result<void> submit(const WriteRequest& request) = 0;
  // Appends finished requests to `out`. With `wait`, blocks until at least one is available
  // (returns at once when nothing is in flight).
  virtual Result<void> reap(bool wait, std::vector<WriteCompletion>& out) = 0;
  // Asks the writer to signal `eventfd` (add to its counter) whenever a request completes
  // asynchronously, so that a caller waiting on something else (the network) wakes for it. A
  // writer that completes requests inside submit() has nothing to signal.
  virtual Result<void> notify_completions(int /*eventfd*/) { return {}; }
};

// pwrite + fdatasync in submit(); capacity 1.
std::unique_ptr<Writer> make_sync_writer();

// io_uring with `capacity` batches in flight. Fails with errc::unsupported (and the reason) when
// the kernel refuses io_uring (old kernel, seccomp, io_uring_disabled sysctl) or the build has no
// liburing.
Result<std::unique_ptr<Writer>> make_uring_writer(std::size_t capacity);

}  // namespace fastzab::log
