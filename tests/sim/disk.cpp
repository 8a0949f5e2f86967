#include "disk.h"

#include <algorithm>

namespace fastzab::sim {

using core::Zxid;

namespace {
void put_be(core::ByteBuffer& out, std::uint64_t v, int bytes) {
  for (int s = 8 * (bytes - 1); s >= 0; s -= 8) out.push_back(static_cast<std::byte>(v >> s));
}
bool get_be(core::Bytes data, std::size_t& pos, int bytes, std::uint64_t& v) {
  if (pos > data.size() || data.size() - pos < static_cast<std::size_t>(bytes)) return false;
  v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(data[pos++]);
  return true;
}
Zxid key(const core::LoggedEntry& e) { return e.zxid; }
Zxid key(Zxid z) { return z; }
std::string zx(Zxid z) {
  return std::to_string(z.epoch().value) + ":" + std::to_string(z.counter());
}
}  // namespace

const char* to_string(DiskError e) noexcept {
  switch (e) {
    case DiskError::none: return "none";
    case DiskError::eio: return "EIO";
    case DiskError::enospc: return "ENOSPC";
    case DiskError::fsync: return "fsync failure";
    case DiskError::poisoned: return "poisoned log";
  }
  return "?";
}

void encode_snapshot(const AppState& app, core::ByteBuffer& out) {
  put_be(out, static_cast<std::uint64_t>(app.zxid.value), 8);
  put_be(out, app.entries.size(), 4);
  for (const AppEntry& e : app.entries) {
    put_be(out, static_cast<std::uint64_t>(e.zxid.value), 8);
    put_be(out, e.payload.size(), 4);
    for (char c : e.payload) out.push_back(static_cast<std::byte>(c));
  }
}

std::optional<AppState> decode_snapshot(core::Bytes data) {
  AppState app;
  std::size_t pos = 0;
  std::uint64_t v = 0, count = 0;
  if (!get_be(data, pos, 8, v) || !get_be(data, pos, 4, count)) return std::nullopt;
  app.zxid = Zxid{static_cast<std::int64_t>(v)};
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t z = 0, len = 0;
    if (!get_be(data, pos, 8, z) || !get_be(data, pos, 4, len)) return std::nullopt;
    if (data.size() - pos < len) return std::nullopt;
    AppEntry e{Zxid{static_cast<std::int64_t>(z)}, std::string(len, '\0')};
    for (std::size_t k = 0; k < len; ++k) e.payload[k] = static_cast<char>(data[pos + k]);
    pos += len;
    app.entries.push_back(std::move(e));
  }
  if (pos != data.size()) return std::nullopt;
  return app;
}

bool LogImage::holds(Zxid z) const noexcept {
  if (z <= base) return true;
  auto it = std::lower_bound(entries.begin(), entries.end(), z,
                             [](const core::LoggedEntry& e, Zxid v) { return e.zxid < v; });
  return it != entries.end() && it->zxid == z;
}

void LogImage::truncate_after(Zxid z) {
  auto it = std::upper_bound(entries.begin(), entries.end(), z,
                             [](Zxid v, const core::LoggedEntry& e) { return v < e.zxid; });
  entries.erase(it, entries.end());
}

Disk::Disk(std::uint32_t node, Rng& rng, EventQueue& queue, DiskParams params)
    : node_(node), rng_(rng), q_(queue), params_(params) {}

bool Disk::snapshot_pending() const noexcept {
  return std::any_of(ops_.begin(), ops_.end(), [](const Op& o) { return o.kind == OpKind::snapshot; });
}

void Disk::enqueue(Op op, bool instant) {
  op.id = next_op_++;
  Time latency = 0;
  if (!instant) {
    const bool slow = slow_ || (params_.slow_per_mille > 0 && rng_.below(1000) < params_.slow_per_mille);
    latency = slow ? rng_.range(params_.slow_min, params_.slow_max)
                   : rng_.range(params_.latency_min, params_.latency_max);
  }
  if (poisoned_) {
    op.error = DiskError::poisoned;
  } else if (armed_kinds_ != 0) {
    const std::uint8_t kind = op.kind == OpKind::append ? kAppend
                              : op.kind == OpKind::epochs ? kEpochs
                              : op.kind == OpKind::snapshot ? kSnapshot : 0;
    if ((armed_kinds_ & kind) != 0) {
      op.error = armed_error_;
      armed_kinds_ = 0;
    }
  }
  Time at = q_.now() + latency;
  if (at < stall_until_) at = stall_until_;
  if (at < last_done_) at = last_done_;  // completes in issue order
  last_done_ = at;
  op.due = at;
  schedule(op);
  ops_.push_back(std::move(op));
}

