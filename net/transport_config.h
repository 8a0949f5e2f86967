// The checks a TransportConfig must pass before a transport opens with it.
#pragma once

#include <cstdint>

#include "net/errc.h"
#include "net/transport.h"

namespace fastzab::net {

inline constexpr std::uint32_t kMaxFrameBytesLimit = std::uint32_t{1} << 30;
inline constexpr std::uint32_t kMaxRecvBuffers = 1u << 15;  // the ring's buffer ids are 16 bits

// errc::invalid_config, saying which setting is wrong, or nothing.
Result<void> validate_config(const TransportConfig& c);

}  // namespace fastzab::net
