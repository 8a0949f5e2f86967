// Errors of the log, as values (style practice 14): an errc per kind of failure, a message per
// value, and an Error that adds what the caller needs to act on it (the file, the offset, errno).
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace fastzab::log {

enum class errc : std::uint8_t {
  io_error = 1,       // a read, write, sync or directory operation failed (errno in Error)
  no_space,           // ENOSPC / EDQUOT: the disk is full
  not_a_log,          // wrong magic: the file is not a fastzab log, snapshot or epoch file
  bad_version,        // a format version this build does not read
  wrong_cluster,      // the file belongs to another cluster id
  corrupt,            // a bad record before the tail (or in a snapshot / epoch file)
  poisoned,           // an earlier write or sync failed; the log refuses further writes
  invalid_argument,   // zxid not increasing, record too large, bad option
  unsupported,        // the kernel or build lacks what was asked for (io_uring)
  not_found,          // no such record / snapshot
  in_use,             // another process (or Log) holds the directory's lock
};

const char* message(errc e) noexcept;

struct Error {
  errc code = errc::io_error;
  int sys_errno = 0;    // errno for io_error / no_space, else 0
  std::string detail;   // "<file>: <what>" or "<file> at offset N: <what>"

  std::string to_string() const;  // "<errc message>: <detail> (<strerror>)"
};

template <class T>
using Result = std::expected<T, Error>;

// Helpers for building errors at the point of failure.
std::unexpected<Error> fail(errc code, std::string detail);
// Maps errno to io_error or no_space, and appends strerror to the detail.
std::unexpected<Error> fail_errno(int err, std::string detail);

// Invariants of the log's own bookkeeping (never of bytes read: those are errors). Checked in
// every build: prints where and what, then aborts.
[[noreturn]] void assertion_failed(const char* file, int line, const char* expr) noexcept;
#define FASTZAB_LOG_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::fastzab::log::assertion_failed(__FILE__, __LINE__, #expr))

}  // namespace fastzab::log