void Disk::schedule(const Op& op) {
  Event e;
  e.kind = EventKind::disk_done;
  e.a = node_;
  e.b = static_cast<std::uint32_t>(schedule_gen_);
  e.x = incarnation_;
  e.y = op.id;
  q_.schedule(op.due, std::move(e));
}

void Disk::end_stall() {
  if (stall_until_ <= q_.now()) return;
  stall_until_ = q_.now();
  ++schedule_gen_;
  for (Op& op : ops_) {
    op.due = q_.now();
    schedule(op);
  }
  last_done_ = q_.now();
}

void Disk::stall(Time until) {
  if (until <= stall_until_) return;
  stall_until_ = until;
  // Every queued op completes at the end of the stall at the earliest, in issue order: the old
  // completion events go stale and each op gets a new one.
  ++schedule_gen_;
  Time prev = 0;
  for (Op& op : ops_) {
    op.due = std::max({op.due, until, prev});
    prev = op.due;
    schedule(op);
  }
  last_done_ = std::max(last_done_, until);
}

std::string Disk::append(Zxid first, std::vector<core::LoggedEntry> entries) {
  if (entries.empty()) return "append of zero entries";
  Zxid expect = first;
  for (const core::LoggedEntry& e : entries) {
    if (e.zxid != expect) return "append batch zxids not consecutive";
    expect = expect.next();
  }
  const Zxid last = log_.last();
  if (first <= last) return "append at " + zx(first) + " not above the log's last " + zx(last);
  const bool contiguous = first.epoch() == last.epoch() ? first.value == last.value + 1
                                                         : first.counter() == 1;
  if (!contiguous) return "log hole: append at " + zx(first) + " after " + zx(last);
  log_.entries.insert(log_.entries.end(), entries.begin(), entries.end());
  Op op;
  op.kind = OpKind::append;
  op.zxid = entries.back().zxid;
  op.entries = std::move(entries);
  enqueue(std::move(op), false);
  return {};
}

std::string Disk::truncate(Zxid z) {
  std::string problem;
  if (z < app_.zxid) problem = "truncate to " + zx(z) + " below applied " + zx(app_.zxid);
  log_.truncate_after(z);
  Op op;
  op.kind = OpKind::truncate;
  op.zxid = z;
  enqueue(std::move(op), false);
  return problem;
}

void Disk::persist_epochs(core::Epoch accepted, core::Epoch current) {
  epochs_ = EpochImage{accepted, current};
  Op op;
  op.kind = OpKind::epochs;
  op.epochs = epochs_;
  enqueue(std::move(op), false);
}

void Disk::install_snapshot(Zxid z, AppState app) {
  log_.base = z;
  log_.entries.clear();
  app_ = app;
  Op op;
  op.kind = OpKind::snapshot;
  op.zxid = z;
  op.app = std::move(app);
  enqueue(std::move(op), false);
}

void Disk::deliver(std::vector<AppEntry> entries, const core::ByteBuffer& client_table) {
  if (entries.empty()) return;
  app_.entries.insert(app_.entries.end(), entries.begin(), entries.end());
  app_.zxid = app_.entries.back().zxid;
  app_.client_table = client_table;
  if (!snapshot_pending()) {
    durable_app_.entries.insert(durable_app_.entries.end(), entries.begin(), entries.end());
    durable_app_.zxid = app_.zxid;
    durable_app_.client_table = client_table;
    return;
  }
  Op op;
  op.kind = OpKind::app_deliver;
  op.app_entries = std::move(entries);
  op.app.client_table = client_table;
  enqueue(std::move(op), true);
}

