#include "bench/cluster/waterfall.h"

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <iterator>
#include <map>
#include <optional>
#include <utility>

namespace fastzab::bench {
namespace {

using runtime::trace::Role;
using runtime::trace::Stage;

constexpr std::string_view kSpaces = " \t";

std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  // At most 40 characters of untrusted text go into a message.
  out += s.substr(0, 40);
  if (s.size() > 40) out += "...";
  out += '\'';
  return out;
}

std::optional<std::uint64_t> decimal(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::uint64_t> hex0x(std::string_view s) {
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return std::nullopt;
  s.remove_prefix(2);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<Role> role_named(std::string_view s) {
  for (Role r : {Role::leader, Role::follower, Role::observer, Role::looking, Role::none}) {
    if (runtime::trace::name(r) == s) return r;
  }
  return std::nullopt;
}

std::string line_error(std::size_t line, std::string_view what) {
  return "line " + std::to_string(line) + ": " + std::string(what);
}

// One non-blank line.
std::expected<TraceLine, std::string> parse_line(std::string_view text, std::size_t line_no) {
  TraceLine t;
  bool have_zxid = false, have_server = false, have_group = false, have_role = false,
       have_quorum = false;
  std::array<bool, runtime::trace::kStageCount> have_stage{};
  const auto fail = [&](std::string_view what) {
    return std::unexpected(line_error(line_no, what));
  };
  std::size_t pos = 0;
  while (true) {
    pos = text.find_first_not_of(kSpaces, pos);
    if (pos == std::string_view::npos) break;
    std::size_t end = text.find_first_of(kSpaces, pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view token = text.substr(pos, end - pos);
    pos = end;
    const std::size_t eq = token.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return fail(quoted(token) + ": expected key=value");
    }
    const std::string_view key = token.substr(0, eq);
    const std::string_view value = token.substr(eq + 1);
    const auto number = [&](std::uint64_t& out) -> std::optional<std::string> {
      const auto v = decimal(value);
      if (!v) return std::string(key) + ": " + quoted(value) + " is not a whole number";
      out = *v;
      return std::nullopt;
    };
    const auto once = [&](bool& seen) -> std::optional<std::string> {
      if (seen) return std::string(key) + ": given twice";
      seen = true;
      return std::nullopt;
    };
    std::optional<std::string> err;
    if (key == "zxid") {
      if (!(err = once(have_zxid))) {
        const auto v = hex0x(value);
        if (!v || *v == 0) {
          err = "zxid: " + quoted(value) + " is not 0x followed by hex digits (non-zero)";
        } else {
          t.zxid = *v;
        }
      }
    } else if (key == "server") {
      if (!(err = once(have_server)) && !(err = number(t.server)) && t.server == 0) {
        err = "server: 0 is not a server id";
      }
    } else if (key == "group") {
      std::uint64_t g = 0;
      if (!(err = once(have_group)) && !(err = number(g))) {
        if (g > UINT32_MAX) {
          err = "group: " + quoted(value) + " is out of range";
        } else {
          t.group = static_cast<std::uint32_t>(g);
        }
      }
    } else if (key == "role") {
      if (!(err = once(have_role))) {
        const auto r = role_named(value);
        if (!r) {
          err = "role: " + quoted(value) + " is not one of leader, follower, observer, looking";
        } else {
          t.role = *r;
        }
      }
    } else if (key == "quorum") {
      if (!(err = once(have_quorum))) err = number(t.quorum);
    } else if (key.starts_with("ack.")) {
      const auto peer = decimal(key.substr(4));
      std::uint64_t ns = 0;
      if (!peer || *peer == 0) {
        err = quoted(key) + ": not ack.<server id>";
      } else if (!(err = number(ns))) {
        const bool dup = std::any_of(t.acks.begin(), t.acks.end(),
                                     [&](const runtime::trace::Ack& a) { return a.peer == *peer; });
        if (dup) {
          err = std::string(key) + ": given twice";
        } else if (t.acks.size() >= kMaxParsedAcks) {
          err = "more than " + std::to_string(kMaxParsedAcks) + " acks";
        } else {
          t.acks.push_back(runtime::trace::Ack{*peer, ns});
        }
      }
    } else if (const auto st = runtime::trace::stage_named(key)) {
      const auto i = static_cast<std::size_t>(*st);
      if (!(err = once(have_stage[i])) && !(err = number(t.ns[i])) && t.ns[i] == 0) {
        err = std::string(key) + ": 0 is not a time";
      }
    } else {
      err = quoted(key) + ": unknown key";
    }
    if (err) return fail(*err);
  }
  if (!have_zxid) return fail("no zxid=");
  if (!have_server) return fail("no server=");
  if (!have_group) return fail("no group=");
  if (!have_role) return fail("no role=");
  return t;
}

// ------------------------------------------------------------------------------ the paths

enum class Who : std::uint8_t { client, entry, leader, follower };
enum class Extra : std::uint8_t { none, client_send, client_recv, ack_recv };

struct Point {
  Who who;
  Stage stage;
  Extra extra = Extra::none;
};
constexpr Point at(Who w, Stage s) { return Point{w, s, Extra::none}; }
constexpr Point kSend{Who::client, Stage::sock_read, Extra::client_send};
constexpr Point kRecv{Who::client, Stage::sock_read, Extra::client_recv};
constexpr Point kAckRecv{Who::leader, Stage::sock_read, Extra::ack_recv};

struct RowDef {
  Point point;
  Point from;
  bool parallel = false;
  bool total = false;
};

std::string label(const Point& p) {
  switch (p.extra) {
    case Extra::client_send: return "client send";
    case Extra::client_recv: return "client recv";
    case Extra::ack_recv: return "leader ack_recv";
    case Extra::none: break;
  }
  const char* who = p.who == Who::entry ? "entry" : p.who == Who::leader ? "leader" : "follower";
  return std::string(who) + " " + std::string(runtime::trace::name(p.stage));
}

// Writes sent to the leader.
std::vector<RowDef> leader_path() {
  using W = Who;
  using S = Stage;
  return {
      {at(W::leader, S::sock_read), kSend},
      {at(W::leader, S::ring_push), at(W::leader, S::sock_read)},
      {at(W::leader, S::ring_pop), at(W::leader, S::ring_push)},
      {at(W::leader, S::proposed), at(W::leader, S::ring_pop)},
      {at(W::leader, S::proposal_sent), at(W::leader, S::proposed)},
      {at(W::leader, S::log_submit), at(W::leader, S::proposal_sent), true},
      {at(W::leader, S::durable), at(W::leader, S::log_submit), true},
      {at(W::follower, S::proposal_recv), at(W::leader, S::proposal_sent)},
      {at(W::follower, S::log_submit), at(W::follower, S::proposal_recv)},
      {at(W::follower, S::durable), at(W::follower, S::log_submit)},
      {at(W::follower, S::ack_sent), at(W::follower, S::durable)},
      {kAckRecv, at(W::follower, S::ack_sent)},
      {at(W::leader, S::commit), kAckRecv},
      {at(W::leader, S::applied), at(W::leader, S::commit)},
      {at(W::leader, S::reply_handed), at(W::leader, S::applied)},
      {at(W::leader, S::reply_polled), at(W::leader, S::reply_handed)},
      {at(W::leader, S::reply_written), at(W::leader, S::reply_polled)},
      {kRecv, at(W::leader, S::reply_written)},
      // Replication alone, leader side: from the proposal to its commit (the followers' round
      // trip and logs; the client's hop excluded).
      {at(W::leader, S::commit), at(W::leader, S::proposed), false, true},
      {at(W::leader, S::reply_written), at(W::leader, S::sock_read), false, true},
      {kRecv, kSend, false, true},
  };
}

// Writes sent to a follower (the entry), which forwards them to the leader.
std::vector<RowDef> follower_path() {
  using W = Who;
  using S = Stage;
  return {
      {at(W::entry, S::sock_read), kSend},
      {at(W::entry, S::ring_push), at(W::entry, S::sock_read)},
      {at(W::entry, S::ring_pop), at(W::entry, S::ring_push)},
      {at(W::entry, S::forwarded), at(W::entry, S::ring_pop)},
      {at(W::leader, S::proposed), at(W::entry, S::forwarded)},
      {at(W::leader, S::proposal_sent), at(W::leader, S::proposed)},
      {at(W::leader, S::log_submit), at(W::leader, S::proposal_sent), true},
      {at(W::leader, S::durable), at(W::leader, S::log_submit), true},
      {at(W::follower, S::proposal_recv), at(W::leader, S::proposal_sent)},
      {at(W::follower, S::log_submit), at(W::follower, S::proposal_recv)},
      {at(W::follower, S::durable), at(W::follower, S::log_submit)},
      {at(W::follower, S::ack_sent), at(W::follower, S::durable)},
      {kAckRecv, at(W::follower, S::ack_sent)},
      {at(W::leader, S::commit), kAckRecv},
      {at(W::leader, S::applied), at(W::leader, S::commit), true},
      {at(W::entry, S::commit_recv), at(W::leader, S::commit)},
      {at(W::entry, S::applied), at(W::entry, S::commit_recv)},
      {at(W::entry, S::reply_handed), at(W::entry, S::applied)},
      {at(W::entry, S::reply_polled), at(W::entry, S::reply_handed)},
      {at(W::entry, S::reply_written), at(W::entry, S::reply_polled)},
      {kRecv, at(W::entry, S::reply_written)},
      {at(W::entry, S::reply_written), at(W::entry, S::sock_read), false, true},
      {kRecv, kSend, false, true},
  };
}

struct Joined {
  const TraceLine* leader = nullptr;
  const TraceLine* entry = nullptr;
  const TraceLine* follower = nullptr;
  const ClientWrite* client = nullptr;
};

std::optional<std::uint64_t> value_of(const Joined& j, const Point& p) {
  std::uint64_t v = 0;
  switch (p.extra) {
    case Extra::client_send: v = j.client != nullptr ? j.client->send_ns : 0; break;
    case Extra::client_recv: v = j.client != nullptr ? j.client->recv_ns : 0; break;
    case Extra::ack_recv:
      if (j.leader != nullptr && j.follower != nullptr) {
        for (const auto& a : j.leader->acks) {
          if (a.peer == j.follower->server) v = a.ns;
        }
      }
      break;
    case Extra::none: {
      const TraceLine* line = p.who == Who::leader  ? j.leader
                              : p.who == Who::entry ? j.entry
                                                    : j.follower;
      if (line != nullptr) v = line->at(p.stage);
      break;
    }
  }
  if (v == 0) return std::nullopt;
  return v;
}

// The follower whose ACK completed the quorum; when the leader's own log did (or the leader did
// not say), the one whose ACK arrived first; failing that, the first follower line.
const TraceLine* quorum_follower(const TraceLine& leader,
                                 const std::vector<const TraceLine*>& lines) {
  const auto line_of = [&](std::uint64_t server) -> const TraceLine* {
    for (const TraceLine* l : lines) {
      if (l->server == server && l != &leader) return l;
    }
    return nullptr;
  };
  if (leader.quorum != 0 && leader.quorum != leader.server) {
    if (const TraceLine* l = line_of(leader.quorum)) return l;
  }
  const TraceLine* best = nullptr;
  std::uint64_t best_ns = 0;
  for (const auto& a : leader.acks) {
    const TraceLine* l = line_of(a.peer);
    if (l != nullptr && (best == nullptr || a.ns < best_ns)) {
      best = l;
      best_ns = a.ns;
    }
  }
  if (best != nullptr) return best;
  for (const TraceLine* l : lines) {
    if (l != &leader && l->role == Role::follower) return l;
  }
  return nullptr;
}

// Nearest rank: the smallest sample with at least `percent` % of the samples at or below it.
// `v` is sorted and not empty.
std::int64_t percentile(const std::vector<std::int64_t>& v, std::size_t percent) {
  const std::size_t rank = std::max<std::size_t>(1, (percent * v.size() + 99) / 100);
  return v[rank - 1];
}

WaterfallSection make_section(std::string title, const std::vector<RowDef>& defs,
                              const std::vector<Joined>& writes) {
  WaterfallSection s;
  s.title = std::move(title);
  s.writes = writes.size();
  for (const Joined& j : writes) {
    if (j.leader->quorum != 0 && j.leader->quorum == j.leader->server) ++s.quorum_by_leader_disk;
  }
  std::vector<std::int64_t> d;
  for (const RowDef& def : defs) {
    d.clear();
    for (const Joined& j : writes) {
      const auto a = value_of(j, def.point);
      const auto b = value_of(j, def.from);
      if (a && b) d.push_back(static_cast<std::int64_t>(*a - *b));
    }
    WaterfallRow row;
    row.stage = label(def.point);
    row.from = label(def.from);
    row.parallel = def.parallel;
    row.total = def.total;
    row.samples = d.size();
    if (!d.empty()) {
      std::sort(d.begin(), d.end());
      row.p50_ns = percentile(d, 50);
      row.p90_ns = percentile(d, 90);
    }
    s.rows.push_back(std::move(row));
  }
  return s;
}

}  // namespace

std::expected<std::vector<TraceLine>, std::string> parse_trce(std::string_view answer) {
  std::vector<TraceLine> out;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < answer.size()) {
    std::size_t end = answer.find('\n', pos);
    if (end == std::string_view::npos) end = answer.size();
    std::string_view line = answer.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(kSpaces) == std::string_view::npos) continue;
    if (line.starts_with("trace is off")) {
      return std::unexpected(std::string("the server's trace is off (zoo.cfg: trace=on)"));
    }
    auto t = parse_line(line, line_no);
    if (!t) return std::unexpected(t.error());
    out.push_back(std::move(*t));
  }
  return out;
}

