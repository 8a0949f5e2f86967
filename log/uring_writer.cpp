// The io_uring writer (style practice 13): per batch one write SQE linked to one fdatasync SQE and
// one io_uring_submit (a request without sync, i.e. sync=none, is written with a plain pwrite
// in submit() and completes at once: no ring round trip per flush); up to `capacity` batches in flight; completions reaped by waiting for one
// and then peeking the rest. -EAGAIN requeues the batch; a short write resubmits the rest (with
// its fdatasync); any other error completes the batch with the errno converted to an Error.
#include <liburing.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "log/writer.h"

namespace fastzab::log {
namespace {

constexpr std::uint64_t kSyncBit = 1;  // user_data = slot << 1 | (1 for the fdatasync SQE)

class UringWriter final : public Writer {
 public:
  explicit UringWriter(std::size_t capacity) : slots_(capacity) {}
  ~UringWriter() override {
    if (ready_) io_uring_queue_exit(&ring_);
  }
  UringWriter(const UringWriter&) = delete;
  UringWriter& operator=(const UringWriter&) = delete;

  Result<void> init() {
    // Two SQEs per batch, and room to resubmit every batch at once.
    const unsigned entries = static_cast<unsigned>(2 * slots_.size());
    const int rc = io_uring_queue_init(entries, &ring_, 0);
    if (rc < 0) {
      return fail(errc::unsupported,
                  std::string("io_uring_queue_init failed: ") + std::strerror(-rc) +
                      (rc == -ENOSYS ? " (kernel without io_uring)"
                       : rc == -EPERM ? " (io_uring disabled by sysctl or seccomp)"
                                      : ""));
    }
    ready_ = true;
    return {};
  }

  const char* name() const noexcept override { return "io_uring"; }

  Result<void> notify_completions(int eventfd) override {
    const int rc = io_uring_register_eventfd(&ring_, eventfd);
    if (rc < 0) return fail_errno(-rc, "io_uring_register_eventfd");
    return {};
  }
  std::size_t capacity() const noexcept override { return slots_.size(); }
  std::size_t in_flight() const noexcept override { return busy_; }

  Result<void> submit(const WriteRequest& r) override {
    if (r.file == nullptr || r.file->native_fd() < 0) {
      return fail(errc::unsupported, "the io_uring writer needs a kernel file descriptor");
    }
    if (!r.sync) {
      // sync=none: the request is done once the bytes are in the page cache, which a plain
      // pwrite achieves in the caller's thread. A ring round trip would only add a wake-up of
      // an io-wq worker (buffered writes are punted to one) and a wait for it, per flush.
      // It is reaped (like the sync writer's) by the next reap().
      finished_.push_back(WriteCompletion{r.id, r.file->write_at(r.offset, r.data)});
      return {};
    }
    std::size_t i = 0;
    while (i < slots_.size() && slots_[i].used) ++i;
    if (i == slots_.size()) return fail(errc::invalid_argument, "io_uring writer is full");
    Slot& s = slots_[i];
    s = Slot{};
    s.used = true;
    s.req = r;
    ++busy_;
    if (auto q = queue(i); !q) {
      s.used = false;
      --busy_;
      return q;
    }
    return flush_sq();
  }

  Result<void> reap(bool wait, std::vector<WriteCompletion>& out) override {
    for (auto& c : finished_) out.push_back(std::move(c));
    finished_.clear();
    if (busy_ == 0) return {};
    bool waited = !wait || !out.empty();
    while (true) {
      io_uring_cqe* cqe = nullptr;
      int rc = waited ? io_uring_peek_cqe(&ring_, &cqe) : io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR) continue;
      if (rc == -EAGAIN || cqe == nullptr) break;
      if (rc < 0) return fail_errno(-rc, "io_uring_wait_cqe");
      const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      if (auto h = handle(static_cast<std::size_t>(ud >> 1), (ud & kSyncBit) != 0, res); !h) {
        return h;
      }
      for (auto& c : finished_) out.push_back(std::move(c));
      if (!finished_.empty()) waited = true;
      finished_.clear();
      // A requeued write or sync must reach the kernel before we wait for it.
      if (io_uring_sq_ready(&ring_) > 0) {
        if (auto f = flush_sq(); !f) return f;
      }
    }
    return flush_sq();
  }

 private:
  struct Slot {
    bool used = false;
    WriteRequest req;
    std::size_t written = 0;  // bytes of req.data known to be written
    int outstanding = 0;      // SQEs of this slot not completed yet
    bool retry = false;       // the write must be (re)submitted
    bool synced = false;      // an fdatasync after the last write succeeded
    std::optional<Error> error;
  };

