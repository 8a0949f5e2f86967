// The shared test world (tests/support/README.md); ensemble.h says what it models.
#include "tests/support/ensemble.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace fastzab::test {

using core::Output;
using core::OutputKind;

namespace {

std::string as_string(Bytes b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

Bytes as_bytes(const std::string& s) {
  return Bytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

void put_u32(ByteBuffer& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::byte>((v >> s) & 0xffu));
}

std::uint32_t get_u32(Bytes b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t k = 0; k < 4; ++k) v = (v << 8) | std::to_integer<std::uint32_t>(b[at + k]);
  return v;
}

const char* short_reason(core::RejectReason r) {
  switch (r) {
    case core::RejectReason::not_leader: return "not_leader";
    case core::RejectReason::not_established: return "not_established";
    case core::RejectReason::zxid_exhausted: return "zxid_exhausted";
    case core::RejectReason::too_large: return "too_large";
    case core::RejectReason::transferring: return "transferring";
    case core::RejectReason::stale_sequence: return "stale_sequence";
  }
  return "?";
}

// Entries of a batch body (int32 count, then int32 length + bytes each), zxids from `first`:
// log entries (append outputs, PROPOSAL and INFORM: a header, then the value) or values (deliver).
enum class BatchOf : std::uint8_t { log_entries, values };
std::vector<Entry> batch_entries(Zxid first, Bytes data, BatchOf of) {
  std::vector<Entry> entries;
  const auto batch = core::decode_batch(data);
  if (!batch) return entries;
  Zxid zxid = first;
  for (Bytes e : *batch) {
    if (of == BatchOf::log_entries) {
      const auto v = core::decode_entry(e);
      entries.push_back(Entry{zxid, v ? as_string(v->value) : "<bad entry header>"});
    } else {
      entries.push_back(Entry{zxid, as_string(e)});
    }
    zxid = zxid.next();
  }
  return entries;
}

// "1:1-1:3", or "1:2" for a single zxid.
std::string range(Zxid first, Zxid last) {
  return first == last ? str(first) : str(first) + "-" + str(last);
}

bool is_prefix(const std::vector<Entry>& a, const std::vector<Entry>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  return std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin());
}

}  // namespace

std::string str(Zxid zxid) {
  if (zxid == core::kNoZxid) return "none";
  if (zxid.value < 0) return std::to_string(zxid.value);
  return std::to_string(zxid.epoch().value) + ":" + std::to_string(zxid.counter());
}

// ---- DurableImage ----

DurableImage DurableImage::with(std::int64_t accepted, std::int64_t current, std::vector<Entry> log,
                                Zxid applied) {
  DurableImage d;
  d.accepted = Epoch{accepted};
  d.current = Epoch{current};
  d.log = std::move(log);
  for (const Entry& e : d.log) {
    if (e.zxid <= applied) d.app.push_back(e);
  }
  d.applied = applied;
  return d;
}

bool DurableImage::logs(Zxid zxid) const {
  return std::any_of(log.begin(), log.end(), [&](const Entry& e) { return e.zxid == zxid; });
}

core::DurableState DurableImage::to_core() const {
  core::DurableState st;
  st.accepted_epoch = accepted;
  st.current_epoch = current;
  st.applied_zxid = applied;
  st.log_base = log_base;
  for (const Entry& e : log) st.tail.push_back(core::LoggedEntry{e.zxid, log_entry(e.value)});
  return st;
}

