// zoo.cfg parsing. One pass over the lines checks each line on its own (syntax, ranges,
// duplicates); a second step checks what spans lines (required keys, addresses, groups and
// weights against the server list) and builds the core's ClusterConfig, whose own checks then
// apply too. The first problem found is the error, so that an operator reads one line.
#include "engine/runtime/config.h"

#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "engine/core/constants.h"

namespace fastzab::runtime {

const char* to_string(Transport t) noexcept { return t == Transport::uring ? "uring" : "dpdk"; }

namespace {

constexpr std::uint64_t kInt32Max = std::numeric_limits<std::int32_t>::max();
constexpr std::uint64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::uint64_t kUint64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kUint32Max = std::numeric_limits<std::uint32_t>::max();
constexpr std::string_view kWhitespace = " \t\r\n\f\v";
constexpr std::string_view kServerForm = "host:quorumPort:electionPort[:participant|:observer]";

// The keys this parser reads. Prefixed keys are listed with their prefix.
constexpr std::array<std::string_view, 32> kPlainKeys = {
    "tickTime", "initLimit", "syncLimit",  "dataDir",    "clientPort", "transport",   "poll",
    "dpdkEal",  "dpdkMemifDir",
    "sync",     "groups",    "secretFile", "clusterId", "snapCount",  "preAllocSize", "trace",
    "cpus",     "logRecovery",
    // Protocol timing in milliseconds (check_timing).
    "tickResolutionMs", "electionFinalizeWaitMs", "electionNotificationMaxMs",
    "learnerHelloRetryMs", "heartbeatMs", "leaderSilenceMs", "transferTimeoutMs",
    // The client port's limits (README.md "Client port limits").
    "maxClientCnxns", "maxCnxns", "clientOutputLimitBytes", "clientOutstandingLimit",
    "globalOutstandingLimit",
    "clientInputBudgetBytes", "clientTimeoutMs"};
// The finest tick: a second is coarser than any protocol timer worth counting with it.
constexpr std::uint64_t kMaxTickResolutionMs = 1000;
// Defaults of heartbeatMs and leaderSilenceMs, when tickTime and syncLimit do not make them
// shorter: ZooKeeper's tickTime/2 and syncLimit*tickTime, capped so that they do not grow with
// tickTime (README.md "Timing").
constexpr std::uint64_t kHeartbeatCapMs = 100;
// tickResolutionMs when the file does not set it: as coarse as the timers the file sets allow, up
// to this. Every tick wakes the group thread; at 1 ms that cost 24 % more CPU per commit at
// window 1 on a 3-server loopback cluster (scripts/perf-regress, cluster suite), and no
// default timer needs finer than 5 ms.
constexpr std::uint32_t kDefaultTickResolutionCapMs = 5;
constexpr std::uint64_t kLeaderSilenceCapMs = 2000;
constexpr std::array<std::pair<std::string_view, PollMode>, 3> kPollModes = {
    {{"busy", PollMode::busy}, {"adaptive", PollMode::adaptive}, {"blocking", PollMode::blocking}}};
constexpr std::array<std::string_view, 4> kPrefixes = {"server", "group", "weight", "dpdkPeer"};

// ZooKeeper settings a ZooKeeper zoo.cfg may hold that fastzab does not use. They get a warning
// that says so rather than "unknown key"; a few get a pointer to what fastzab does instead.
struct ZooKeeperOnlyKey {
  std::string_view key;
  std::string_view hint;
};
constexpr std::array<ZooKeeperOnlyKey, 19> kZooKeeperOnlyKeys = {{
    {"dataLogDir", "fastzab keeps its log in dataDir"},
    {"forceSync", "use sync=fdatasync|none"},
    {"peerType", "the :observer suffix of the server.N line decides"},
    {"clientPortAddress", ""},
    {"secureClientPort", ""},
    {"minSessionTimeout", ""},
    {"maxSessionTimeout", ""},
    {"globalOutstandingLimit", ""},
    {"autopurge.snapRetainCount", ""},
    {"autopurge.purgeInterval", ""},
    {"4lw.commands.whitelist", ""},
    {"admin.enableServer", ""},
    {"admin.serverPort", ""},
    {"standaloneEnabled", ""},
    {"reconfigEnabled", ""},
    {"dynamicConfigFile", ""},
    {"electionAlg", ""},
    {"quorumListenOnAllIPs", ""},
    {"metricsProvider.className", ""},
}};

std::string_view trim(std::string_view s) {
  const std::size_t first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const std::size_t last = s.find_last_not_of(kWhitespace);
  return s.substr(first, last - first + 1);
}

// Built by appending, not as "'" + std::string(s) + "'": GCC 12 at -O3 reports a false
// -Wrestrict inside the operator+ chain (GCC bug 105329).
std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

char fold_case(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// The longest name a key is compared with (kPlainKeys, kPrefixes), plus room for the two edits
// looks_like allows: typo_distance keeps its rows on the stack, sized by this.
constexpr std::size_t kMaxComparedName = 40;
constexpr bool names_fit(const auto& names) {
  for (std::string_view n : names) {
    if (n.size() + 2 > kMaxComparedName) return false;
  }
  return true;
}
static_assert(names_fit(kPlainKeys) && names_fit(kPrefixes), "raise kMaxComparedName");

// Edit distance with adjacent transpositions (a typo's usual shapes), without regard to case,
// capped: anything over `limit` is reported as limit + 1, and the table stops as soon as a whole
// row is past it. Every unknown key is compared with every known name, so this allocates
// nothing. Both strings must be shorter than kMaxComparedName.
std::size_t typo_distance(std::string_view a, std::string_view b, std::size_t limit) {
  // Rows i, i-1 and i-2 of the table, by i % 3 (a transposition reaches back two rows).
  std::array<std::array<std::size_t, kMaxComparedName + 1>, 3> rows{};
  for (std::size_t j = 0; j <= b.size(); ++j) rows[0][j] = j;
  std::size_t previous_min = 0;  // row 0's smallest cell
  for (std::size_t i = 1; i <= a.size(); ++i) {
    auto& current = rows[i % 3];
    const auto& previous = rows[(i - 1) % 3];
    const auto& before = rows[(i + 1) % 3];  // row i - 2; unused while i == 1
    current[0] = i;
    std::size_t row_min = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = fold_case(a[i - 1]) == fold_case(b[j - 1]) ? 0 : 1;
      std::size_t d = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && fold_case(a[i - 1]) == fold_case(b[j - 2]) &&
          fold_case(a[i - 2]) == fold_case(b[j - 1])) {
        d = std::min(d, before[j - 2] + 1);
      }
      current[j] = d;
      row_min = std::min(row_min, d);
    }
    // Each later cell is at least the smallest cell of one of the two rows above it: once this
    // row and the one before are both past the limit, so is the answer.
    if (row_min > limit && previous_min > limit) return limit + 1;
    previous_min = row_min;
  }
  return std::min(rows[a.size() % 3][b.size()], limit + 1);
}

// Whether `written` looks like a misspelling of `known`: the same but for case, or one edit
// away (two for long names, where two slips are as likely as one in a short name).
bool looks_like(std::string_view written, std::string_view known) {
  const std::size_t limit = known.size() >= 8 ? 2 : 1;
  // The distance is at least the difference in length: no table when that is already too far.
  const std::size_t gap = written.size() > known.size() ? written.size() - known.size()
                                                        : known.size() - written.size();
  if (gap > limit) return false;
  return typo_distance(written, known, limit) <= limit;
}

std::optional<std::string> suggestion_for(std::string_view key) {
  for (std::string_view known : kPlainKeys) {
    if (looks_like(key, known)) return std::string(known);
  }
  const std::size_t dot = key.find('.');
  const std::string_view head = key.substr(0, dot);
  const std::string tail = dot == std::string_view::npos ? ".N" : std::string(key.substr(dot));
  for (std::string_view prefix : kPrefixes) {
    if (looks_like(head, prefix)) return std::string(prefix) + tail;
  }
  return std::nullopt;
}

struct GroupLine {
  std::size_t line;
  std::string key;
  std::int32_t group;
  std::vector<std::int64_t> ids;
};

struct WeightLine {
  std::size_t line;
  std::string key;
  std::int64_t id;
  std::int64_t weight;
};

class Parser {
 public:
  explicit Parser(std::string_view source) { config_.source = std::string(source); }

