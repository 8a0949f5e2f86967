// A fault-injecting, in-memory FileSystem for the log tests (style: leveldb's
// fault_injection_test). Each file keeps the bytes a crash would leave (durable) and the writes
// since its last sync; directory entries become durable only at sync_dir. crash() throws away
// what was never synced, optionally keeping a random prefix of the unsynced writes and tearing
// the next one at a random byte, all from the seed. Writes and syncs can be made to fail with
// any errno after a countdown; bits can be flipped in place.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "log/file.h"

namespace fastzab::log::testing {

enum class CrashMode : std::uint8_t {
  drop_unsynced,     // nothing unsynced survives
  prefix_and_tear,   // a random prefix of the unsynced writes survives, the next one torn
  random_subset,     // each unsynced write survives, is torn or is lost independently
};

class FaultFs final : public FileSystem {
 public:
  explicit FaultFs(std::uint64_t seed) : rng_(seed) {}

  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
  Result<void> rename(const std::string& from, const std::string& to) override;
  Result<void> remove(const std::string& path) override;
  Result<void> sync_dir(const std::string& dir) override;
  Result<void> make_dir(const std::string& dir) override;
  Result<std::vector<std::string>> list(const std::string& dir) override;
  Result<std::unique_ptr<Lock>> lock_dir(const std::string& dir) override;

  // Faults. A countdown of n lets n more calls succeed; -1 disables.
  int fail_write_after = -1;
  int write_errno = EIO;
  int fail_sync_after = -1;
  int sync_errno = EIO;
  int fail_allocate_errno = 0;  // non-zero: every allocate fails with it
  int fail_mkdir_errno = 0;     // non-zero: make_dir fails with it
  int fail_create_errno = 0;    // non-zero: creating files fails with it

  void crash(CrashMode mode);
  bool exists(const std::string& path) const { return names_.count(path) != 0; }
  // Flips one bit in the file as it is now and as a crash would leave it.
  void flip_bit(const std::string& path, std::uint64_t offset, int bit);
  std::vector<std::byte> contents(const std::string& path) const;
  // Writes to `path` since its last sync: what a crash now may keep, tear or lose. An in-place
  // overwrite is torn like an append: a prefix of the new bytes over the durable old ones.
  std::size_t unsynced_writes(const std::string& path) const;
  void put(const std::string& path, std::vector<std::byte> bytes);  // durable file
  std::uint64_t writes = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t syncs = 0;

  struct Op {
    bool resize = false;
    std::uint64_t offset = 0;  // write offset, or the new size for a resize
    std::vector<std::byte> bytes;
  };
  struct Inode {
    std::vector<std::byte> data;
    std::vector<std::byte> durable;
    std::vector<Op> unsynced;
  };

 private:
  friend class FaultFile;
  Result<void> take_write_fault(const std::string& path);
  Result<void> take_sync_fault(const std::string& path);
  static void apply(std::vector<std::byte>& data, const Op& op, std::size_t keep_bytes);

  std::mt19937_64 rng_;
  std::map<std::string, std::shared_ptr<Inode>> names_;
  std::map<std::string, std::shared_ptr<Inode>> durable_names_;
  std::set<std::string> dirs_;
  std::set<std::string> locked_;  // directories whose lock is held
};

}  // namespace fastzab::log::testing
