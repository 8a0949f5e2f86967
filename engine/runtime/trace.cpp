#include "engine/runtime/trace.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "engine/core/codec.h"

namespace fastzab::runtime::trace {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

std::uint64_t epoch_of(std::uint64_t zxid) noexcept { return zxid >> 32; }
std::uint64_t counter_of(std::uint64_t zxid) noexcept { return zxid & 0xffffffffu; }

std::uint64_t get_be(const std::byte* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

}  // namespace

// ------------------------------------------------------------------------------------- Table

Table::Table() : slots_(new Slot[kSlots]) {}

void Table::claim(std::uint64_t zxid, Role role) noexcept {
  Slot& s = slot(zxid);
  if (s.zxid.load(kRelaxed) == zxid) return;
  // The sequence lock's write side: the zxid goes to 0 before any field changes (the release
  // fence orders it before them) and to the new zxid after all of them (release store).
  s.zxid.store(0, kRelaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (auto& n : s.ns) n.store(0, kRelaxed);
  s.quorum.store(0, kRelaxed);
  s.ack_count.store(0, kRelaxed);
  for (std::size_t i = 0; i < kMaxAcks; ++i) {
    s.ack_peer[i].store(0, kRelaxed);
    s.ack_ns[i].store(0, kRelaxed);
  }
  s.role.store(static_cast<std::uint8_t>(role), kRelaxed);
  s.zxid.store(zxid, std::memory_order_release);
}

bool Table::holds(std::uint64_t zxid) const noexcept {
  return zxid != 0 && slot(zxid).zxid.load(kRelaxed) == zxid;
}

void Table::stamp(std::uint64_t zxid, Stage st, std::uint64_t ns) noexcept {
  Slot& s = slot(zxid);
  if (zxid == 0 || s.zxid.load(kRelaxed) != zxid) return;
  auto& a = s.ns[static_cast<std::size_t>(st)];
  if (a.load(kRelaxed) == 0) a.store(ns, kRelaxed);
}

void Table::stamp_range(std::uint64_t first, std::uint64_t count, Stage st,
                        std::uint64_t ns) noexcept {
  if (count > kSlots) {
    first += count - kSlots;  // only the last kSlots can still be in the table
    count = kSlots;
  }
  for (std::uint64_t i = 0; i < count; ++i) stamp(first + i, st, ns);
}

void Table::stamp_down(std::uint64_t last, Stage st, std::uint64_t ns) noexcept {
  const std::uint64_t epoch = epoch_of(last);
  std::uint64_t z = last;
  for (std::size_t n = 0; n < kSlots && counter_of(z) != 0 && epoch_of(z) == epoch; ++n, --z) {
    Slot& s = slot(z);
    if (s.zxid.load(kRelaxed) != z) return;
    auto& a = s.ns[static_cast<std::size_t>(st)];
    if (a.load(kRelaxed) != 0) return;
    a.store(ns, kRelaxed);
  }
}

void Table::commit_down(std::uint64_t last, std::uint64_t quorum, std::uint64_t ns) noexcept {
  const std::uint64_t epoch = epoch_of(last);
  std::uint64_t z = last;
  for (std::size_t n = 0; n < kSlots && counter_of(z) != 0 && epoch_of(z) == epoch; ++n, --z) {
    Slot& s = slot(z);
    if (s.zxid.load(kRelaxed) != z) return;
    auto& a = s.ns[static_cast<std::size_t>(Stage::commit)];
    if (a.load(kRelaxed) != 0) return;
    a.store(ns, kRelaxed);
    s.quorum.store(quorum, kRelaxed);
  }
}

bool Table::add_ack(Slot& s, std::uint64_t peer, std::uint64_t ns) noexcept {
  const std::size_t n = s.ack_count.load(kRelaxed);
  for (std::size_t i = 0; i < n; ++i) {
    if (s.ack_peer[i].load(kRelaxed) == peer) return false;  // acked already: so is below
  }
  if (n == kMaxAcks) return false;
  s.ack_peer[n].store(peer, kRelaxed);
  s.ack_ns[n].store(ns, kRelaxed);
  s.ack_count.store(static_cast<std::uint8_t>(n + 1), std::memory_order_release);
  return true;
}

void Table::ack_down(std::uint64_t last, std::uint64_t peer, std::uint64_t ns) noexcept {
  const std::uint64_t epoch = epoch_of(last);
  std::uint64_t z = last;
  for (std::size_t n = 0; n < kSlots && counter_of(z) != 0 && epoch_of(z) == epoch; ++n, --z) {
    Slot& s = slot(z);
    if (s.zxid.load(kRelaxed) != z || !add_ack(s, peer, ns)) return;
  }
}

bool Table::read(std::size_t index, Record& out) const noexcept {
  if (index >= kSlots) return false;
  const Slot& s = slots_[index];
  // The sequence lock's read side: the zxid before (acquire) and after (behind an acquire
  // fence) the copy must be the same non-zero value, else the slot was reset meanwhile.
  const std::uint64_t before = s.zxid.load(std::memory_order_acquire);
  if (before == 0) return false;
  out.zxid = before;
  out.role = static_cast<Role>(s.role.load(kRelaxed));
  for (std::size_t i = 0; i < kStageCount; ++i) out.ns[i] = s.ns[i].load(kRelaxed);
  out.quorum = s.quorum.load(kRelaxed);
  // The count is stored after its entry: a count read here never covers an unwritten entry of
  // this zxid (a reset in between is caught by the check below).
  out.ack_count = std::min<std::size_t>(s.ack_count.load(std::memory_order_acquire), kMaxAcks);
  for (std::size_t i = 0; i < out.ack_count; ++i) {
    out.acks[i] = Ack{s.ack_peer[i].load(kRelaxed), s.ack_ns[i].load(kRelaxed)};
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  return s.zxid.load(kRelaxed) == before;
}

// ------------------------------------------------------------------------------ PendingWrites

PendingWrites::PendingWrites() : entries_(new Entry[kSlots]) {}

void PendingWrites::add(std::uint64_t itag, const ClientStamps& s) noexcept {
  entries_[itag & (kSlots - 1)] = Entry{itag, s, 0};
}

void PendingWrites::forwarded(std::uint64_t itag, std::uint64_t ns) noexcept {
  Entry& e = entries_[itag & (kSlots - 1)];
  if (e.itag == itag) e.forwarded = ns;
}

void PendingWrites::bind(std::uint64_t itag, std::uint64_t zxid, Role role, Table& into) noexcept {
  Entry& e = entries_[itag & (kSlots - 1)];
  if (e.itag != itag || zxid == 0) return;
  into.claim(zxid, role);
  if (e.stamps.sock_read != 0) into.stamp(zxid, Stage::sock_read, e.stamps.sock_read);
  if (e.stamps.ring_push != 0) into.stamp(zxid, Stage::ring_push, e.stamps.ring_push);
  if (e.stamps.ring_pop != 0) into.stamp(zxid, Stage::ring_pop, e.stamps.ring_pop);
  if (e.forwarded != 0) into.stamp(zxid, Stage::forwarded, e.forwarded);
  e.itag = 0;
}

// ------------------------------------------------------------------------------------ peek

std::optional<FramePeek> peek(std::span<const std::byte> frame) noexcept {
  // u8 FrameKind::quorum, i32 type, i64 zxid, i32 data length, data (a PROPOSAL's starts with
  // its i32 entry count): engine/core/codec.h.
  constexpr std::size_t kHead = 1 + 4 + 8 + 4;
  if (frame.size() < kHead || frame[0] != static_cast<std::byte>(core::FrameKind::quorum)) {
    return std::nullopt;
  }
  const auto type = static_cast<std::int32_t>(get_be(frame.data() + 1, 4));
  const std::uint64_t zxid = get_be(frame.data() + 5, 8);
  if (zxid == 0 || (zxid >> 63) != 0) return std::nullopt;
  switch (static_cast<core::PacketType>(type)) {
    case core::PacketType::proposal: {
      if (frame.size() < kHead + 4) return std::nullopt;
      const auto count = static_cast<std::int32_t>(get_be(frame.data() + kHead, 4));
      if (count <= 0) return std::nullopt;
      return FramePeek{FramePeek::Kind::proposal, zxid, static_cast<std::uint64_t>(count)};
    }
    case core::PacketType::ack: return FramePeek{FramePeek::Kind::ack, zxid, 1};
    case core::PacketType::commit: return FramePeek{FramePeek::Kind::commit, zxid, 1};
    default: return std::nullopt;
  }
}

// ------------------------------------------------------------------------------------ dump

void append_line(std::string& out, const Record& r, const Record* app, std::uint64_t server,
                 unsigned group) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "zxid=0x%016" PRIx64 " server=%" PRIu64 " group=%u role=",
                r.zxid, server, group);
  out += buf;
  out += name(r.role);
  const auto field = [&](std::string_view key, std::uint64_t v) {
    out += ' ';
    out += key;
    std::snprintf(buf, sizeof buf, "=%" PRIu64, v);
    out += buf;
  };
  for (std::size_t i = 0; i < kStageCount; ++i) {
    const auto st = static_cast<Stage>(i);
    std::uint64_t v = r.ns[i];
    if (v == 0 && app != nullptr && app->zxid == r.zxid) v = app->ns[i];
    if (st == Stage::commit) {
      // The leader's ACKs go just before the commit they lead to.
      for (std::size_t a = 0; a < r.ack_count; ++a) {
        char key[32];
        std::snprintf(key, sizeof key, "ack.%" PRIu64, r.acks[a].peer);
        field(key, r.acks[a].ns);
      }
    }
    if (v == 0) continue;
    field(name(st), v);
    if (st == Stage::commit && r.quorum != 0) field("quorum", r.quorum);
  }
  out += '\n';
}

}  // namespace fastzab::runtime::trace
