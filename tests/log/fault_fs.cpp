#include "tests/log/fault_fs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fastzab::log::testing {

class FaultFile final : public File {
 public:
  FaultFile(FaultFs& fs, std::shared_ptr<FaultFs::Inode> inode, std::string path)
      : fs_(fs), inode_(std::move(inode)), path_(std::move(path)) {}

  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> buf) override {
    const auto& d = inode_->data;
    if (offset >= d.size()) return std::size_t{0};
    const std::size_t n = std::min<std::size_t>(buf.size(), d.size() - offset);
    std::memcpy(buf.data(), d.data() + offset, n);
    return n;
  }
  Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
    if (auto r = fs_.take_write_fault(path_); !r) return r;
    FaultFs::Op op{false, offset, std::vector<std::byte>(data.begin(), data.end())};
    FaultFs::apply(inode_->data, op, op.bytes.size());
    inode_->unsynced.push_back(std::move(op));
    ++fs_.writes;
    fs_.bytes_written += data.size();
    return {};
  }
  Result<void> sync_data() override {
    if (auto r = fs_.take_sync_fault(path_); !r) return r;
    inode_->durable = inode_->data;
    inode_->unsynced.clear();
    ++fs_.syncs;
    return {};
  }
  Result<void> allocate(std::uint64_t offset, std::uint64_t len) override {
    if (fs_.fail_allocate_errno != 0) return fail_errno(fs_.fail_allocate_errno, path_ + ": fallocate");
    if (inode_->data.size() < offset + len) return resize(offset + len);
    return {};
  }
  Result<void> truncate(std::uint64_t size) override { return resize(size); }
  Result<std::uint64_t> size() override { return inode_->data.size(); }
  const std::string& path() const noexcept override { return path_; }

 private:
  Result<void> resize(std::uint64_t size) {
    FaultFs::Op op{true, size, {}};
    FaultFs::apply(inode_->data, op, 0);
    inode_->unsynced.push_back(std::move(op));
    return {};
  }
  FaultFs& fs_;
  std::shared_ptr<FaultFs::Inode> inode_;
  std::string path_;
};

void FaultFs::apply(std::vector<std::byte>& data, const Op& op, std::size_t keep_bytes) {
  if (op.resize) {
    data.resize(op.offset);
    return;
  }
  const std::size_t n = std::min(keep_bytes, op.bytes.size());
  if (data.size() < op.offset + n) data.resize(op.offset + n);
  std::memcpy(data.data() + op.offset, op.bytes.data(), n);
}

Result<void> FaultFs::take_write_fault(const std::string& path) {
  if (fail_write_after == 0) return fail_errno(write_errno, path + ": injected write failure");
  if (fail_write_after > 0) --fail_write_after;
  return {};
}
Result<void> FaultFs::take_sync_fault(const std::string& path) {
  if (fail_sync_after == 0) return fail_errno(sync_errno, path + ": injected sync failure");
  if (fail_sync_after > 0) --fail_sync_after;
  return {};
}

Result<std::unique_ptr<File>> FaultFs::open(const std::string& path, OpenMode mode) {
  auto it = names_.find(path);
  if (mode == OpenMode::read_write) {
    if (it == names_.end()) return fail_errno(ENOENT, path + ": open");
  } else {
    if (fail_create_errno != 0) return fail_errno(fail_create_errno, path + ": open");
    if (mode == OpenMode::create_exclusive && it != names_.end()) {
      return fail_errno(EEXIST, path + ": open");
    }
    if (it == names_.end() || mode == OpenMode::create_truncate) {
      auto inode = std::make_shared<Inode>();
      names_[path] = inode;
      it = names_.find(path);
    }
  }
  return std::unique_ptr<File>(new FaultFile(*this, it->second, path));
}

Result<void> FaultFs::rename(const std::string& from, const std::string& to) {
  auto it = names_.find(from);
  if (it == names_.end()) return fail_errno(ENOENT, "rename " + from);
  names_[to] = it->second;
  names_.erase(from);
  return {};
}