  Result<ServerConfig> run(std::string_view text) {
    std::size_t line = 0;
    for (std::size_t pos = 0; pos <= text.size();) {
      ++line;
      const std::size_t eol = std::min(text.find('\n', pos), text.size());
      // trim() also drops the '\r' of a file written with CRLF line ends.
      if (auto r = parse_line(line, trim(text.substr(pos, eol - pos))); !r) {
        return std::unexpected(r.error());
      }
      pos = eol + 1;
    }
    if (auto r = finish(); !r) return std::unexpected(r.error());
    return std::move(config_);
  }

 private:
  // ---- messages ----
  std::unexpected<Error> at(std::size_t line, std::string_view key, std::string_view what) const {
    return std::unexpected(Error{config_.source + ":" + std::to_string(line) + ": " +
                                 std::string(key) + ": " + std::string(what)});
  }
  std::unexpected<Error> whole(std::string_view key, std::string_view what) const {
    return std::unexpected(
        Error{config_.source + ": " + std::string(key) + ": " + std::string(what)});
  }
  void warn(std::size_t line, std::string_view key, std::string_view what) {
    config_.warnings.push_back(config_.source + ":" + std::to_string(line) + ": " +
                               std::string(key) + ": " + std::string(what));
  }

  // ---- values ----
  // A whole number in [lo, hi]: decimal digits only (no sign, no spaces, no suffix). `noun`
  // prefixes the value in a range error ("port 70000 is out of range 1..65535").
  Result<std::uint64_t> number(std::size_t line, std::string_view key, std::string_view value,
                               std::uint64_t lo, std::uint64_t hi,
                               std::string_view noun = {}) const {
    std::uint64_t v = 0;
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, v);
    const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
    const std::string named = noun.empty() ? std::string(value) : std::string(noun) + " " +
                                                                      std::string(value);
    if (ec == std::errc::result_out_of_range && ptr == end) {
      return at(line, key, named + " is out of range " + range);
    }
    if (ec != std::errc() || ptr != end || value.empty()) {
      std::string what = quoted(value) + " is not a whole number";
      if (value.find('#') != std::string_view::npos) {
        what += " (a '#' starts a comment only at the start of a line)";
      }
      return at(line, key, what);
    }
    if (v < lo || v > hi) return at(line, key, named + " is out of range " + range);
    return v;
  }

  Result<std::int64_t> server_id(std::size_t line, std::string_view key,
                                 std::string_view text) const {
    auto v = number(line, key, text, 1, kInt64Max, "server id");
    if (!v) return std::unexpected(v.error());
    return static_cast<std::int64_t>(*v);
  }

  Result<std::uint16_t> port(std::size_t line, std::string_view key,
                             std::string_view text) const {
    auto v = number(line, key, text, 1, 65535, "port");
    if (!v) return std::unexpected(v.error());
    return static_cast<std::uint16_t>(*v);
  }

  template <class E, std::size_t N>
  Result<E> choice(std::size_t line, std::string_view key, std::string_view value,
                   const std::array<std::pair<std::string_view, E>, N>& options) const {
    std::string names;
    for (const auto& [name, e] : options) {
      if (name == value) return e;
      names += names.empty() ? "" : ", ";
      names += name;
    }
    return at(line, key, quoted(value) + " is not one of " + names);
  }

