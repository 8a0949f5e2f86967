// Errors of the transport, as values (style practice 14): an errc per kind of failure, a message
// per value, and an Error that adds what the caller needs to act on it (host:port, errno).
#pragma once

#include <cstdint>
#include <expected>
#include <string>

namespace fastzab::net {

enum class errc : std::uint8_t {
  invalid_config = 1,  // a TransportConfig that cannot work (duplicate peer ids, self in peers...)
  bad_address,         // a host that does not resolve, or a port that cannot be used
  socket_error,        // socket/bind/listen failed (errno in Error)
  unsupported,         // the kernel lacks what the transport needs (io_uring, buffer rings)
  ring_error,          // io_uring_enter failed in a way the transport cannot recover from
  crypto_error,        // libsodium could not be initialised
  dpdk_error,          // DPDK refused: the EAL's arguments, a missing port, a pool, a queue
};

const char* message(errc e) noexcept;

struct Error {
  errc code = errc::socket_error;
  int sys_errno = 0;   // errno for socket_error / unsupported / ring_error, else 0
  std::string detail;  // names what failed, with host:port where there is one

  std::string to_string() const;  // "<errc message>: <detail>"
};

template <class T>
using Result = std::expected<T, Error>;

std::unexpected<Error> fail(errc code, std::string detail);
// Appends strerror(err) to the detail and keeps err in sys_errno.
std::unexpected<Error> fail_errno(errc code, int err, std::string detail);

}  // namespace fastzab::net