Result<void> FaultFs::remove(const std::string& path) {
  if (names_.erase(path) == 0) return fail_errno(ENOENT, path + ": unlink");
  return {};
}

Result<void> FaultFs::sync_dir(const std::string& dir) {
  if (dirs_.count(dir) == 0) return fail_errno(ENOENT, dir + ": open directory");
  if (auto r = take_sync_fault(dir); !r) return r;
  durable_names_ = names_;
  return {};
}

Result<void> FaultFs::make_dir(const std::string& dir) {
  if (fail_mkdir_errno != 0) return fail_errno(fail_mkdir_errno, dir + ": mkdir");
  dirs_.insert(dir);
  return {};
}

// Locks are per FaultFs, like flock() per machine; a crash() releases none (a process that
// crashed holds no descriptors: tests destroy the Log before they crash the file system).
Result<std::unique_ptr<FileSystem::Lock>> FaultFs::lock_dir(const std::string& dir) {
  class HeldLock final : public Lock {
   public:
    HeldLock(std::set<std::string>& held, std::string dir) : held_(held), dir_(std::move(dir)) {}
    ~HeldLock() override { held_.erase(dir_); }

   private:
    std::set<std::string>& held_;
    std::string dir_;
  };
  if (!locked_.insert(dir).second) {
    return fail(errc::in_use, dir + ": another process has this log open");
  }
  return std::unique_ptr<Lock>(new HeldLock(locked_, dir));
}

Result<std::vector<std::string>> FaultFs::list(const std::string& dir) {
  std::vector<std::string> out;
  const std::string prefix = dir + "/";
  for (const auto& [path, inode] : names_) {
    if (path.starts_with(prefix) && path.find('/', prefix.size()) == std::string::npos) {
      out.push_back(path.substr(prefix.size()));
    }
  }
  return out;
}

void FaultFs::crash(CrashMode mode) {
  names_ = durable_names_;
  std::set<Inode*> seen;
  for (auto& [path, inode] : names_) {
    if (!seen.insert(inode.get()).second) continue;
    std::vector<std::byte> d = inode->durable;
    const auto& ops = inode->unsynced;
    if (mode == CrashMode::prefix_and_tear && !ops.empty()) {
      const std::size_t keep = rng_() % (ops.size() + 1);
      for (std::size_t i = 0; i < keep; ++i) apply(d, ops[i], ops[i].bytes.size());
      if (keep < ops.size()) apply(d, ops[keep], rng_() % (ops[keep].bytes.size() + 1));
    } else if (mode == CrashMode::random_subset) {
      for (const Op& op : ops) {
        switch (rng_() % 3) {
          case 0: apply(d, op, op.bytes.size()); break;
          case 1: apply(d, op, rng_() % (op.bytes.size() + 1)); break;
          default: break;
        }
      }
    }
    inode->data = d;
    inode->durable = std::move(d);
    inode->unsynced.clear();
  }
  // Inodes no longer named are gone.
}

void FaultFs::flip_bit(const std::string& path, std::uint64_t offset, int bit) {
  auto& inode = *names_.at(path);
  const auto mask = static_cast<std::byte>(1u << bit);
  if (offset < inode.data.size()) inode.data[offset] ^= mask;
  if (offset < inode.durable.size()) inode.durable[offset] ^= mask;
}

std::vector<std::byte> FaultFs::contents(const std::string& path) const {
  return names_.at(path)->data;
}

std::size_t FaultFs::unsynced_writes(const std::string& path) const {
  auto it = names_.find(path);
  if (it == names_.end()) return 0;
  return static_cast<std::size_t>(std::count_if(it->second->unsynced.begin(),
                                                it->second->unsynced.end(),
                                                [](const Op& op) { return !op.resize; }));
}

void FaultFs::put(const std::string& path, std::vector<std::byte> bytes) {
  auto inode = std::make_shared<Inode>();
  inode->data = bytes;
  inode->durable = std::move(bytes);
  names_[path] = inode;
  durable_names_[path] = inode;
}

}  // namespace fastzab::log::testing