void Disk::apply_durable(Op& op) {
  switch (op.kind) {
    case OpKind::append:
      durable_log_.entries.insert(durable_log_.entries.end(),
                                  std::make_move_iterator(op.entries.begin()),
                                  std::make_move_iterator(op.entries.end()));
      break;
    case OpKind::truncate:
      durable_log_.truncate_after(op.zxid);
      break;
    case OpKind::epochs:
      durable_epochs_ = op.epochs;
      break;
    case OpKind::snapshot:
      durable_log_.base = op.zxid;
      durable_log_.entries.clear();
      durable_app_ = std::move(op.app);
      break;
    case OpKind::app_deliver:
      durable_app_.entries.insert(durable_app_.entries.end(), op.app_entries.begin(),
                                  op.app_entries.end());
      durable_app_.zxid = durable_app_.entries.back().zxid;
      durable_app_.client_table = std::move(op.app.client_table);
      break;
  }
}

Completion Disk::complete(std::uint64_t id) {
  Completion c;
  if (ops_.empty() || ops_.front().id != id) return c;  // lost in a crash
  Op op = std::move(ops_.front());
  ops_.pop_front();
  if (op.error != DiskError::none) return fail(op);
  c.probe_restart = op.kind == OpKind::epochs || op.kind == OpKind::snapshot ||
                    op.kind == OpKind::truncate ||
                    (op.kind == OpKind::append && op.zxid.epoch() > durable_epochs_.current);
  switch (op.kind) {
    case OpKind::append: {
      // LogDurable(z) promises every entry <= z of the node's *current* log is durable: bounded
      // by any truncate issued later and still pending; nothing if a later snapshot replaced it.
      Zxid bound = op.zxid;
      bool replaced = false;
      for (const Op& later : ops_) {
        if (later.kind == OpKind::truncate && later.zxid < bound) bound = later.zxid;
        if (later.kind == OpKind::snapshot) replaced = true;
      }
      if (!replaced) {
        c.kind = Completion::Kind::log_durable;
        c.zxid = bound;
      }
      break;
    }
    case OpKind::epochs:
      c.kind = Completion::Kind::epochs_durable;
      c.accepted = op.epochs.accepted;
      c.current = op.epochs.current;
      break;
    case OpKind::snapshot:
      c.kind = Completion::Kind::snapshot_installed;
      c.zxid = op.zxid;
      break;
    case OpKind::truncate:
    case OpKind::app_deliver:
      break;
  }
  apply_durable(op);
  return c;
}

Completion Disk::fail(Op& op) {
  Completion c;
  c.error = op.error;
  c.id = op.id;
  // kind and its fields: what a success would have reported (only a broken host uses them).
  switch (op.kind) {
    case OpKind::append:
      c.op = "append";
      c.kind = Completion::Kind::log_durable;
      c.zxid = op.zxid;
      break;
    case OpKind::truncate: c.op = "truncate"; break;
    case OpKind::epochs:
      c.op = "epoch write";
      c.kind = Completion::Kind::epochs_durable;
      c.accepted = op.epochs.accepted;
      c.current = op.epochs.current;
      break;
    case OpKind::snapshot:
      c.op = "snapshot save";
      c.kind = Completion::Kind::snapshot_installed;
      c.zxid = op.zxid;
      break;
    case OpKind::app_deliver: c.op = "application write"; break;
  }
  // What of it may have reached the disk anyway: ENOSPC wrote nothing; EIO stopped part-way;
  // after a failed fsync any part of it may have been written back (or dropped) by the kernel.
  // The epoch file and snapshots are replaced atomically: all or nothing.
  if (op.error == DiskError::eio || op.error == DiskError::fsync) {
    if (op.kind == OpKind::append) {
      const std::size_t keep = static_cast<std::size_t>(
          rng_.below(op.entries.size() + (op.error == DiskError::fsync ? 1 : 0)));
      if (keep > 0) {
        op.entries.resize(keep);
        apply_durable(op);
      }
    } else if ((op.kind == OpKind::epochs || op.kind == OpKind::snapshot) && rng_.coin()) {
      apply_durable(op);
      c.probe_restart = true;
    }
  }
  // The log is poisoned: every op after it fails unattempted.
  poisoned_ = true;
  for (Op& later : ops_) later.error = DiskError::poisoned;
  return c;
}