ByteBuffer encode_app_state(const std::vector<Entry>& entries) {
  ByteBuffer out;
  put_u32(out, static_cast<std::uint32_t>(entries.size()));
  for (const Entry& e : entries) {
    const auto v = static_cast<std::uint64_t>(e.zxid.value);
    put_u32(out, static_cast<std::uint32_t>(v >> 32));
    put_u32(out, static_cast<std::uint32_t>(v & 0xffffffffu));
    put_u32(out, static_cast<std::uint32_t>(e.value.size()));
    const Bytes b = as_bytes(e.value);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

ByteBuffer log_entry(const std::string& value) {
  ByteBuffer entry;
  core::encode_entry_header(core::WriteId{}, entry);
  const Bytes b = as_bytes(value);
  entry.insert(entry.end(), b.begin(), b.end());
  return entry;
}

ByteBuffer encode_snapshot(const std::vector<Entry>& entries) {
  ByteBuffer out;
  core::encode_client_records({}, out);
  const ByteBuffer app = encode_app_state(entries);
  out.insert(out.end(), app.begin(), app.end());
  return out;
}

std::optional<std::vector<Entry>> decode_snapshot(Bytes bytes) {
  const auto parts = core::split_snapshot(bytes);
  if (!parts) return std::nullopt;
  return decode_app_state(parts->app_state);
}

std::optional<std::vector<Entry>> decode_app_state(Bytes bytes) {
  if (bytes.size() < 4) return std::nullopt;
  const std::uint32_t count = get_u32(bytes, 0);
  std::size_t at = 4;
  std::vector<Entry> entries;
  for (std::uint32_t k = 0; k < count; ++k) {
    if (bytes.size() - at < 12) return std::nullopt;
    const std::uint64_t hi = get_u32(bytes, at);
    const std::uint64_t lo = get_u32(bytes, at + 4);
    const std::uint32_t len = get_u32(bytes, at + 8);
    at += 12;
    if (bytes.size() - at < len) return std::nullopt;
    entries.push_back(Entry{Zxid{static_cast<std::int64_t>((hi << 32) | lo)},
                            as_string(bytes.subspan(at, len))});
    at += len;
  }
  if (at != bytes.size()) return std::nullopt;
  return entries;
}

// ---- Heard ----

std::vector<Entry> Heard::entries() const {
  return batch_entries(zxid, Bytes(data), BatchOf::log_entries);
}

std::int32_t Heard::int32() const {
  if (type == PacketType::ackepoch) {
    const auto info = core::decode_ackepoch(Bytes(data));
    return info ? info->current_epoch : INT32_MIN;
  }
  const auto v = core::decode_int32(Bytes(data));
  return v ? *v : INT32_MIN;
}

std::string Heard::describe() const {
  if (kind == core::FrameKind::notification) {
    return std::string("vote ") + core::to_string(state) + " n" + std::to_string(leader) + " " +
           str(zxid) + " r" + std::to_string(round) + " e" + std::to_string(peer_epoch.value);
  }
  return std::string(core::to_string(type)) + " " + str(zxid);
}

namespace {
std::optional<Heard> decode_heard(Sid from, SessionId session, Bytes bytes) {
  const auto frame = core::decode_frame(bytes);
  if (!frame) return std::nullopt;
  Heard h;
  h.from = from;
  h.session = session;
  h.kind = frame->kind;
  if (frame->kind == core::FrameKind::notification) {
    const core::Notification& n = frame->notification;
    h.state = n.state;
    h.leader = n.leader.value;
    h.zxid = n.zxid;
    h.round = n.round;
    h.peer_epoch = n.peer_epoch;
  } else {
    h.type = frame->packet.type;
    h.zxid = frame->packet.zxid;
    h.data.assign(frame->packet.data.begin(), frame->packet.data.end());
  }
  return h;
}
}  // namespace

// ---- Transcript ----

std::vector<std::string> Transcript::grep(const std::string& needle) const {
  std::vector<std::string> out;
  for (const std::string& l : lines_) {
    if (l.find(needle) != std::string::npos) out.push_back(l);
  }
  return out;
}

std::vector<std::string> Transcript::grep_any(std::initializer_list<std::string> needles) const {
  std::vector<std::string> out;
  for (const std::string& l : lines_) {
    for (const std::string& n : needles) {
      if (l.find(n) != std::string::npos) {
        out.push_back(l);
        break;
      }
    }
  }
  return out;
}

std::size_t Transcript::find(const std::string& needle, std::size_t from) const {
  for (std::size_t i = from; i < lines_.size(); ++i) {
    if (lines_[i].find(needle) != std::string::npos) return i;
  }
  return lines_.size();
}

::testing::AssertionResult Transcript::in_order(const std::vector<std::string>& needles) const {
  std::size_t at = 0;
  for (const std::string& n : needles) {
    const std::size_t i = find(n, at);
    if (i == lines_.size()) {
      return ::testing::AssertionFailure()
             << "no \"" << n << "\" after line " << at << " of the transcript:\n" << dump();
    }
    at = i + 1;
  }
  return ::testing::AssertionSuccess();
}

std::string Transcript::dump() const {
  std::string s;
  for (const std::string& l : lines_) s += l + "\n";
  return s;
}

// ---- Spec ----

Spec Spec::majority(std::size_t voters, std::size_t observers) {
  Spec s;
  for (std::size_t i = 0; i < voters + observers; ++i) {
    s.members.push_back(core::Member{ServerId{static_cast<Sid>(i + 1)}, i >= voters, 1, -1});
  }
  s.kind = core::QuorumVerifier::Kind::majority;
  return s;
}

Spec Spec::hierarchical(const std::vector<std::vector<Sid>>& groups,
                        const std::map<Sid, std::int64_t>& weights,
                        const std::vector<Sid>& observers) {
  Spec s;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (Sid sid : groups[g]) {
      const auto w = weights.find(sid);
      s.members.push_back(core::Member{ServerId{sid}, false, w == weights.end() ? 1 : w->second,
                                       static_cast<std::int32_t>(g + 1)});
    }
  }
  for (Sid sid : observers) s.members.push_back(core::Member{ServerId{sid}, true, 0, -1});
  std::sort(s.members.begin(), s.members.end(),
            [](const core::Member& a, const core::Member& b) { return a.id < b.id; });
  s.kind = core::QuorumVerifier::Kind::hierarchical;
  return s;
}

Spec& Spec::fake(std::initializer_list<Sid> sids) {
  fakes.insert(sids.begin(), sids.end());
  return *this;
}

// ---- Ensemble ----

// A member's I/O: its disk queue, the network, its application, and the transcript.
// Its callbacks run inside Ensemble::step, which points `ensemble` at itself first (an
// Ensemble may have moved since the member started).
struct Ensemble::MemberEffects final : core::Effects {
  explicit MemberEffects(std::size_t index) : i(index) {}
  Ensemble* ensemble = nullptr;
  std::size_t i;
  std::vector<std::pair<std::size_t, SessionId>> closes;  // carried out after the step

  Member& x() const { return ensemble->members_[i]; }
  std::string me() const { return ensemble->name(x().sid); }

  void send(ServerId peer, SessionId s, Bytes b) override { ensemble->emit(i, peer, s, b); }
  void close_session(ServerId peer, SessionId s, core::Cause why) override {
    if (why != core::Cause::none) {
      ensemble->transcript_.add(me() + " closes " + ensemble->name(peer.value) + ": " +
                                core::to_string(why));
    }
    closes.emplace_back(ensemble->index(peer.value), s);
  }
  void append(Zxid first, const core::EntryRange& batch) override {
    PendingOp op{OutputKind::append, Zxid{first.value + static_cast<std::int64_t>(batch.size()) - 1},
                 {}, {}, {}};
    Zxid z = first;
    for (Bytes entry : batch) {
      const auto v = core::decode_entry(entry);
      op.entries.push_back(Entry{z, v ? as_string(v->value) : "<bad entry header>"});
      z = z.next();
    }
    ensemble->transcript_.add(me() + " append " + range(first, op.zxid));
    x().disk_queue.push_back(std::move(op));
  }
  void truncate(Zxid last_kept) override {
    ensemble->transcript_.add(me() + " truncate " + str(last_kept));
    x().disk_queue.push_back(PendingOp{OutputKind::truncate, last_kept, {}, {}, {}});
  }
  void persist_epochs(Epoch accepted, Epoch current) override {
    ensemble->transcript_.add(me() + " epochs a" + std::to_string(accepted.value) + " c" +
                      std::to_string(current.value));
    x().disk_queue.push_back(PendingOp{OutputKind::persist_epochs, core::kNoZxid, accepted, current, {}});
  }
  void install_snapshot(Zxid at, Bytes, Bytes app_state) override {
    auto state = decode_app_state(app_state);
    if (!state) {
      ensemble->violations_.push_back(me() + " was asked to install an undecodable snapshot");
      state.emplace();
    }
    ensemble->transcript_.add(me() + " snapshot " + str(at));
    x().app = *state;  // the application now runs from the snapshot
    x().disk_queue.push_back(PendingOp{OutputKind::install_snapshot, at, {}, {}, std::move(*state)});
  }
  void snapshot_state(Zxid at, ByteBuffer& out) override {
    std::vector<Entry> upto;
    for (const Entry& en : x().app) {
      if (en.zxid <= at) upto.push_back(en);
    }
    if ((upto.empty() ? core::kZeroZxid : upto.back().zxid) != at) {
      ensemble->violations_.push_back(me() + " asked to send a snapshot at " + str(at) +
                              " but its application is elsewhere");
    }
    const ByteBuffer state = encode_app_state(upto);
    out.insert(out.end(), state.begin(), state.end());
  }
  void apply(Zxid first, const core::EntryRange& values) override {
    Zxid z = first;
    std::vector<Entry> entries;
    for (Bytes v : values) {
      entries.push_back(Entry{z, as_string(v)});
      z = z.next();
    }
    if (!entries.empty()) {
      ensemble->transcript_.add(me() + " deliver " + range(entries.front().zxid, entries.back().zxid));
    }
    for (const Entry& en : entries) ensemble->record_delivery(i, en);
  }
  void role_change(const Output& o) override {
    std::string line = me() + " " + core::to_string(o.role);
    if (o.role == PeerState::following || o.role == PeerState::observing) {
      line += " " + ensemble->name(o.leader.value);
    }
    if (o.accepted != core::kNoEpoch) line += " e" + std::to_string(o.accepted.value);
    if (o.established) line += " established";
    if (o.cause != core::Cause::none) line += std::string(": ") + core::to_string(o.cause);
    ensemble->transcript_.add(line);
    if (o.role == PeerState::leading && o.established) {
      const auto [it, fresh] = ensemble->established_.emplace(o.accepted.value, x().sid);
      if (!fresh && it->second != x().sid) {
        ensemble->violations_.push_back("two leaders established in epoch " +
                                std::to_string(o.accepted.value) + ": " + ensemble->name(it->second) +
                                " and " + me());
      }
    }
  }
  void proposal_accepted(std::uint64_t tag, Zxid zxid) override { ensemble->accepted_[tag] = zxid; }
  void write_done(const Output& o) override {
    if (!ensemble->done_.emplace(o.tag, std::pair(o.outcome, o.zxid)).second) {
      ensemble->violations_.push_back(me() + " ended write #" + std::to_string(o.tag) + " twice");
    }
    const std::vector<Entry>& app = x().app;
    if (o.outcome == core::WriteOutcome::committed &&
        std::none_of(app.begin(), app.end(), [&](const Entry& a) { return a.zxid == o.zxid; })) {
      ensemble->violations_.push_back(me() + " ended write #" + std::to_string(o.tag) + " committed at " +
                              str(o.zxid) + " before it delivered that zxid");
    }
    if (refused(o.outcome)) {
      ensemble->rejected_[o.tag] = o.reason;
      ensemble->transcript_.add(me() + " reject #" + std::to_string(o.tag) + " " + short_reason(o.reason));
    } else {
      ensemble->transcript_.add(me() + " write #" + std::to_string(o.tag) + " " + core::to_string(o.outcome) +
                        (o.outcome == core::WriteOutcome::committed ? " at " + str(o.zxid) : ""));
    }
  }
  void transfer_result(const Output& o) override {
    ensemble->transfers_[o.tag] = o.transfer;
    ensemble->transcript_.add(me() + " transfer #" + std::to_string(o.tag) + " to " + ensemble->name(o.leader.value) +
                      ": " + core::to_string(o.transfer));
  }
};

Ensemble::~Ensemble() = default;
Ensemble::Ensemble(Ensemble&&) noexcept = default;

Ensemble::Ensemble(const Spec& spec) {
  auto cfg = core::ClusterConfig::make(spec.members, spec.kind);
  if (!cfg) throw std::invalid_argument(std::string("bad spec: ") + core::to_string(cfg.error()));
  cluster_ = *cfg;
  for (const core::Member& mem : spec.members) {
    Member x;
    x.sid = mem.id.value;
    x.mode = spec.fakes.count(mem.id.value) ? Mode::fake : Mode::down;
    x.config = spec.tuning;
    x.config.cluster = cluster_;
    x.config.self = mem.id;
    members_.push_back(std::move(x));
  }
  groups_.assign(members_.size(), 0);
}

std::size_t Ensemble::index(Sid sid) const {
  const auto i = cluster_.index_of(ServerId{sid});
  if (!i) throw std::out_of_range("no member " + std::to_string(sid));
  return *i;
}
Ensemble::Member& Ensemble::m(Sid sid) { return members_[index(sid)]; }
const Ensemble::Member& Ensemble::m(Sid sid) const { return members_[index(sid)]; }

std::vector<Sid> Ensemble::sids() const {
  std::vector<Sid> out;
  for (const Member& x : members_) out.push_back(x.sid);
  return out;
}

const core::Node& Ensemble::node(Sid sid) const {
  const Member& x = m(sid);
  if (x.mode != Mode::up || !x.core) throw std::logic_error(name(sid) + " is not up");
  return x.core->node();
}

void Ensemble::start_all() {
  for (Member& x : members_) {
    if (x.mode == Mode::down) start(x.sid);
  }
}

void Ensemble::start(Sid sid) {
  const std::size_t i = index(sid);
  Member& x = members_[i];
  if (x.mode == Mode::up) return;
  if (x.mode == Mode::fake) {
    for (std::size_t j = 0; j < members_.size(); ++j) {
      if (j != i) do_disconnect(i, j);
    }
    x.inbox.clear();
  }
  core::DurableState st = x.durable.to_core();
  // Host recovery rule (node.h): log entries of an epoch above currentEpoch were never
  // acknowledged; the host truncates them before starting the node.
  if (const auto to = core::drop_unacknowledged_tail(st)) {
    std::erase_if(x.durable.log, [&](const Entry& en) { return en.zxid > *to; });
    transcript_.add(name(sid) + " recovery truncate " + str(*to));
  }
  if (!x.effects) x.effects = std::make_unique<MemberEffects>(i);
  try {
    x.core.emplace(x.config, std::move(st), *x.effects);
  } catch (const std::invalid_argument& e) {
    violations_.push_back(name(sid) + " refused to start: " + e.what());
    x.core.reset();
    x.mode = Mode::down;
    transcript_.add(name(sid) + " refused to start");
    return;
  }
  x.mode = Mode::up;
  x.app = x.durable.app;
  x.disk_queue.clear();
  transcript_.add(name(sid) + (x.started_before ? " restart" : " start"));
  x.started_before = true;
  for (std::size_t j = 0; j < members_.size(); ++j) {
    if (j != i) do_connect(i, j);
  }
}

void Ensemble::crash(Sid sid) {
  const std::size_t i = index(sid);
  Member& x = members_[i];
  if (x.mode != Mode::up) return;
  transcript_.add(name(sid) + " crash");
  x.mode = Mode::down;
  x.core.reset();
  x.disk_queue.clear();
  for (std::size_t j = 0; j < members_.size(); ++j) {
    if (j != i) do_disconnect(i, j);
  }
  x.app = x.durable.app;
}

// ---- network ----

bool Ensemble::reachable(Sid a, Sid b) const {
  const std::size_t i = index(a);
  const std::size_t j = index(b);
  return groups_[i] == groups_[j] && !cuts_.count(key(i, j));
}

bool Ensemble::connected(Sid a, Sid b) const { return sessions_.count(key(index(a), index(b))) > 0; }

SessionId Ensemble::session(Sid a, Sid b) const {
  const auto it = sessions_.find(key(index(a), index(b)));
  return it == sessions_.end() ? SessionId{} : it->second;
}

void Ensemble::connect(Sid a, Sid b) { do_connect(index(a), index(b)); }
void Ensemble::disconnect(Sid a, Sid b) { do_disconnect(index(a), index(b)); }

void Ensemble::do_connect(std::size_t a, std::size_t b) {
  if (a == b || sessions_.count(key(a, b))) return;
  const Mode ma = members_[a].mode;
  const Mode mb = members_[b].mode;
  if (ma == Mode::down || mb == Mode::down || (ma == Mode::fake && mb == Mode::fake)) return;
  if (groups_[a] != groups_[b] || cuts_.count(key(a, b))) return;
  const SessionId s{++next_session_};
  sessions_[key(a, b)] = s;
  step(a, core::input::SessionUp{ServerId{sid_of(b)}, s});
  if (sessions_.count(key(a, b)) && sessions_[key(a, b)] == s) {
    step(b, core::input::SessionUp{ServerId{sid_of(a)}, s});
  }
}

void Ensemble::do_disconnect(std::size_t a, std::size_t b) {
  const auto it = sessions_.find(key(a, b));
  if (it == sessions_.end()) return;
  const SessionId s = it->second;
  sessions_.erase(it);
  std::erase_if(net_, [&](const Frame& f) { return f.session == s; });
  step(a, core::input::SessionDown{ServerId{sid_of(b)}, s});
  step(b, core::input::SessionDown{ServerId{sid_of(a)}, s});
}

void Ensemble::partition(const std::vector<std::vector<Sid>>& groups) {
  const int rest = static_cast<int>(groups.size()) + 1;
  std::fill(groups_.begin(), groups_.end(), rest);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (Sid sid : groups[g]) groups_[index(sid)] = static_cast<int>(g) + 1;
  }
  for (std::size_t a = 0; a < members_.size(); ++a) {
    for (std::size_t b = a + 1; b < members_.size(); ++b) {
      if (groups_[a] != groups_[b]) do_disconnect(a, b);
    }
  }
}

