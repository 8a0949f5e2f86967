// The file layer the log does all its I/O through. Production uses posix_fs(); the tests put a
// fault-injecting layer here (lost unsynced writes, torn writes, bit flips, EIO/ENOSPC).
// Every operation returns errors as values; a short write is completed or reported, never
// returned as success.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "log/errc.h"

struct iovec;

namespace fastzab::log {

class File {
 public:
  virtual ~File() = default;
  // Reads up to buf.size() bytes at `offset`; fewer only at end of file.
  virtual Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> buf) = 0;
  // Writes all of `data` at `offset`.
  virtual Result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) = 0;
  // fdatasync (the file's data and the metadata needed to read it back).
  virtual Result<void> sync_data() = 0;
  // Ensures [offset, offset+len) is allocated (and the file at least that long) with zeros.
  virtual Result<void> allocate(std::uint64_t offset, std::uint64_t len) = 0;
  virtual Result<void> truncate(std::uint64_t size) = 0;
  virtual Result<std::uint64_t> size() = 0;
  // The kernel descriptor, for writers that submit I/O themselves (io_uring); -1 when there is
  // none (an in-memory file), and such writers refuse the file.
  virtual int native_fd() const noexcept { return -1; }
  virtual const std::string& path() const noexcept = 0;
};

enum class OpenMode : std::uint8_t {
  read_write,         // existing file
  create_exclusive,   // new file; fails if it exists
  create_truncate,    // new or emptied file
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;
  virtual Result<void> rename(const std::string& from, const std::string& to) = 0;
  virtual Result<void> remove(const std::string& path) = 0;
  // Makes renames, creations and removals in `dir` durable.
  virtual Result<void> sync_dir(const std::string& dir) = 0;
  // Creates `dir` (not its parents) if it does not exist.
  virtual Result<void> make_dir(const std::string& dir) = 0;
  // The names in `dir` (no "." or "..").
  virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;
  // Takes the exclusive lock of `dir` (an advisory lock on `dir`/lock, held until the returned
  // object is destroyed). errc::in_use, at once, when another holder has it: two logs writing
  // one directory would corrupt each other.
  class Lock {
   public:
    virtual ~Lock() = default;
  };
  virtual Result<std::unique_ptr<Lock>> lock_dir(const std::string& dir) = 0;
};

// The real file system (POSIX calls; EINTR retried, short writes completed).
FileSystem& posix_fs();

}  // namespace fastzab::log