  // ---- one line ----
  Result<void> parse_line(std::size_t line, std::string_view text) {
    if (text.empty() || text.front() == '#') return {};
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos) return at(line, text, "expected key=value");
    const std::string_view key = trim(text.substr(0, eq));
    const std::string_view value = trim(text.substr(eq + 1));
    if (key.empty()) return at(line, quoted(text), "expected key=value, the key is empty");
    if (key.find_first_of(kWhitespace) != std::string_view::npos) {
      return at(line, quoted(key), "a key cannot contain whitespace");
    }
    const std::size_t dot = key.find('.');
    const std::string_view head = key.substr(0, dot);
    const bool prefixed = dot != std::string_view::npos &&
                          std::find(kPrefixes.begin(), kPrefixes.end(), head) != kPrefixes.end();
    const bool known =
        prefixed || std::find(kPlainKeys.begin(), kPlainKeys.end(), key) != kPlainKeys.end();
    if (!known) {
      warn_unknown(line, key);
      return {};
    }
    if (auto [it, fresh] = first_line_.try_emplace(std::string(key), line); !fresh) {
      return at(line, key, "duplicate key (first set on line " + std::to_string(it->second) + ")");
    }
    if (value.empty()) return at(line, key, "empty value");
    if (prefixed) {
      const std::string_view suffix = key.substr(dot + 1);
      if (head == "server") return parse_server(line, key, suffix, value);
      if (head == "group") return parse_group(line, key, suffix, value);
      if (head == "dpdkPeer") return parse_dpdk_peer(line, key, suffix, value);
      return parse_weight(line, key, suffix, value);
    }
    return parse_plain(line, key, value);
  }

  void warn_unknown(std::size_t line, std::string_view key) {
    for (const ZooKeeperOnlyKey& zk : kZooKeeperOnlyKeys) {
      if (zk.key != key) continue;
      std::string what = "a ZooKeeper setting fastzab does not use; ignored";
      if (!zk.hint.empty()) what += " (" + std::string(zk.hint) + ")";
      warn(line, key, what);
      return;
    }
    std::string what = "unknown key; ignored";
    if (auto s = suggestion_for(key)) what += " (did you mean " + *s + "?)";
    warn(line, key, what);
  }

  Result<void> parse_plain(std::size_t line, std::string_view key, std::string_view value) {
    auto set_u32 = [&](std::uint32_t& out, std::uint64_t lo, std::uint64_t hi) -> Result<void> {
      auto v = number(line, key, value, lo, hi);
      if (!v) return std::unexpected(v.error());
      out = static_cast<std::uint32_t>(*v);
      return {};
    };
    if (key == "tickTime") return set_u32(config_.tick_time_ms, 1, kInt32Max);
    if (key == "snapCount") return set_u32(config_.snap_count, 1, kInt32Max);
    if (key == "preAllocSize") {
      return set_u32(config_.prealloc_kb, kMinPreAllocKb, kMaxPreAllocKb);
    }
    if (key == "initLimit") return set_u32(config_.init_limit_ticks, 1, kInt32Max);
    if (key == "syncLimit") return set_u32(config_.sync_limit_ticks, 1, kInt32Max);
    if (key == "tickResolutionMs") {
      return set_u32(config_.tick_resolution_ms, 1, kMaxTickResolutionMs);
    }
    if (key == "electionFinalizeWaitMs") {
      return set_u32(config_.election_finalize_wait_ms, 1, kInt32Max);
    }
    if (key == "electionNotificationMaxMs") {
      return set_u32(config_.election_notification_max_ms, 1, kInt32Max);
    }
    if (key == "learnerHelloRetryMs") return set_u32(config_.learner_hello_retry_ms, 1, kInt32Max);
    if (key == "heartbeatMs") return set_u32(config_.heartbeat_ms, 1, kInt32Max);
    if (key == "leaderSilenceMs") return set_u32(config_.leader_silence_ms, 1, kInt32Max);
    if (key == "transferTimeoutMs") return set_u32(config_.transfer_timeout_ms, 1, kInt32Max);
    if (key == "groups") return set_u32(config_.groups, 1, kMaxGroups);
    if (key == "maxClientCnxns") return set_u32(config_.max_client_cnxns, 0, kInt32Max);
    if (key == "maxCnxns") return set_u32(config_.max_cnxns, 0, kInt32Max);
    if (key == "clientOutputLimitBytes") {
      return set_u32(config_.client_output_limit_bytes, kMinClientOutputLimitBytes, kUint32Max);
    }
    if (key == "globalOutstandingLimit") {
      return set_u32(config_.global_outstanding_limit, 1, kInt32Max);
    }
    if (key == "clientOutstandingLimit") {
      return set_u32(config_.client_outstanding_limit, 1, kInt32Max);
    }
    if (key == "clientInputBudgetBytes") {
      return set_u32(config_.client_input_budget_bytes, kMinClientInputBudgetBytes, kUint32Max);
    }
    if (key == "clientTimeoutMs") return set_u32(config_.client_timeout_ms, 1, kInt32Max);
    if (key == "dataDir") {
      config_.data_dir = std::string(value);
      return {};
    }
    if (key == "dpdkMemifDir") {
      config_.dpdk_memif_dir = std::string(value);
      return {};
    }
    if (key == "secretFile") {
      config_.secret_file = std::string(value);
      config_.secret_file_line = line;
      return {};
    }
    if (key == "clientPort") {
      auto p = port(line, key, value);
      if (!p) return std::unexpected(p.error());
      config_.client_port = *p;
      return {};
    }
    if (key == "clusterId") {
      auto v = number(line, key, value, 1, kUint64Max);
      if (!v) return std::unexpected(v.error());
      config_.cluster_id = *v;
      return {};
    }
    if (key == "transport") {
      constexpr std::array<std::pair<std::string_view, Transport>, 2> kOptions = {
          {{"uring", Transport::uring}, {"dpdk", Transport::dpdk}}};
      auto t = choice(line, key, value, kOptions);
      if (!t) return std::unexpected(t.error());
      config_.transport = *t;
      return {};
    }
    if (key == "logRecovery") {
      constexpr std::array<std::pair<std::string_view, LogRecovery>, 2> kOptions = {
          {{"cut_torn_tail", LogRecovery::cut_torn_tail},
           {"truncate_at_corruption", LogRecovery::truncate_at_corruption}}};
      auto r = choice(line, key, value, kOptions);
      if (!r) return std::unexpected(r.error());
      config_.log_recovery = *r;
      return {};
    }
    if (key == "poll") {
      auto p = choice(line, key, value, kPollModes);
      if (!p) return std::unexpected(p.error());
      config_.poll = *p;
      config_.poll_is_default = false;
      return {};
    }
    if (key == "dpdkEal") {
      for (std::size_t at_ = 0; at_ < value.size();) {
        const std::size_t begin = value.find_first_not_of(kWhitespace, at_);
        if (begin == std::string_view::npos) break;
        const std::size_t end = std::min(value.find_first_of(kWhitespace, begin), value.size());
        config_.dpdk_eal.emplace_back(value.substr(begin, end - begin));
        at_ = end;
      }
      return {};
    }
    if (key == "cpus") {
      auto cpus = parse_cpu_list(value);
      if (!cpus) return at(line, key, cpus.error().message);
      config_.cpus = std::move(*cpus);
      config_.cpus_origin = config_.source + ":" + std::to_string(line) + ": cpus";
      return {};
    }
    if (key == "trace") {
      constexpr std::array<std::pair<std::string_view, bool>, 2> kOptions = {
          {{"off", false}, {"on", true}}};
      auto t = choice(line, key, value, kOptions);
      if (!t) return std::unexpected(t.error());
      config_.trace = *t;
      return {};
    }
    // The last of kPlainKeys: sync.
    constexpr std::array<std::pair<std::string_view, SyncMode>, 2> kOptions = {
        {{"fdatasync", SyncMode::fdatasync}, {"none", SyncMode::none}}};
    auto s = choice(line, key, value, kOptions);
    if (!s) return std::unexpected(s.error());
    config_.sync = *s;
    return {};
  }

  // server.N=host:quorumPort:electionPort[:participant|:observer]; host may be [IPv6].
  Result<void> parse_server(std::size_t line, std::string_view key, std::string_view suffix,
                            std::string_view value) {
    auto id = server_id(line, key, suffix);
    if (!id) return std::unexpected(id.error());
    for (const ServerEntry& s : config_.servers) {
      if (s.id.value == *id) {
        return at(line, key, "duplicate server id " + std::to_string(*id) + " (first on line " +
                                 std::to_string(s.line) + ")");
      }
    }
    if (value.find(';') != std::string_view::npos) {
      return at(line, key, "a client address after ';' (ZooKeeper's dynamic form) is not "
                           "supported; use clientPort");
    }
    const std::string malformed = "expected " + std::string(kServerForm) + ", got " + quoted(value);
    ServerEntry entry;
    entry.id = core::ServerId{*id};
    entry.line = line;
    std::string_view rest;
    if (value.front() == '[') {
      const std::size_t close = value.find(']');
      if (close == std::string_view::npos) return at(line, key, malformed);
      entry.host = std::string(value.substr(1, close - 1));
      rest = value.substr(close + 1);
      if (rest.empty() || rest.front() != ':') return at(line, key, malformed);
      rest.remove_prefix(1);
    } else {
      const std::size_t colon = value.find(':');
      if (colon == std::string_view::npos) return at(line, key, malformed);
      entry.host = std::string(value.substr(0, colon));
      rest = value.substr(colon + 1);
    }
    if (entry.host.empty()) {
      return at(line, key, "the host is empty (write an IPv6 address in brackets: [::1])");
    }
    if (entry.host.find_first_of(kWhitespace) != std::string::npos) {
      return at(line, key, "the host " + quoted(entry.host) + " contains whitespace");
    }
    std::vector<std::string_view> fields;
    while (true) {
      const std::size_t colon = rest.find(':');
      fields.push_back(trim(rest.substr(0, colon)));
      if (colon == std::string_view::npos) break;
      rest = rest.substr(colon + 1);
    }
    if (fields.size() < 2 || fields.size() > 3) return at(line, key, malformed);
    auto quorum = port(line, key, fields[0]);
    if (!quorum) return std::unexpected(quorum.error());
    auto election = port(line, key, fields[1]);
    if (!election) return std::unexpected(election.error());
    if (*quorum == *election) {
      return at(line, key, "the quorum port and the election port are both " +
                               std::to_string(*quorum));
    }
    entry.quorum_port = *quorum;
    entry.election_port = *election;
    if (fields.size() == 3) {
      if (fields[2] == "observer") {
        entry.observer = true;
      } else if (fields[2] != "participant") {
        return at(line, key, "role " + quoted(fields[2]) + " is neither participant nor observer");
      }
    }
    config_.servers.push_back(std::move(entry));
    return {};
  }

  // group.G=id:id:...
  Result<void> parse_group(std::size_t line, std::string_view key, std::string_view suffix,
                           std::string_view value) {
    auto group = number(line, key, suffix, 0, kInt32Max, "group id");
    if (!group) return std::unexpected(group.error());
    GroupLine g{line, std::string(key), static_cast<std::int32_t>(*group), {}};
    for (const GroupLine& other : groups_) {
      if (other.group == g.group) {
        return at(line, key, "duplicate group id " + std::to_string(g.group) + " (first on line " +
                                 std::to_string(other.line) + ")");
      }
    }
    std::string_view rest = value;
    while (true) {
      const std::size_t colon = rest.find(':');
      const std::string_view field = trim(rest.substr(0, colon));
      if (field.empty()) return at(line, key, "empty server id in " + quoted(value));
      auto id = server_id(line, key, field);
      if (!id) return std::unexpected(id.error());
      if (std::find(g.ids.begin(), g.ids.end(), *id) != g.ids.end()) {
        return at(line, key, "server " + std::to_string(*id) + " is listed twice");
      }
      g.ids.push_back(*id);
      if (colon == std::string_view::npos) break;
      rest = rest.substr(colon + 1);
    }
    groups_.push_back(std::move(g));
    return {};
  }

  // weight.N=W
  Result<void> parse_weight(std::size_t line, std::string_view key, std::string_view suffix,
                            std::string_view value) {
    auto id = server_id(line, key, suffix);
    if (!id) return std::unexpected(id.error());
    for (const WeightLine& other : weights_) {
      if (other.id == *id) {
        return at(line, key, "duplicate weight for server " + std::to_string(*id) +
                                 " (first on line " + std::to_string(other.line) + ")");
      }
    }
    auto weight = number(line, key, value, 0, kInt64Max, "weight");
    if (!weight) return std::unexpected(weight.error());
    weights_.push_back(WeightLine{line, std::string(key), *id, static_cast<std::int64_t>(*weight)});
    return {};
  }

  // dpdkPeer.N=PORT[,MAC]
  Result<void> parse_dpdk_peer(std::size_t line, std::string_view key, std::string_view suffix,
                               std::string_view value) {
    auto id = server_id(line, key, suffix);
    if (!id) return std::unexpected(id.error());
    ServerConfig::DpdkPeer peer;
    peer.id = core::ServerId{static_cast<std::int64_t>(*id)};
    peer.line = line;
    const std::size_t comma = value.find(',');
    auto port = number(line, key, value.substr(0, comma), 0, 65535, "DPDK port");
    if (!port) return std::unexpected(port.error());
    peer.port = static_cast<std::uint16_t>(*port);
    if (comma != std::string_view::npos) {
      const std::string_view mac = value.substr(comma + 1);
      const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      bool ok = mac.size() == 17;
      for (std::size_t i = 0; ok && i < 6; ++i) {
        const int hi = hex(mac[3 * i]);
        const int lo = hex(mac[3 * i + 1]);
        ok = hi >= 0 && lo >= 0 && (i == 5 || mac[3 * i + 2] == ':');
        if (ok) peer.mac[i] = static_cast<std::uint8_t>(hi * 16 + lo);
      }
      if (!ok) return at(line, key, "\"" + std::string(mac) + "\" is not a MAC address (aa:bb:cc:dd:ee:ff)");
      if ((peer.mac[0] & 0x01) != 0) {
        return at(line, key, std::string(mac) + " is a multicast address, not a server's");
      }
    }
    config_.dpdk_peers.push_back(peer);
    return {};
  }

  // transport=dpdk: its keys, and what it does not support yet.
  Result<void> check_dpdk() {
    ServerConfig& c = config_;
    if (c.transport != Transport::dpdk) {
      for (std::string_view key : {"dpdkEal", "dpdkMemifDir"}) {
        if (auto it = first_line_.find(std::string(key)); it != first_line_.end()) {
          warn(it->second, key, "ignored: transport is not dpdk");
        }
      }
      if (!c.dpdk_peers.empty()) {
        warn(c.dpdk_peers.front().line, "dpdkPeer.N", "ignored: transport is not dpdk");
      }
      return {};
    }
    if (c.groups != 1) return cite("groups", "transport=dpdk supports groups=1 only, for now");
    if (!c.dpdk_memif_dir.empty() && !c.dpdk_peers.empty()) {
      return at(c.dpdk_peers.front().line, "dpdkPeer." + std::to_string(c.dpdk_peers.front().id.value),
                "dpdkMemifDir makes the peer table (one memif link per pair of servers): give "
                "one or the other");
    }
    if (c.dpdk_memif_dir.empty()) {
      if (c.dpdk_eal.empty()) {
        return cite("dpdkEal", "transport=dpdk needs the EAL's arguments (dpdkEal=...), or "
                               "dpdkMemifDir=DIR for a local mesh of memif links");
      }
      if (c.dpdk_peers.empty() && c.servers.size() > 1) {
        return whole("dpdkPeer.N", "transport=dpdk needs a peer table: dpdkPeer.N=PORT[,MAC] "
                                   "for every other server, or dpdkMemifDir=DIR for a local "
                                   "mesh of memif links");
      }
    }
    for (const ServerConfig::DpdkPeer& p : c.dpdk_peers) {
      const bool listed = std::any_of(c.servers.begin(), c.servers.end(),
                                      [&](const ServerEntry& s) { return s.id == p.id; });
      if (!listed) {
        return at(p.line, "dpdkPeer." + std::to_string(p.id.value),
                  "server " + std::to_string(p.id.value) + " is not listed in a server.N line");
      }
    }
    if (c.poll_is_default) c.poll = PollMode::busy;  // DPDK's mode; check_cpus says what it needs
    return {};
  }

  // ---- across lines ----
  Result<void> finish() {
    for (std::string_view required : {"dataDir", "clientPort", "clusterId"}) {
      if (!first_line_.contains(std::string(required))) {
        return whole(required, "required key is missing");
      }
    }
    if (auto r = check_servers(); !r) return r;
    if (auto r = check_group_ports(); !r) return r;
    if (auto r = check_hierarchy(); !r) return r;
    if (auto r = build_cluster(); !r) return r;
    if (config_.servers.size() > 1 && config_.secret_file.empty()) {
      return whole("secretFile", "required when more than one server is listed (" +
                                     std::to_string(config_.servers.size()) + " are)");
    }
    if (auto r = check_dpdk(); !r) return r;
    return check_timing();
  }

  // The error for a key that may or may not be in the file: at its line, or about the file.
  std::unexpected<Error> cite(std::string_view key, std::string_view what) const {
    auto it = first_line_.find(std::string(key));
    return it == first_line_.end() ? whole(key, what) : at(it->second, key, what);
  }

  // Derives heartbeatMs and leaderSilenceMs when not set, and checks the relations between the
  // timing keys that keep the core's timers meaningful (set_node_timing relies on them).
  Result<void> check_timing() {
    ServerConfig& c = config_;
    if (!first_line_.contains("tickResolutionMs")) {
      std::uint32_t coarsest = kDefaultTickResolutionCapMs;
      for (auto [key, v] : {std::pair{"electionFinalizeWaitMs", c.election_finalize_wait_ms},
                            std::pair{"learnerHelloRetryMs", c.learner_hello_retry_ms},
                            std::pair{"heartbeatMs", c.heartbeat_ms},
                            std::pair{"leaderSilenceMs", c.leader_silence_ms}}) {
        if (first_line_.contains(key)) coarsest = std::min(coarsest, v);
      }
      c.tick_resolution_ms = std::max<std::uint32_t>(1, coarsest);
    }
    const std::uint64_t resolution = c.tick_resolution_ms;
    const std::uint64_t sync_ms = std::uint64_t{c.sync_limit_ticks} * c.tick_time_ms;
    const std::string res_text = "tickResolutionMs (" + std::to_string(resolution) + " ms)";
    for (std::string_view key : {"electionFinalizeWaitMs", "electionNotificationMaxMs",
                                 "learnerHelloRetryMs", "heartbeatMs", "leaderSilenceMs",
                                 "transferTimeoutMs"}) {
      auto it = first_line_.find(std::string(key));
      if (it == first_line_.end()) continue;
      const std::uint32_t v = key == "electionFinalizeWaitMs"      ? c.election_finalize_wait_ms
                              : key == "electionNotificationMaxMs" ? c.election_notification_max_ms
                              : key == "learnerHelloRetryMs"       ? c.learner_hello_retry_ms
                              : key == "heartbeatMs"               ? c.heartbeat_ms
                              : key == "leaderSilenceMs"           ? c.leader_silence_ms
                                                                   : c.transfer_timeout_ms;
      if (v < resolution) {
        return at(it->second, key, std::to_string(v) + " ms is below " + res_text +
                                       ", the finest time the server counts");
      }
    }
    if (!first_line_.contains("heartbeatMs")) {
      c.heartbeat_ms = static_cast<std::uint32_t>(
          std::max(resolution, std::min<std::uint64_t>(kHeartbeatCapMs, c.tick_time_ms / 2)));
    }
    if (!first_line_.contains("leaderSilenceMs")) {
      c.leader_silence_ms = static_cast<std::uint32_t>(std::max<std::uint64_t>(
          std::uint64_t{2} * c.heartbeat_ms, std::min(kLeaderSilenceCapMs, sync_ms)));
    }
    if (c.election_notification_max_ms < c.election_finalize_wait_ms &&
        !first_line_.contains("electionNotificationMaxMs")) {
      return cite("electionFinalizeWaitMs",
                  std::to_string(c.election_finalize_wait_ms) +
                      " ms is above electionNotificationMaxMs (" +
                      std::to_string(c.election_notification_max_ms) +
                      " ms), the cap of the notification back-off that starts at it");
    }
    if (c.election_notification_max_ms < c.election_finalize_wait_ms) {
      return cite("electionNotificationMaxMs",
                  std::to_string(c.election_notification_max_ms) +
                      " ms is below electionFinalizeWaitMs (" +
                      std::to_string(c.election_finalize_wait_ms) +
                      " ms), where the notification back-off starts");
    }
    if (std::uint64_t{2} * c.heartbeat_ms > sync_ms) {
      return cite("heartbeatMs", std::to_string(c.heartbeat_ms) +
                                     " ms is more than half of syncLimit*tickTime (" +
                                     std::to_string(sync_ms) +
                                     " ms): the leader would drop followers between heartbeats");
    }
    if (c.leader_silence_ms < std::uint64_t{2} * c.heartbeat_ms) {
      return cite("leaderSilenceMs", std::to_string(c.leader_silence_ms) +
                                         " ms is less than two heartbeats (heartbeatMs " +
                                         std::to_string(c.heartbeat_ms) +
                                         " ms): followers would give up a live leader");
    }
    return {};
  }

  Result<void> check_servers() {
    auto& servers = config_.servers;
    if (servers.empty()) {
      return whole("server.N", "no server is listed; at least one participant is needed");
    }
    if (std::none_of(servers.begin(), servers.end(),
                     [](const ServerEntry& s) { return !s.observer; })) {
      return whole("server.N", "every server is an observer; at least one participant is needed");
    }
    // Addresses are compared as written (no name resolution here); reported at the later line.
    std::map<std::pair<std::string, std::uint16_t>, const ServerEntry*> used;
    for (const ServerEntry& s : servers) {  // still in file order
      for (std::uint16_t p : {s.quorum_port, s.election_port}) {
        auto [it, fresh] = used.try_emplace({s.host, p}, &s);
        if (!fresh) {
          const ServerEntry& first = *it->second;
          return at(s.line, "server." + std::to_string(s.id.value),
                    "address " + s.host + ":" + std::to_string(p) + " is already used by server." +
                        std::to_string(first.id.value) + " (line " + std::to_string(first.line) +
                        ")");
        }
      }
    }
    std::sort(servers.begin(), servers.end(),
              [](const ServerEntry& a, const ServerEntry& b) { return a.id < b.id; });
    return {};
  }

  // Group g of a server listens on its quorum port + g: with groups=G each server needs G
  // quorum ports of its own, clear of every other server's ports on the same host.
  Result<void> check_group_ports() const {
    const unsigned g = config_.groups;
    for (const ServerEntry& s : config_.servers) {
      const std::string key = "server." + std::to_string(s.id.value);
      const unsigned last = static_cast<unsigned>(s.quorum_port) + g - 1;
      if (last > 65535) {
        return at(s.line, key, "groups=" + std::to_string(g) + " needs quorum ports " +
                                   std::to_string(s.quorum_port) + ".." + std::to_string(last) +
                                   ", past 65535");
      }
      for (const ServerEntry& o : config_.servers) {
        if (o.id == s.id || o.host != s.host) continue;
        for (std::uint16_t p : {o.quorum_port, o.election_port}) {
          if (p < s.quorum_port || p > last) continue;
          const ServerEntry& later = o.line > s.line ? o : s;
          const ServerEntry& earlier = o.line > s.line ? s : o;
          return at(later.line, "server." + std::to_string(later.id.value),
                    "groups=" + std::to_string(g) + " gives server." + std::to_string(s.id.value) +
                        " quorum ports " + std::to_string(s.quorum_port) + ".." +
                        std::to_string(last) + " (group g listens on quorum port + g), and " +
                        s.host + ":" + std::to_string(p) + " is server." +
                        std::to_string(o.id.value) + "'s: their port ranges overlap (server." +
                        std::to_string(earlier.id.value) + " on line " +
                        std::to_string(earlier.line) + ")");
        }
      }
    }
    return {};
  }

  const ServerEntry* find_server(std::int64_t id) const {
    for (const ServerEntry& s : config_.servers) {
      if (s.id.value == id) return &s;
    }
    return nullptr;
  }

  std::string not_listed(std::int64_t id) const {
    return "server " + std::to_string(id) + " is not listed in a server.N line";
  }

  // group.G and weight.N lines against the server list.
  Result<void> check_hierarchy() {
    std::map<std::int64_t, const GroupLine*> group_of;
    for (const GroupLine& g : groups_) {
      for (std::int64_t id : g.ids) {
        const ServerEntry* s = find_server(id);
        if (s == nullptr) return at(g.line, g.key, not_listed(id));
        if (s->observer) {
          return at(g.line, g.key, "server " + std::to_string(id) +
                                       " is an observer; observers belong to no group");
        }
        if (auto [it, fresh] = group_of.try_emplace(id, &g); !fresh) {
          return at(g.line, g.key, "server " + std::to_string(id) + " is already in " +
                                       it->second->key + " (line " +
                                       std::to_string(it->second->line) + ")");
        }
      }
    }
    for (const WeightLine& w : weights_) {
      const ServerEntry* s = find_server(w.id);
      if (s == nullptr) return at(w.line, w.key, not_listed(w.id));
      if (s->observer) {
        return at(w.line, w.key, "server " + std::to_string(w.id) +
                                     " is an observer; observers carry no weight");
      }
      if (groups_.empty()) {
        return at(w.line, w.key, "weights apply to hierarchical quorums only, and there is no "
                                 "group.G line");
      }
    }
    if (groups_.empty()) return {};
    for (const ServerEntry& s : config_.servers) {
      if (!s.observer && !group_of.contains(s.id.value)) {
        return at(s.line, "server." + std::to_string(s.id.value),
                  "participant " + std::to_string(s.id.value) +
                      " is in no group; with group.G lines every participant must be in one");
      }
    }
    return {};
  }

  Result<void> build_cluster() {
    const bool hierarchical = !groups_.empty();
    std::vector<core::Member> members;
    members.reserve(config_.servers.size());
    for (const ServerEntry& s : config_.servers) {
      core::Member m;
      m.id = s.id;
      m.observer = s.observer;
      if (hierarchical && !s.observer) {
        for (const GroupLine& g : groups_) {
          if (std::find(g.ids.begin(), g.ids.end(), s.id.value) != g.ids.end()) m.group = g.group;
        }
        for (const WeightLine& w : weights_) {
          if (w.id == s.id.value) m.weight = w.weight;
        }
      }
      members.push_back(m);
    }
    auto cluster = core::ClusterConfig::make(
        std::move(members),
        hierarchical ? core::QuorumVerifier::Kind::hierarchical : core::QuorumVerifier::Kind::majority);
    if (!cluster) {
      // What the checks above leave to the core: more than kMaxMembers servers, every group of
      // weight zero, a group's weight overflowing.
      return whole(hierarchical ? "group.G" : "server.N", core::to_string(cluster.error()));
    }
    config_.cluster = std::move(*cluster);
    return {};
  }

  ServerConfig config_;
  std::map<std::string, std::size_t> first_line_;  // known keys as written -> first line
  std::vector<GroupLine> groups_;
  std::vector<WeightLine> weights_;
};