  // Queues the rest of slot i's write (linked to an fdatasync if asked), or only the fdatasync.
  Result<void> queue(std::size_t i) {
    Slot& s = slots_[i];
    const int fd = s.req.file->native_fd();
    s.retry = false;
    s.synced = false;
    if (s.written < s.req.data.size()) {
      io_uring_sqe* w = io_uring_get_sqe(&ring_);
      if (w == nullptr) return fail(errc::io_error, "io_uring submission queue full");
      const std::size_t left = s.req.data.size() - s.written;
      io_uring_prep_write(w, fd, s.req.data.data() + s.written, static_cast<unsigned>(left),
                          s.req.offset + s.written);
      io_uring_sqe_set_data64(w, static_cast<std::uint64_t>(i) << 1);
      if (s.req.sync) w->flags |= IOSQE_IO_LINK;
      ++s.outstanding;
    }
    if (s.req.sync) {
      io_uring_sqe* f = io_uring_get_sqe(&ring_);
      if (f == nullptr) return fail(errc::io_error, "io_uring submission queue full");
      io_uring_prep_fsync(f, fd, IORING_FSYNC_DATASYNC);
      io_uring_sqe_set_data64(f, (static_cast<std::uint64_t>(i) << 1) | kSyncBit);
      ++s.outstanding;
    }
    return {};
  }

  Result<void> flush_sq() {
    while (io_uring_sq_ready(&ring_) > 0) {
      const int rc = io_uring_submit(&ring_);
      if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
        // Completions must be reaped before the kernel takes more: wait for one.
        io_uring_cqe* cqe = nullptr;
        const int w = io_uring_wait_cqe(&ring_, &cqe);
        if (w == 0 && cqe != nullptr) {
          const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
          const int res = cqe->res;
          io_uring_cqe_seen(&ring_, cqe);
          if (auto h = handle(static_cast<std::size_t>(ud >> 1), (ud & kSyncBit) != 0, res); !h) {
            return h;
          }
        }
        continue;
      }
      if (rc < 0) return fail_errno(-rc, "io_uring_submit");
    }
    return {};
  }

  Result<void> handle(std::size_t i, bool is_sync, int res) {
    if (i >= slots_.size() || !slots_[i].used) {
      return fail(errc::io_error, "io_uring completion for an unknown request");
    }
    Slot& s = slots_[i];
    --s.outstanding;
    const std::string& path = s.req.file->path();
    if (!is_sync) {
      if (res == -EAGAIN || res == -EINTR) {
        s.retry = true;
      } else if (res < 0) {
        if (!s.error) {
          s.error = fail_errno(-res, path + ": io_uring write at offset " +
                                         std::to_string(s.req.offset + s.written)).error();
        }
      } else if (res == 0 && s.written < s.req.data.size()) {
        if (!s.error) s.error = fail_errno(EIO, path + ": io_uring write returned 0").error();
      } else {
        s.written += static_cast<std::size_t>(res);
        if (s.written < s.req.data.size()) s.retry = true;  // short write: the rest again
      }
    } else {
      if (res == -ECANCELED && (s.retry || s.error)) {
        // The link was cut by the write's failure or shortness: handled with the write.
      } else if (res == -EAGAIN || res == -EINTR) {
        s.retry = true;
      } else if (res < 0) {
        if (!s.error) s.error = fail_errno(-res, path + ": io_uring fdatasync").error();
      } else if (s.written == s.req.data.size()) {
        s.synced = true;
      } else {
        s.retry = true;  // a sync that ran after a short write covers nothing we need
      }
    }
    if (s.outstanding > 0) return {};
    if (s.error) return complete(i, std::unexpected(*s.error));
    if (s.written < s.req.data.size() || (s.req.sync && !s.synced)) {
      return queue(i);  // the rest of the write and/or the sync; flush_sq() submits it
    }
    return complete(i, {});
  }

  Result<void> complete(std::size_t i, Result<void> result) {
    finished_.push_back(WriteCompletion{slots_[i].req.id, std::move(result)});
    slots_[i].used = false;
    --busy_;
    return {};
  }

  io_uring ring_{};
  bool ready_ = false;
  std::vector<Slot> slots_;
  std::size_t busy_ = 0;
  std::vector<WriteCompletion> finished_;
};

}  // namespace

Result<std::unique_ptr<Writer>> make_uring_writer(std::size_t capacity) {
  if (capacity == 0 || capacity > 1024) {
    return fail(errc::invalid_argument, "io_uring writer capacity must be in [1, 1024]");
  }
  auto w = std::make_unique<UringWriter>(capacity);
  if (auto r = w->init(); !r) return std::unexpected(r.error());
  return std::unique_ptr<Writer>(std::move(w));
}

}  // namespace fastzab::log