void Ensemble::cut(Sid a, Sid b) {
  const std::size_t i = index(a);
  const std::size_t j = index(b);
  cuts_.insert(key(i, j));
  do_disconnect(i, j);
}

void Ensemble::heal() {
  std::fill(groups_.begin(), groups_.end(), 0);
  cuts_.clear();
  reconnect_all();
}

void Ensemble::reconnect_all() {
  for (std::size_t a = 0; a < members_.size(); ++a) {
    for (std::size_t b = a + 1; b < members_.size(); ++b) do_connect(a, b);
  }
}

void Ensemble::hold_link(Sid from, Sid to, bool held) {
  const auto link = std::make_pair(index(from), index(to));
  if (held) held_links_.insert(link);
  else held_links_.erase(link);
}

std::size_t Ensemble::in_flight(Sid from, Sid to) const {
  const std::size_t i = index(from);
  const std::size_t j = index(to);
  return static_cast<std::size_t>(
      std::count_if(net_.begin(), net_.end(), [&](const Frame& f) { return f.from == i && f.to == j; }));
}

std::size_t Ensemble::drop_in_flight(Sid from, Sid to) {
  const std::size_t i = index(from);
  const std::size_t j = index(to);
  return std::erase_if(net_, [&](const Frame& f) { return f.from == i && f.to == j; });
}

