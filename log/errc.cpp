#include "log/errc.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fastzab::log {

const char* message(errc e) noexcept {
  switch (e) {
    case errc::io_error: return "I/O error";
    case errc::no_space: return "no space left on the device";
    case errc::not_a_log: return "not a fastzab log file (bad magic)";
    case errc::bad_version: return "unsupported format version";
    case errc::wrong_cluster: return "file belongs to another cluster";
    case errc::corrupt: return "corrupt record";
    case errc::poisoned: return "log is poisoned by an earlier write or sync failure";
    case errc::invalid_argument: return "invalid argument";
    case errc::unsupported: return "unsupported";
    case errc::not_found: return "not found";
    case errc::in_use: return "the log directory is in use";
  }
  return "unknown log error";
}

std::string Error::to_string() const {
  std::string s = message(code);
  if (!detail.empty()) {
    s += ": ";
    s += detail;
  }
  return s;
}

std::unexpected<Error> fail(errc code, std::string detail) {
  return std::unexpected(Error{code, 0, std::move(detail)});
}

std::unexpected<Error> fail_errno(int err, std::string detail) {
  const errc code = (err == ENOSPC || err == EDQUOT) ? errc::no_space : errc::io_error;
  detail += " (";
  detail += std::strerror(err);
  detail += ")";
  return std::unexpected(Error{code, err, std::move(detail)});
}

void assertion_failed(const char* file, int line, const char* expr) noexcept {
  std::fprintf(stderr, "fastzab log: assertion failed at %s:%d: %s\n", file, line, expr);
  std::abort();
}

}  // namespace fastzab::log
