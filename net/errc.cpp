#include "net/errc.h"

#include <cstring>

namespace fastzab::net {

const char* message(errc e) noexcept {
  switch (e) {
    case errc::invalid_config: return "invalid transport configuration";
    case errc::bad_address: return "bad address";
    case errc::socket_error: return "socket error";
    case errc::unsupported: return "unsupported by this kernel";
    case errc::ring_error: return "io_uring error";
    case errc::crypto_error: return "libsodium error";
    case errc::dpdk_error: return "DPDK error";
  }
  return "unknown net error";
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

std::unexpected<Error> fail_errno(errc code, int err, std::string detail) {
  detail += " (";
  detail += std::strerror(err);
  detail += ")";
  return std::unexpected(Error{code, err, std::move(detail)});
}

}  // namespace fastzab::net