void Ensemble::inject(Sid from, Sid to, SessionId session, ByteBuffer frame) {
  step(index(to), core::input::Message{ServerId{from}, session, Bytes(frame)});
}

bool Ensemble::deliverable(const Frame& f) const {
  return !held_links_.count(std::make_pair(f.from, f.to));
}

bool Ensemble::deliver_next() {
  for (auto it = net_.begin(); it != net_.end(); ++it) {
    if (!deliverable(*it)) continue;
    Frame f = std::move(*it);
    net_.erase(it);
    deliver_frame(std::move(f));
    return true;
  }
  return false;
}

bool Ensemble::deliver(Sid from, Sid to) {
  const std::size_t i = index(from);
  const std::size_t j = index(to);
  for (auto it = net_.begin(); it != net_.end(); ++it) {
    if (it->from != i || it->to != j) continue;
    Frame f = std::move(*it);
    net_.erase(it);
    deliver_frame(std::move(f));
    return true;
  }
  return false;
}

void Ensemble::deliver_frame(Frame f) {
  if (filter && !filter(sid_of(f.from), sid_of(f.to), f.bytes)) return;
  Member& to = members_[f.to];
  if (to.mode == Mode::up) {
    step(f.to, core::input::Message{ServerId{sid_of(f.from)}, f.session, Bytes(f.bytes)});
  } else if (to.mode == Mode::fake) {
    auto h = decode_heard(sid_of(f.from), f.session, Bytes(f.bytes));
    if (!h) return;
    if (to.answer_pings && h->is(PacketType::ping)) {
      ByteBuffer pong;
      core::encode_packet(PacketType::ping, h->zxid, Bytes{}, pong);
      fake_send(to.sid, sid_of(f.from), std::move(pong));
    }
    to.inbox.push_back(std::move(*h));
  }
}

