// Every bound of the core in one place, with the relations between them checked at compile time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quorum.h"

namespace fastzab::core {

// The largest frame the codec accepts (a SNAP carries a whole snapshot).
inline constexpr std::size_t kMaxFrameBytes = 64u << 20;
// The largest client entry.
inline constexpr std::size_t kMaxEntryBytes = 1u << 20;
// The most entries in one PROPOSAL/INFORM batch.
inline constexpr std::size_t kMaxBatchEntries = 4096;
// Notification config text (ZooKeeper bounds the whole election frame at 512 KiB).
inline constexpr std::size_t kMaxConfigBytes = 512u << 10;
// ZooKeeper's learner protocol version (LEADERINFO, LearnerInfo).
inline constexpr std::int32_t kLearnerProtocolVersion = 0x10000;
// Notification format version sent by fastzab (reference §2.10).
inline constexpr std::int32_t kNotificationVersion = 2;
// The longest duration a NodeConfig may hold, in ticks (about 12 days at a 1 ms tick). Tick
// counters are 32-bit and count one past a limit, and the notification back-off doubles.
inline constexpr std::int32_t kMaxDurationTicks = (1 << 30) - 1;

static_assert(kMaxEntryBytes < kMaxFrameBytes);
static_assert(kMaxConfigBytes < kMaxFrameBytes);
static_assert(kMaxMembers <= 64, "MemberSet is a 64-bit set");
static_assert(kMaxDurationTicks <= INT32_MAX / 2, "a doubled back-off fits an int32");

}  // namespace fastzab::core