// The whole file, or why not. Refuses anything larger than `limit` bytes.
Result<std::string> read_file(const std::string& path, std::size_t limit, std::string_view what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return std::unexpected(Error{std::string(what) + "cannot read " + path + ": " +
                                 std::strerror(errno)});
  }
  std::string text;
  std::array<char, 8192> chunk;
  while (true) {
    const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), f);
    text.append(chunk.data(), n);
    if (text.size() > limit) {
      std::fclose(f);
      return std::unexpected(Error{std::string(what) + path + " is larger than " +
                                   std::to_string(limit) + " bytes"});
    }
    if (n < chunk.size()) break;
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    return std::unexpected(Error{std::string(what) + "cannot read " + path + ": " +
                                 std::strerror(err)});
  }
  return text;
}

// A configuration file of a few KiB is normal; this only stops a wrong path (a disk image).
constexpr std::size_t kMaxConfigFileBytes = 1u << 20;

}  // namespace

Result<ServerConfig> parse_config(std::string_view text, std::string_view source_name) {
  return Parser(source_name).run(text);
}

Result<std::string> read_config_file(const std::string& path) {
  return read_file(path, kMaxConfigFileBytes, "");
}

Result<ServerConfig> load_config(const std::string& path) {
  auto text = read_config_file(path);
  if (!text) return std::unexpected(text.error());
  return load_config_text(*text, path);
}

