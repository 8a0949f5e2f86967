// The few plain socket calls the transport makes outside the ring, all at start-up or once per
// connection (never per frame): resolving, listening, naming a connection's remote end.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "net/errc.h"

namespace fastzab::net {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const noexcept { return storage.ss_family; }
};

// "host:port" ("[v6]:port" for IPv6), as every error and log line names an endpoint.
std::string endpoint_name(std::string_view host, std::uint16_t port);

// The first address getaddrinfo gives for host:port (for listening when `passive`).
Result<SocketAddress> resolve(const std::string& host, std::uint16_t port, bool passive);

// A listening TCP socket bound to `address` (SO_REUSEADDR, so a restarted server can take its
// port back while old connections sit in TIME_WAIT). Returns the fd.
Result<int> listen_on(const SocketAddress& address, std::string_view name);

// The port a bound socket got (the ephemeral one when 0 was asked for).
Result<std::uint16_t> bound_port(int fd, std::string_view name);

// The remote end of a connected socket; nullopt when it is gone already.
std::optional<SocketAddress> remote_address(int fd);

// "127.0.0.1:40312" for an IPv4 or IPv6 address, "unknown peer" for anything else.
std::string address_name(const SocketAddress& address);

// "127.0.0.1:40312" for the remote end of a connected socket, "unknown peer" when it is gone.
std::string remote_name(int fd);

// An address's host without its port, as 16 bytes (IPv4 as ::ffff:a.b.c.d, so both families
// compare alike): what a bound per source address counts by.
using HostKey = std::array<unsigned char, 16>;
HostKey host_key(const SocketAddress& address) noexcept;

// Sets TCP_NODELAY: frames are batched per flush by the transport already, so Nagle's delay would
// only add latency.
void set_no_delay(int fd) noexcept;

}  // namespace fastzab::net
