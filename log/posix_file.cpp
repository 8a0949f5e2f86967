#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "log/file.h"

namespace fastzab::log {
namespace {

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> buf) override {
    std::size_t done = 0;
    while (done < buf.size()) {
      const ssize_t n = ::pread(fd_, buf.data() + done, buf.size() - done,
                                static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno(errno, path_ + ": read at offset " + std::to_string(offset + done));
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done,
                                 static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno(errno, path_ + ": write at offset " + std::to_string(offset + done));
      }
      if (n == 0) return fail_errno(EIO, path_ + ": write returned 0");
      done += static_cast<std::size_t>(n);
    }
    return {};
  }

  Result<void> sync_data() override {
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return fail_errno(errno, path_ + ": fdatasync");
    }
    return {};
  }

  Result<void> allocate(std::uint64_t offset, std::uint64_t len) override {
    int rc;
    do {
      rc = ::fallocate(fd_, 0, static_cast<off_t>(offset), static_cast<off_t>(len));
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return {};
    if (errno != EOPNOTSUPP) return fail_errno(errno, path_ + ": fallocate");
    // A file system without fallocate: extend with ftruncate (holes read back as zeros).
    auto sz = size();
    if (!sz) return std::unexpected(sz.error());
    if (*sz < offset + len) return truncate(offset + len);
    return {};
  }

  Result<void> truncate(std::uint64_t size_bytes) override {
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) {
      return fail_errno(errno, path_ + ": ftruncate to " + std::to_string(size_bytes));
    }
    return {};
  }

  Result<std::uint64_t> size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return fail_errno(errno, path_ + ": fstat");
    return static_cast<std::uint64_t>(st.st_size);
  }

  int native_fd() const noexcept override { return fd_; }
  const std::string& path() const noexcept override { return path_; }

 private:
  int fd_;
  std::string path_;
};

// flock() locks belong to the open file description: closing the descriptor releases it, and
// the kernel releases it when the process dies, so a crash never leaves a stale lock.
class FdLock final : public FileSystem::Lock {
 public:
  explicit FdLock(int fd) : fd_(fd) {}
  ~FdLock() override { ::close(fd_); }

 private:
  int fd_;
};

class PosixFs final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
    int flags = O_RDWR | O_CLOEXEC;
    if (mode == OpenMode::create_exclusive) flags |= O_CREAT | O_EXCL;
    if (mode == OpenMode::create_truncate) flags |= O_CREAT | O_TRUNC;
    int fd;
    do {
      fd = ::open(path.c_str(), flags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return fail_errno(errno, path + ": open");
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }

  Result<void> rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return fail_errno(errno, "rename " + from + " -> " + to);
    }
    return {};
  }

  Result<void> remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return fail_errno(errno, path + ": unlink");
    return {};
  }

  Result<void> sync_dir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail_errno(errno, dir + ": open directory");
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return fail_errno(err, dir + ": fsync directory");
    return {};
  }

  Result<void> make_dir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail_errno(errno, dir + ": mkdir");
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return fail_errno(errno, dir + ": stat");
    if (!S_ISDIR(st.st_mode)) return fail_errno(ENOTDIR, dir);
    return {};
  }

  Result<std::unique_ptr<Lock>> lock_dir(const std::string& dir) override {
    const std::string path = dir + "/lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail_errno(errno, path + ": open");
    int rc;
    do {
      rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return fail(errc::in_use, dir + ": another process has this log open (" + path +
                                      " is locked)");
      }
      return fail_errno(err, path + ": flock");
    }
    return std::unique_ptr<Lock>(new FdLock(fd));
  }

  Result<std::vector<std::string>> list(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return fail_errno(errno, dir + ": opendir");
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return fail_errno(err, dir + ": readdir");
    return names;
  }
};

}  // namespace

FileSystem& posix_fs() {
  static PosixFs fs;
  return fs;
}

}  // namespace fastzab::log
