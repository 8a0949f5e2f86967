// The log's two policies, as small types the configuration can name without the whole log
// interface (engine/runtime/config.h uses them for zoo.cfg's `sync` and `logRecovery` keys).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace fastzab::log {

enum class SyncMode : std::uint8_t {
  fdatasync,  // default: a batch is durable once its fdatasync returned
  none,       // no fdatasync per batch (durability from replicas only); "durable" = written to
              // the OS. Segments are still synced when the log moves to the next one.
};

// What open() does with a record that fails its checks (FORMAT.md, "Recovery"). The names
// to_string() gives ("cut_torn_tail", "truncate_at_corruption") are the ones
// parse_recovery_mode() accepts, for a configuration key.
enum class RecoveryMode : std::uint8_t {
  // Default. A bad record that can only be a torn write (in the last segment, within its tail
  // window, and below no offset a later record says was synced) is cut; a bad record anywhere
  // else is corruption and open() fails with errc::corrupt naming the file and offset and how
  // to select truncate_at_corruption. Acknowledged records are never dropped.
  cut_torn_tail,
  // The operator's choice after such a failure: cut the log at the first bad record wherever it
  // is (later segments too). Records after it may have been acknowledged, so the node must not
  // vote before it has fetched them from its peers. RecoveryReport says what was cut.
  truncate_at_corruption,
};

const char* to_string(SyncMode m) noexcept;      // "fdatasync", "none"
const char* to_string(RecoveryMode m) noexcept;  // "cut_torn_tail", "truncate_at_corruption"
// "cut_torn_tail" or "truncate_at_corruption" (to_string's names); nullopt for anything else.
std::optional<RecoveryMode> parse_recovery_mode(std::string_view name) noexcept;

}  // namespace fastzab::log