std::expected<Waterfall, std::string> compute_waterfall(std::span<const std::string> trce_answers,
                                                        std::span<const ClientWrite> client) {
  std::vector<TraceLine> all;
  for (std::size_t i = 0; i < trce_answers.size(); ++i) {
    auto lines = parse_trce(trce_answers[i]);
    if (!lines) {
      return std::unexpected("answer " + std::to_string(i + 1) + ": " + lines.error());
    }
    for (TraceLine& l : *lines) all.push_back(std::move(l));
  }
  // (group, zxid) -> its lines, one per server.
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::vector<const TraceLine*>> by_write;
  for (const TraceLine& l : all) {
    auto& lines = by_write[{l.group, l.zxid}];
    for (const TraceLine* o : lines) {
      if (o->server == l.server) {
        char z[24];
        std::snprintf(z, sizeof z, "0x%016" PRIx64, l.zxid);
        return std::unexpected("server " + std::to_string(l.server) + " has two lines for group " +
                               std::to_string(l.group) + " zxid " + z);
      }
    }
    lines.push_back(&l);
  }
  Waterfall w;
  w.zxids_seen = by_write.size();
  // zxid -> the joined writes with that zxid (one per group that has it).
  std::multimap<std::uint64_t, std::size_t> by_zxid;
  std::vector<Joined> joined;
  for (const auto& [key, lines] : by_write) {
    Joined j;
    for (const TraceLine* l : lines) {
      if (l->role == Role::leader && l->at(Stage::proposed) != 0) j.leader = l;
      if (l->at(Stage::sock_read) != 0 && j.entry == nullptr) j.entry = l;
    }
    if (j.leader == nullptr || j.entry == nullptr) {
      ++w.unjoined;
      continue;
    }
    if (j.leader->at(Stage::sock_read) != 0) j.entry = j.leader;  // written to the leader
    j.follower = quorum_follower(*j.leader, lines);
    by_zxid.emplace(key.second, joined.size());
    joined.push_back(j);
  }
  for (const ClientWrite& c : client) {
    if (c.zxid == 0) continue;
    const auto [first, last] = by_zxid.equal_range(c.zxid);
    Joined* pick = nullptr;
    std::size_t fits = 0;
    for (auto it = first; it != last; ++it) {
      Joined& j = joined[it->second];
      const std::uint64_t read = j.entry->at(Stage::sock_read);
      if (std::distance(first, last) == 1 || (read >= c.send_ns && read <= c.recv_ns)) {
        pick = &j;
        ++fits;
      }
    }
    if (fits == 1 && pick->client == nullptr) {  // groups with the same zxid: by the read time
      pick->client = &c;
      ++w.client_matched;
    }
  }
  std::vector<Joined> via_leader, via_follower;
  for (const Joined& j : joined) (j.entry == j.leader ? via_leader : via_follower).push_back(j);
  if (!via_leader.empty()) {
    w.sections.push_back(make_section("writes sent to the leader", leader_path(), via_leader));
  }
  if (!via_follower.empty()) {
    w.sections.push_back(make_section("writes sent to a follower (entry), forwarded to the leader",
                                      follower_path(), via_follower));
  }
  return w;
}