void Disk::crash(std::size_t survivors) {
  for (std::size_t i = 0; i < survivors && !ops_.empty(); ++i) {
    if (ops_.front().error != DiskError::none) break;  // a failed op and all after it: lost
    apply_durable(ops_.front());
    ops_.pop_front();
  }
  ops_.clear();
  ++incarnation_;
  last_done_ = q_.now();
  poisoned_ = false;  // the restarted process reopens the log
  armed_kinds_ = 0;
  stall_until_ = 0;
  log_ = durable_log_;
  epochs_ = durable_epochs_;
  app_ = durable_app_;
}

core::DurableState Disk::durable_state() const {
  core::DurableState st;
  st.accepted_epoch = durable_epochs_.accepted;
  st.current_epoch = durable_epochs_.current;
  st.state_lost = state_lost_;
  st.applied_zxid = durable_app_.zxid;
  st.client_table = durable_app_.client_table;
  st.log_base = durable_log_.base;
  st.tail = durable_log_.entries;
  return st;
}

std::size_t Disk::lose_synced(std::size_t count) {
  auto& e = durable_log_.entries;
  const std::size_t lost = std::min(count, e.size());
  e.resize(e.size() - lost);
  log_ = durable_log_;
  return lost;
}

std::vector<core::LoggedEntry> Disk::recovery_truncate(Zxid truncate_to) {
  auto& e = durable_log_.entries;
  auto it = std::upper_bound(e.begin(), e.end(), truncate_to,
                             [](Zxid v, const core::LoggedEntry& x) { return v < x.zxid; });
  std::vector<core::LoggedEntry> dropped(std::make_move_iterator(it),
                                         std::make_move_iterator(e.end()));
  e.erase(it, e.end());
  log_ = durable_log_;
  return dropped;
}

void Disk::recover() {
  if (durable_app_.zxid > durable_log_.last()) {
    durable_log_.base = durable_app_.zxid;
    durable_log_.entries.clear();
  }
  log_ = durable_log_;
}

core::DurableState Disk::durable_state_above_applied() const {
  core::DurableState st;
  st.accepted_epoch = durable_epochs_.accepted;
  st.current_epoch = durable_epochs_.current;
  st.state_lost = state_lost_;
  st.applied_zxid = durable_app_.zxid;
  st.client_table = durable_app_.client_table;
  st.log_base = durable_log_.base;
  const auto& e = durable_log_.entries;
  auto first = std::upper_bound(e.begin(), e.end(), st.applied_zxid,
                                [](Zxid z, const core::LoggedEntry& x) { return z < x.zxid; });
  if (first != e.begin()) st.log_base = std::prev(first)->zxid;
  st.tail.assign(first, e.end());
  return st;
}

std::string Disk::check_durable() const {
  const EpochImage& e = durable_epochs_;
  if (e.current > e.accepted) {
    return "durable currentEpoch " + std::to_string(e.current.value) + " > acceptedEpoch " +
           std::to_string(e.accepted.value);
  }
  if (durable_app_.zxid < durable_log_.base) {
    return "durable application at " + zx(durable_app_.zxid) + " is behind the log base " +
           zx(durable_log_.base);
  }
  // The log as recovery leaves it: without the entries of epochs above currentEpoch.
  const auto& entries = durable_log_.entries;
  auto kept = entries.end();
  while (kept != entries.begin() && std::prev(kept)->zxid.epoch() > e.current) --kept;
  const Zxid last = kept == entries.begin() ? durable_log_.base : std::prev(kept)->zxid;
  const Zxid applied = durable_app_.zxid;
  if (applied <= last && applied > durable_log_.base &&
      !std::binary_search(entries.begin(), kept, applied,
                          [](const auto& x, const auto& y) { return key(x) < key(y); })) {
    return "durable application at " + zx(applied) + " is not an entry of the log";
  }
  return {};
}

}  // namespace fastzab::sim
