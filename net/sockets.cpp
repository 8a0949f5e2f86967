#include "net/sockets.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fastzab::net {

std::string endpoint_name(std::string_view host, std::uint16_t port) {
  std::string name;
  const bool v6 = host.find(':') != std::string_view::npos;
  if (v6) name += '[';
  name += host;
  if (v6) name += ']';
  name += ':';
  name += std::to_string(port);
  return name;
}

Result<SocketAddress> resolve(const std::string& host, std::uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) {
    return fail(errc::bad_address,
                endpoint_name(host, port) + ": cannot resolve: " + gai_strerror(rc));
  }
  SocketAddress address;
  std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
  address.length = found->ai_addrlen;
  freeaddrinfo(found);
  return address;
}

Result<int> listen_on(const SocketAddress& address, std::string_view name) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno(errc::socket_error, errno, std::string(name) + ": socket");
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    const int err = errno;
    ::close(fd);
    return fail_errno(errc::socket_error, err, std::string(name) + ": SO_REUSEADDR");
  }
  if (::bind(fd, address.get(), address.length) != 0) {
    const int err = errno;
    ::close(fd);
    return fail_errno(errc::socket_error, err, std::string(name) + ": bind");
  }
  constexpr int kBacklog = 128;
  if (::listen(fd, kBacklog) != 0) {
    const int err = errno;
    ::close(fd);
    return fail_errno(errc::socket_error, err, std::string(name) + ": listen");
  }
  return fd;
}

Result<std::uint16_t> bound_port(int fd, std::string_view name) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return fail_errno(errc::socket_error, errno, std::string(name) + ": getsockname");
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

std::optional<SocketAddress> remote_address(int fd) {
  SocketAddress address;
  address.length = sizeof address.storage;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0) {
    return std::nullopt;
  }
  return address;
}

std::string address_name(const SocketAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    return endpoint_name(text, ntohs(v6->sin6_port));
  }
  if (address.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address.storage);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    return endpoint_name(text, ntohs(v4->sin_port));
  }
  return "unknown peer";
}

std::string remote_name(int fd) {
  const auto address = remote_address(fd);
  return address ? address_name(*address) : "unknown peer";
}

HostKey host_key(const SocketAddress& address) noexcept {
  HostKey key{};
  if (address.family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    std::memcpy(key.data(), &v6->sin6_addr, key.size());
  } else if (address.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address.storage);
    key[10] = 0xFF;
    key[11] = 0xFF;
    std::memcpy(key.data() + 12, &v4->sin_addr, 4);
  }
  return key;
}

void set_no_delay(int fd) noexcept {
  const int one = 1;
  // Best effort: a socket without it still works, only slower.
  static_cast<void>(::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
}

}  // namespace fastzab::net
