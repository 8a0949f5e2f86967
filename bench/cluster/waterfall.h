// The commit waterfall: where one write's commit time goes, stage by stage, from the servers'
// commit traces (the `trce` four-letter word of a cluster run with `trace=on`; the line format is
// in engine/cmd/README.md) and, optionally, the benchmark client's own send and receive times.
//
// Everything here is a pure function of its arguments. The `trce` text comes from the network and
// is parsed as untrusted: every field is checked, and a bad line is an error naming it.
//
// The join: lines are grouped by (group, zxid) across servers. A write counts when the leader's
// line (role=leader) and the line of the server the client wrote to (the one with `sock_read`)
// are both there. Its follower stages are those of ONE follower: the one whose ACK completed the
// quorum (the leader's `quorum=N`); when the leader's own fdatasync completed it (quorum = the
// leader), the follower whose ACK the leader received first. Each row of the result is the
// duration from the stage before it on that write's path (rows marked parallel are off the
// critical path: the leader's own log write runs while the followers do theirs), as p50 and p90
// over the writes that have both stamps.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/runtime/trace.h"

namespace fastzab::bench {

// One line of a `trce` answer.
struct TraceLine {
  std::uint64_t zxid = 0;
  std::uint64_t server = 0;
  std::uint32_t group = 0;
  runtime::trace::Role role = runtime::trace::Role::none;
  std::array<std::uint64_t, runtime::trace::kStageCount> ns{};  // CLOCK_MONOTONIC ns; 0: absent
  std::vector<runtime::trace::Ack> acks;  // the leader's: each follower's ACK as received
  std::uint64_t quorum = 0;               // the leader's: whose durability completed the quorum

  std::uint64_t at(runtime::trace::Stage s) const noexcept {
    return ns[static_cast<std::size_t>(s)];
  }
};

// At most this many ACKs on one line (a server keeps runtime::trace::kMaxAcks).
inline constexpr std::size_t kMaxParsedAcks = 64;

// Parses one server's `trce` answer. Blank lines are skipped; the answer of a server with
// tracing off ("trace is off ...") is an error, as is any malformed line
// ("line 3: zxid: 'x1' is not 0x followed by hex digits").
std::expected<std::vector<TraceLine>, std::string> parse_trce(std::string_view answer);

// The benchmark client's stamps of one write (CLOCK_MONOTONIC ns, as clock_gettime and Python's
// time.monotonic_ns give them): request sent, reply received, and the zxid from its write_ok.
struct ClientWrite {
  std::uint64_t zxid = 0;
  std::uint64_t send_ns = 0;
  std::uint64_t recv_ns = 0;
};

struct WaterfallRow {
  std::string stage;  // "<who> <stage>": who is client, leader, follower (the quorum follower)
                      // or entry (the follower the client wrote to)
  std::string from;   // the stage the duration is measured from
  bool parallel = false;  // off the critical path
  bool total = false;     // a whole span (client send to receive, server read to write)
  std::size_t samples = 0;
  std::int64_t p50_ns = 0;  // nearest-rank percentiles; may be negative only across clocks
  std::int64_t p90_ns = 0;  // that disagree (never on one host)
};

// One path: writes sent to the leader, or writes sent to a follower (forwarded to the leader).
struct WaterfallSection {
  std::string title;
  std::size_t writes = 0;
  std::size_t quorum_by_leader_disk = 0;  // commits completed by the leader's own fdatasync
  std::vector<WaterfallRow> rows;
};

struct Waterfall {
  std::vector<WaterfallSection> sections;  // only paths some write took
  std::size_t zxids_seen = 0;   // distinct (group, zxid) in the answers
  std::size_t unjoined = 0;     // of them, without a leader line or without a client-facing line
  std::size_t client_matched = 0;  // client stamps joined to a write
};

// Parses every answer (one per server; any order) and joins them with the client's stamps.
// Errors: a bad answer ("answer 2: line 7: ..."), or two lines of one server for one zxid.
std::expected<Waterfall, std::string> compute_waterfall(
    std::span<const std::string> trce_answers, std::span<const ClientWrite> client = {});

// The waterfall as a text table, times in microseconds.
std::string format_waterfall(const Waterfall& w);

}  // namespace fastzab::bench