void Ensemble::emit(std::size_t from, ServerId peer, SessionId s, Bytes bytes) {
  const std::size_t to = index(peer.value);
  const auto it = sessions_.find(key(from, to));
  if (it == sessions_.end() || it->second != s) return;  // its session has ended: never leaves
  log_frame(from, to, bytes);
  net_.push_back(Frame{next_seq_++, from, to, s, ByteBuffer(bytes.begin(), bytes.end())});
}

void Ensemble::log_frame(std::size_t from, std::size_t to, Bytes bytes) {
  const auto h = decode_heard(sid_of(from), SessionId{}, bytes);
  const std::string prefix = name(sid_of(from)) + ">" + name(sid_of(to)) + " ";
  if (!h) {
    transcript_.add(prefix + "malformed " + std::to_string(bytes.size()) + "B");
    return;
  }
  if (h->kind == core::FrameKind::notification) {
    if (log_notifications) transcript_.add(prefix + h->describe());
    return;
  }
  if (h->is(PacketType::ping) && !log_pings) return;
  transcript_.add(prefix + h->describe());
}

// ---- stepping the core ----

void Ensemble::step(std::size_t i, const core::Input& in) {
  Member& x = members_[i];
  if (x.mode != Mode::up) return;
  x.effects->ensemble = this;
  x.core->step(in);
  // Sessions the node closed go once its outputs are carried out (a close during them would
  // drop frames it sent before the close).
  std::vector<std::pair<std::size_t, SessionId>> closes;
  closes.swap(x.effects->closes);
  for (const auto& [peer, s] : closes) {
    const auto it = sessions_.find(key(i, peer));
    if (it != sessions_.end() && it->second == s) do_disconnect(i, peer);
  }
}