Result<ServerConfig> load_config_text(std::string_view text, const std::string& path) {
  auto config = parse_config(text, path);
  if (!config || config->secret_file.empty()) return config;

  const std::string where =
      path + ":" + std::to_string(config->secret_file_line) + ": secretFile: ";
  auto secret = read_file(config->secret_file, kMaxSecretFileBytes, where);
  if (!secret) return std::unexpected(secret.error());
  config->secret = std::string(trim(*secret));
  if (config->secret.size() < kMinSecretBytes) {
    return std::unexpected(Error{where + config->secret_file + " holds " +
                                 std::to_string(config->secret.size()) +
                                 " bytes (whitespace trimmed); at least " +
                                 std::to_string(kMinSecretBytes) + " are needed"});
  }
  struct stat st{};
  if (::stat(config->secret_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    config->warnings.push_back(where + config->secret_file +
                               " is readable or writable by other users (chmod 600 it)");
  }
  return config;
}

Result<std::size_t> validate_for(const ServerConfig& config, core::ServerId id) {
  std::string ids;
  std::optional<std::size_t> index;
  for (std::size_t i = 0; i < config.servers.size(); ++i) {
    if (config.servers[i].id == id) index = i;
    ids += (i == 0 ? "" : ", ") + std::to_string(config.servers[i].id.value);
  }
  if (!index) {
    return std::unexpected(Error{config.source + ": --id " + std::to_string(id.value) +
                                 " is not in the server list (ids: " + ids + ")"});
  }
  if (config.transport != Transport::dpdk || !config.dpdk_memif_dir.empty()) return *index;
  // The dpdkPeer table is this server's own: it must name every other server once.
  const std::string self = "server " + std::to_string(id.value);
  for (const ServerEntry& s : config.servers) {
    const auto n = std::count_if(config.dpdk_peers.begin(), config.dpdk_peers.end(),
                                 [&](const ServerConfig::DpdkPeer& p) { return p.id == s.id; });
    const std::string key = "dpdkPeer." + std::to_string(s.id.value);
    if (s.id == id && n != 0) {
      return std::unexpected(Error{config.source + ": " + key + ": names " + self +
                                   " itself (--id " + std::to_string(id.value) + "); the table "
                                   "lists the other servers only"});
    }
    if (s.id != id && n != 1) {
      return std::unexpected(Error{config.source + ": " + key + ": " + self + "'s peer table " +
                                   (n == 0 ? "does not say how to reach server "
                                           : "names more than once server ") +
                                   std::to_string(s.id.value)});
    }
  }
  return *index;
}

namespace {

bool names_option(const std::vector<std::string>& args, std::initializer_list<std::string_view> options) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) {
    return std::any_of(options.begin(), options.end(), [&](std::string_view o) {
      return a == o || (a.starts_with(o) && a.size() > o.size() && a[o.size()] == '=');
    });
  });
}

}  // namespace

