#include "log/writer.h"

namespace fastzab::log {
namespace {

class SyncWriter final : public Writer {
 public:
  const char* name() const noexcept override { return "sync"; }
  std::size_t capacity() const noexcept override { return 1; }
  std::size_t in_flight() const noexcept override { return done_.size(); }

  Result<void> submit(const WriteRequest& r) override {
    Result<void> res = r.file->write_at(r.offset, r.data);
    if (res && r.sync) res = r.file->sync_data();
    done_.push_back(WriteCompletion{r.id, std::move(res)});
    return {};
  }

  Result<void> reap(bool /*wait*/, std::vector<WriteCompletion>& out) override {
    for (auto& c : done_) out.push_back(std::move(c));
    done_.clear();
    return {};
  }

 private:
  std::vector<WriteCompletion> done_;
};

}  // namespace

std::unique_ptr<Writer> make_sync_writer() { return std::make_unique<SyncWriter>(); }

}  // namespace fastzab::log