void Ensemble::record_delivery(std::size_t i, const Entry& e) {
  Member& x = members_[i];
  if (!x.app.empty() && e.zxid <= x.app.back().zxid) {
    violations_.push_back(name(x.sid) + " delivered " + str(e.zxid) + " after " +
                          str(x.app.back().zxid));
  }
  x.app.push_back(e);
  const bool snapshot_pending = std::any_of(x.disk_queue.begin(), x.disk_queue.end(), [](const PendingOp& op) {
    return op.kind == OutputKind::install_snapshot;
  });
  if (!snapshot_pending) {
    x.durable.app.push_back(e);
    x.durable.applied = e.zxid;
  }
}

// ---- disks ----

bool Ensemble::complete_one(std::size_t i) {
  Member& x = members_[i];
  if (x.mode != Mode::up || x.disk_queue.empty()) return false;
  PendingOp op = std::move(x.disk_queue.front());
  x.disk_queue.pop_front();
  DurableImage& d = x.durable;
  switch (op.kind) {
    case OutputKind::append:
      for (Entry& e : op.entries) {
        if (e.zxid <= d.last_logged()) {
          violations_.push_back(name(x.sid) + " appended " + str(e.zxid) + " after " +
                                str(d.last_logged()));
        }
        d.log.push_back(std::move(e));
      }
      step(i, core::input::LogDurable{op.zxid});
      break;
    case OutputKind::truncate:
      if (op.zxid < d.log_base) violations_.push_back(name(x.sid) + " truncated below its base");
      std::erase_if(d.log, [&](const Entry& e) { return e.zxid > op.zxid; });
      break;
    case OutputKind::persist_epochs:
      d.accepted = op.accepted;
      d.current = op.current;
      step(i, core::input::EpochsDurable{op.accepted, op.current});
      break;
    case OutputKind::install_snapshot: {
      d.log.clear();
      d.log_base = op.zxid;
      const bool another = std::any_of(x.disk_queue.begin(), x.disk_queue.end(), [](const PendingOp& p) {
        return p.kind == OutputKind::install_snapshot;
      });
      // Deliveries made since the snapshot was issued became durable with it.
      d.app = another ? op.entries : x.app;
      d.applied = op.zxid;
      if (!d.app.empty() && d.app.back().zxid > d.applied) d.applied = d.app.back().zxid;
      step(i, core::input::SnapshotInstalled{op.zxid});
      break;
    }
    default:
      break;
  }
  return true;
}

std::size_t Ensemble::complete_disk(Sid sid, std::size_t ops) {
  const std::size_t i = index(sid);
  std::size_t done = 0;
  while (done < ops && complete_one(i)) ++done;
  return done;
}

// ---- time ----

void Ensemble::settle() {
  for (std::size_t guard = 0; guard < settle_limit; ++guard) {
    bool work = false;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (members_[i].disk_held) continue;
      while (complete_one(i)) work = true;
    }
    if (deliver_next()) work = true;
    if (!work) return;
  }
  if (!stormed_) {
    // Name the busiest link of what is still in flight.
    std::map<std::pair<std::size_t, std::size_t>, std::size_t> links;
    for (const Frame& f : net_) ++links[{f.from, f.to}];
    std::string busiest;
    std::size_t most = 0;
    for (const auto& [link, n] : links) {
      if (n > most) {
        most = n;
        busiest = name(sid_of(link.first)) + ">" + name(sid_of(link.second));
      }
    }
    violations_.push_back("the ensemble did not settle (storm on " + busiest + ")");
  }
  stormed_ = true;
  if (fail_on_storm) ADD_FAILURE() << "the ensemble did not settle: " << violations_.back();
}

bool Ensemble::step_once() {
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (!members_[i].disk_held && complete_one(i)) return true;
  }
  return deliver_next();
}

bool Ensemble::settle_until(const std::function<bool()>& pred) {
  while (!pred()) {
    if (!step_once()) return pred();
  }
  return true;
}

void Ensemble::tick_only() {
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (!frozen_.count(members_[i].sid)) step(i, core::input::Tick{});
  }
}

void Ensemble::freeze(Sid sid, bool frozen) {
  if (frozen) frozen_.insert(sid);
  else frozen_.erase(sid);
  for (Sid other : sids()) {
    if (other == sid) continue;
    hold_link(sid, other, frozen);
    hold_link(other, sid, frozen);
  }
  hold_disk(sid, frozen);
}