std::optional<PollMode> poll_mode_named(std::string_view name) noexcept {
  for (const auto& [text, mode] : kPollModes) {
    if (text == name) return mode;
  }
  return std::nullopt;
}

DpdkPlan dpdk_plan(const ServerConfig& config, core::ServerId self, std::uint32_t first_cpu) {
  DpdkPlan plan;
  plan.eal = config.dpdk_eal;
  if (plan.eal.empty()) {
    plan.eal = {"--no-huge", "-m", "256", "--no-pci", "--iova-mode=va", "--no-telemetry",
                "--log-level=lib.eal:notice"};
  }
  if (!names_option(plan.eal, {"-l", "-c", "--lcores"})) {
    plan.eal.insert(plan.eal.end(), {"-l", std::to_string(first_cpu)});
  }
  if (!names_option(plan.eal, {"--file-prefix"})) {
    // FNV-1a of dataDir and the id: stable across restarts, distinct for servers on one host.
    std::uint64_t h = 14695981039346656037ull;
    for (char ch : config.data_dir + "#" + std::to_string(self.value)) {
      h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
    }
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "fastzab-%016llx", static_cast<unsigned long long>(h));
    plan.eal.push_back(std::string("--file-prefix=") + prefix);
  }
  if (config.dpdk_memif_dir.empty()) {
    for (const ServerConfig::DpdkPeer& p : config.dpdk_peers) {
      plan.peers.push_back(DpdkPlan::Peer{p.id, {}, p.port, p.mac});
    }
    return plan;
  }
  for (const ServerEntry& s : config.servers) {
    if (s.id == self) continue;
    const std::string lo = std::to_string(std::min(s.id.value, self.value));
    const std::string hi = std::to_string(std::max(s.id.value, self.value));
    const std::string device = "net_memif_" + lo + "_" + hi;
    // The lower id listens: each pair's link has one server and one client end.
    plan.eal.push_back("--vdev=" + device + ",role=" + (self.value < s.id.value ? "server" : "client") +
                       ",socket=" + config.dpdk_memif_dir + "/memif-" + lo + "-" + hi +
                       ".sock,socket-abstract=no,id=0");
    plan.peers.push_back(DpdkPlan::Peer{s.id, device, 0, {}});
  }
  return plan;
}

}  // namespace fastzab::runtime