std::string format_waterfall(const Waterfall& w) {
  std::string out;
  char buf[256];
  const auto us = [](std::int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  if (w.sections.empty()) {
    out += "commit waterfall: no write has both a leader line and a client-facing line (" +
           std::to_string(w.zxids_seen) + " zxids traced)\n";
    return out;
  }
  for (const WaterfallSection& s : w.sections) {
    std::snprintf(buf, sizeof buf, "commit waterfall: %s: %zu writes", s.title.c_str(), s.writes);
    out += buf;
    out += " (follower = the one whose ACK completed the quorum, else the first to ACK; the "
           "leader's own fdatasync completed it in ";
    out += std::to_string(s.quorum_by_leader_disk) + ")\n";
    std::snprintf(buf, sizeof buf, "  %-26s %-26s %7s %10s %10s\n", "stage", "after", "n",
                  "p50 us", "p90 us");
    out += buf;
    for (const WaterfallRow& r : s.rows) {
      const std::string stage = (r.total ? "= " : r.parallel ? "| " : "") + r.stage;
      if (r.samples == 0) {
        std::snprintf(buf, sizeof buf, "  %-26s %-26s %7s %10s %10s\n", stage.c_str(),
                      r.from.c_str(), "0", "-", "-");
      } else {
        std::snprintf(buf, sizeof buf, "  %-26s %-26s %7zu %10.1f %10.1f\n", stage.c_str(),
                      r.from.c_str(), r.samples, us(r.p50_ns), us(r.p90_ns));
      }
      out += buf;
    }
  }
  out += "  (| : in parallel with the rows around it; = : a whole span, not a step)\n";
  std::snprintf(buf, sizeof buf,
                "  %zu zxids traced, %zu not joined (no leader or no client-facing line), %zu "
                "client stamps matched\n",
                w.zxids_seen, w.unjoined, w.client_matched);
  out += buf;
  return out;
}

}  // namespace fastzab::bench