void Ensemble::tick(int n) {
  for (int t = 0; t < n; ++t) {
    if (auto_reconnect) reconnect_all();
    tick_only();
    settle();
  }
}

bool Ensemble::run_until(const std::function<bool()>& pred, int max_ticks) {
  for (int t = 0; t < max_ticks; ++t) {
    if (pred()) return true;
    tick();
  }
  return pred();
}

bool Ensemble::serving(Sid sid) const {
  const Member& x = m(sid);
  return x.mode == Mode::up && x.core->node().phase() == ZabPhase::broadcast;
}

std::optional<Sid> Ensemble::leader() const {
  std::optional<Sid> found;
  for (const Member& x : members_) {
    if (x.mode == Mode::up && x.core->node().state() == PeerState::leading &&
        x.core->node().phase() == ZabPhase::broadcast) {
      if (found) return std::nullopt;
      found = x.sid;
    }
  }
  return found;
}

std::optional<Sid> Ensemble::elect(int max_ticks) {
  std::optional<Sid> result;
  const bool ok = run_until(
      [&] {
        const auto l = leader();
        if (!l) return false;
        for (const Member& x : members_) {
          if (x.mode != Mode::up || !reachable(x.sid, *l)) continue;
          if (!serving(x.sid) || x.core->node().leader() != ServerId{*l}) return false;
        }
        result = l;
        return true;
      },
      max_ticks);
  return ok ? result : std::nullopt;
}

Sid Ensemble::follower_of(Sid leader) const {
  for (Sid s : sids()) {
    if (s != leader && state(s) == PeerState::following) return s;
  }
  return 0;
}

// ---- clients ----

std::vector<std::uint64_t> Ensemble::propose(Sid sid, const std::vector<std::string>& values) {
  std::vector<core::ClientProposal> ps;
  std::vector<std::uint64_t> tags;
  for (const std::string& v : values) {
    const Bytes b = as_bytes(v);
    ps.push_back(core::ClientProposal{++next_tag_, b, {}});
    tags.push_back(next_tag_);
  }
  step(index(sid), core::input::ClientProposals{ps});
  return tags;
}

std::uint64_t Ensemble::propose_as(Sid sid, core::WriteId id, const std::string& value) {
  const core::ClientProposal p{++next_tag_, as_bytes(value), id};
  step(index(sid), core::input::ClientProposals{std::span(&p, 1)});
  return p.tag;
}

std::uint64_t Ensemble::transfer(Sid leader, std::optional<Sid> target) {
  const std::uint64_t tag = ++next_tag_;
  step(index(leader), core::input::TransferLeadership{
                          target ? ServerId{*target} : core::kNoServer, tag});
  return tag;
}

std::optional<core::TransferOutcome> Ensemble::transfer_outcome(std::uint64_t tag) const {
  const auto it = transfers_.find(tag);
  return it == transfers_.end() ? std::nullopt
                                : std::optional<core::TransferOutcome>(it->second);
}

std::optional<Zxid> Ensemble::accepted(std::uint64_t tag) const {
  const auto it = accepted_.find(tag);
  return it == accepted_.end() ? std::nullopt : std::optional<Zxid>(it->second);
}

std::optional<core::RejectReason> Ensemble::rejected(std::uint64_t tag) const {
  const auto it = rejected_.find(tag);
  return it == rejected_.end() ? std::nullopt : std::optional<core::RejectReason>(it->second);
}

std::vector<std::string> Ensemble::values(Sid sid) const {
  std::vector<std::string> out;
  for (const Entry& e : m(sid).app) out.push_back(e.value);
  return out;
}