namespace fastzab::runtime {

static_assert(kMaxCpus == CPU_SETSIZE, "a CPU number must fit a cpu_set_t");

Result<std::vector<std::uint32_t>> parse_cpu_list(std::string_view text) {
  constexpr std::string_view kForm = " (write CPUs as 0,1 and ranges as 2-5)";
  // One end of `item` (a CPU or a range lo-hi).
  auto cpu = [&](std::string_view s, std::string_view item) -> Result<std::uint32_t> {
    std::uint32_t v = 0;
    const char* end = s.data() + s.size();
    const auto [ptr, ec] = std::from_chars(s.data(), end, v);
    if (s.empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
      return std::unexpected(
          Error{quoted(item) + " is not a CPU number or range" + std::string(kForm)});
    }
    if (ec == std::errc::result_out_of_range || v >= kMaxCpus) {
      return std::unexpected(Error{"CPU " + std::string(s) + " is out of range 0.." +
                                   std::to_string(kMaxCpus - 1)});
    }
    return v;
  };
  std::vector<std::uint32_t> out;
  if (trim(text).empty()) return std::unexpected(Error{"the CPU list is empty" + std::string(kForm)});
  std::vector<bool> seen(kMaxCpus);
  for (std::size_t pos = 0; pos <= text.size();) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = trim(text.substr(pos, comma - pos));
    pos = comma + 1;
    if (item.empty()) {
      return std::unexpected(Error{quoted(text) + " has an empty item" + std::string(kForm)});
    }
    const std::size_t dash = item.find('-');
    auto lo = cpu(trim(item.substr(0, dash)), item);
    if (!lo) return std::unexpected(lo.error());
    std::uint32_t hi = *lo;
    if (dash != std::string_view::npos) {
      auto h = cpu(trim(item.substr(dash + 1)), item);
      if (!h) return std::unexpected(h.error());
      if (*h < *lo) return std::unexpected(Error{"range " + std::string(item) + " runs backwards"});
      hi = *h;
    }
    for (std::uint32_t c = *lo; c <= hi; ++c) {
      if (seen[c]) return std::unexpected(Error{"CPU " + std::to_string(c) + " is listed twice"});
      seen[c] = true;
      out.push_back(c);
    }
  }
  return out;
}