::testing::AssertionResult Ensemble::consistent() const {
  std::ostringstream why;
  for (const std::string& v : violations_) why << "violation: " << v << "\n";
  // Every application (live and durable) must be a prefix of every other: one delivered order.
  std::vector<std::pair<std::string, const std::vector<Entry>*>> apps;
  for (const Member& x : members_) {
    if (x.mode == Mode::fake) continue;
    apps.emplace_back(name(x.sid), &x.app);
    apps.emplace_back(name(x.sid) + "(durable)", &x.durable.app);
  }
  for (std::size_t a = 0; a < apps.size(); ++a) {
    for (std::size_t b = a + 1; b < apps.size(); ++b) {
      if (!is_prefix(*apps[a].second, *apps[b].second)) {
        why << apps[a].first << " and " << apps[b].first << " delivered different sequences\n";
      }
    }
  }
  const std::string s = why.str();
  if (s.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s;
}

// ---- fake members ----

std::vector<Heard> Ensemble::inbox(Sid fake, bool skip_pings) const {
  std::vector<Heard> out;
  for (const Heard& h : m(fake).inbox) {
    if (skip_pings && h.is(PacketType::ping)) continue;
    out.push_back(h);
  }
  return out;
}

std::vector<Heard> Ensemble::take(Sid fake, bool skip_pings) {
  std::vector<Heard> out = inbox(fake, skip_pings);
  m(fake).inbox.clear();
  return out;
}

std::vector<Heard> Ensemble::received(Sid fake, PacketType type) const {
  std::vector<Heard> out;
  for (const Heard& h : m(fake).inbox) {
    if (h.is(type)) out.push_back(h);
  }
  return out;
}

void Ensemble::fake_send(Sid fake, Sid to, ByteBuffer frame) {
  const std::size_t i = index(fake);
  const std::size_t j = index(to);
  if (members_[i].mode != Mode::fake) throw std::logic_error(name(fake) + " is not a fake member");
  const auto it = sessions_.find(key(i, j));
  if (it == sessions_.end()) {
    transcript_.add(name(fake) + ">" + name(to) + " no session");
    return;
  }
  log_frame(i, j, Bytes(frame));
  net_.push_back(Frame{next_seq_++, i, j, it->second, std::move(frame)});
}

void Ensemble::fake_notify(Sid fake, Sid to, PeerState state, Sid leader, Zxid zxid,
                           std::int64_t round, Epoch peer_epoch, std::int32_t version) {
  core::Notification n;
  n.state = state;
  n.leader = ServerId{leader};
  n.zxid = zxid;
  n.round = round;
  n.peer_epoch = peer_epoch;
  n.version = version;
  ByteBuffer b;
  core::encode_notification(n, b);
  fake_send(fake, to, std::move(b));
}

void Ensemble::fake_packet(Sid fake, Sid to, PacketType type, Zxid zxid, Bytes data) {
  ByteBuffer b;
  core::encode_packet(type, zxid, data, b);
  fake_send(fake, to, std::move(b));
}

void Ensemble::fake_followerinfo(Sid fake, Sid to, Epoch accepted, PacketType type) {
  ByteBuffer b;
  core::encode_learner_info(type, Zxid::make(accepted, 0),
                            core::LearnerInfo{ServerId{fake}, 0x10000, 0}, b);
  fake_send(fake, to, std::move(b));
}

void Ensemble::fake_ackepoch(Sid fake, Sid to, Zxid last_logged, std::int32_t current, Zxid applied,
                             std::int32_t answered) {
  ByteBuffer b;
  core::encode_ackepoch(last_logged, core::AckEpochInfo{current, applied, answered}, b);
  fake_send(fake, to, std::move(b));
}

void Ensemble::fake_ackepoch_zk(Sid fake, Sid to, Zxid last_logged, std::int32_t current) {
  ByteBuffer b;
  core::encode_int32_packet(PacketType::ackepoch, last_logged, current, b);
  fake_send(fake, to, std::move(b));
}

void Ensemble::fake_batch(Sid fake, Sid to, PacketType type, Zxid first,
                          const std::vector<std::string>& values) {
  ByteBuffer b;
  core::BatchWriter w(type, first, b);
  for (const std::string& v : values) w.add(Bytes(log_entry(v)));
  w.finish();
  fake_send(fake, to, std::move(b));
}

void Ensemble::fake_snap(Sid fake, Sid to, Zxid zxid, const std::vector<Entry>& app) {
  const ByteBuffer state = encode_snapshot(app);
  fake_packet(fake, to, PacketType::snap, zxid, Bytes(state));
}

void Ensemble::fakes_elect(Sid real, const std::vector<Sid>& fakes) {
  const core::Node& n = node(real);
  const Zxid last = n.last_logged();
  const std::int64_t round = n.round();
  const Epoch epoch = n.current_epoch();
  for (Sid f : fakes) fake_notify(f, real, PeerState::looking, real, last, round, epoch);
  settle();
  for (int t = 0; t < m(real).config.finalize_wait_ticks && state(real) == PeerState::looking; ++t) {
    tick();
  }
}

void Ensemble::fakes_lead(Sid leader, Sid real, const std::vector<Sid>& followers, Epoch epoch,
                          Zxid zxid) {
  for (Sid f : followers) fake_notify(f, real, PeerState::following, leader, zxid, 1, epoch);
  fake_notify(leader, real, PeerState::leading, leader, zxid, 1, epoch);
  settle();
}

std::vector<Heard> Ensemble::fake_follow(Sid fake, Sid to, Epoch accepted, Zxid last_logged,
                                         std::int32_t current, Zxid applied, PacketType type) {
  // Reads what arrives from the leader after `seen` packets, leaving the inbox as it is.
  std::vector<Heard> got;
  std::size_t seen = m(fake).inbox.size();
  auto collect = [&](PacketType want) -> std::optional<Heard> {
    std::optional<Heard> found;
    const auto& inbox = m(fake).inbox;
    for (; seen < inbox.size(); ++seen) {
      const Heard& h = inbox[seen];
      if (h.from != to || h.kind != core::FrameKind::quorum || h.is(PacketType::ping)) continue;
      if (!found && h.type == want) found = h;
      got.push_back(h);
    }
    return found;
  };
  fake_followerinfo(fake, to, accepted, type);
  settle();
  const auto info = collect(PacketType::leaderinfo);
  if (!info) return got;
  fake_ackepoch(fake, to, last_logged, current, applied);
  settle();
  const auto newleader = collect(PacketType::newleader);
  if (!newleader) return got;
  fake_packet(fake, to, PacketType::ack, newleader->zxid);
  settle();
  collect(PacketType::uptodate);
  return got;
}

}  // namespace fastzab::test