std::string format_cpu_list(std::vector<std::uint32_t> cpus) {
  std::sort(cpus.begin(), cpus.end());
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

std::vector<std::uint32_t> available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<std::uint32_t> out;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (std::uint32_t c = 0; c < kMaxCpus; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

void set_node_timing(const ServerConfig& config, core::NodeConfig& node) {
  const std::uint64_t resolution = std::max<std::uint64_t>(1, config.tick_resolution_ms);
  const auto ticks = [&](std::uint64_t ms) {
    const std::uint64_t t = std::max<std::uint64_t>(1, (ms + resolution - 1) / resolution);
    return static_cast<std::int32_t>(
        std::min<std::uint64_t>(t, static_cast<std::uint64_t>(core::kMaxDurationTicks)));
  };
  node.finalize_wait_ticks = ticks(config.election_finalize_wait_ms);
  node.notify_min_ticks = node.finalize_wait_ticks;  // ZooKeeper: minNotificationInterval = finalizeWait
  node.notify_max_ticks = std::max(node.notify_min_ticks, ticks(config.election_notification_max_ms));
  node.learner_hello_retry_ticks = ticks(config.learner_hello_retry_ms);
  node.ping_ticks = ticks(config.heartbeat_ms);
  node.leader_silence_ticks = std::max(node.ping_ticks + 1, ticks(config.leader_silence_ms));
  node.init_limit_ticks = ticks(std::uint64_t{config.init_limit_ticks} * config.tick_time_ms);
  node.sync_limit_ticks = std::max(node.ping_ticks + 1,
                                   ticks(std::uint64_t{config.sync_limit_ticks} * config.tick_time_ms));
  node.transfer_timeout_ticks = ticks(config.transfer_timeout_ms);
}

Result<void> check_cpus(const ServerConfig& config, const std::vector<std::uint32_t>& available) {
  const std::string origin =
      config.cpus_origin.empty() ? config.source + ": cpus" : config.cpus_origin;
  const std::string here = "this process may use CPUs " + format_cpu_list(available);
  for (std::uint32_t c : config.cpus) {
    if (std::find(available.begin(), available.end(), c) == available.end()) {
      return std::unexpected(Error{origin + ": CPU " + std::to_string(c) +
                                   " is not available on this machine (" + here + ")"});
    }
  }
  if (config.poll != PollMode::busy || config.cpus.size() >= config.groups) return {};
  const std::string groups = std::to_string(config.groups);
  const std::string needs =
      origin + ": poll=busy" +
      (config.poll_is_default ? " (transport=dpdk's default; poll=adaptive or poll=blocking do not spin)"
                              : "") +
      " needs one CPU per group: ";
  if (available.size() < config.groups) {
    return std::unexpected(Error{needs + "groups=" + groups + " but " + here +
                                 ": use fewer groups or poll=adaptive"});
  }
  const std::string example = format_cpu_list(
      std::vector<std::uint32_t>(available.begin(), available.begin() + config.groups));
  if (config.cpus.empty()) {
    return std::unexpected(Error{needs + "list them, e.g. cpus=" + example + " for groups=" +
                                 groups + " (servers sharing a host need disjoint lists: " +
                                 "fastzab-server --cpus); spinning threads left unpinned " +
                                 "compete for the same CPUs"});
  }
  const bool flag = config.cpus_origin == "--cpus";
  return std::unexpected(Error{needs + "set " + (flag ? "--cpus " : "cpus=") + example +
                               " or other distinct CPUs (" + groups + " groups, " +
                               std::to_string(config.cpus.size()) + " listed)"});
}

}  // namespace fastzab::runtime
