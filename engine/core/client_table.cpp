#include "client_table.h"

#include <algorithm>
#include <bit>

#include "invariant.h"

namespace fastzab::core {

ClientTable::ClientTable(std::size_t max_clients)
    : max_clients_(std::max<std::size_t>(max_clients, 4)),
      slots_(std::min<std::size_t>(kFirstSlots, std::bit_ceil(2 * max_clients_))) {}

void ClientTable::grow() {
  // Twice as many slots, up to what max_clients needs: a table grows with its clients, so a
  // node with few clients keeps it small, and one at its bound never allocates again.
  scratch_.clear();
  for (const Slot& s : slots_) {
    if (s.client != 0) scratch_.push_back(s);
  }
  slots_.assign(slots_.size() * 2, Slot{});
  for (const Slot& s : scratch_) *slot_for(s.client) = s;
}

std::size_t ClientTable::home(std::uint64_t client) const noexcept {
  // Fibonacci hashing: client ids are often small and consecutive.
  const std::uint64_t h = client * 0x9e3779b97f4a7c15ull;
  return static_cast<std::size_t>(h >> 32) & (slots_.size() - 1);
}

ClientTable::Slot* ClientTable::slot_for(std::uint64_t client) noexcept {
  std::size_t i = home(client);
  while (slots_[i].client != 0 && slots_[i].client != client) i = (i + 1) & (slots_.size() - 1);
  return &slots_[i];
}

std::optional<ClientTable::Last> ClientTable::find(std::uint64_t client) const noexcept {
  if (client == 0) return std::nullopt;
  std::size_t i = home(client);
  while (slots_[i].client != 0) {
    if (slots_[i].client == client) return Last{slots_[i].seq, slots_[i].zxid};
    i = (i + 1) & (slots_.size() - 1);
  }
  return std::nullopt;
}

void ClientTable::record(WriteId id, Zxid zxid) {
  if (id.client == 0) return;
  Slot* s = slot_for(id.client);
  if (s->client == id.client) {
    if (id.seq >= s->seq) {
      s->seq = id.seq;
      s->zxid = zxid;
    }
    return;
  }
  if (size_ == max_clients_) {
    forget_oldest();
    s = slot_for(id.client);
  } else if (2 * (size_ + 1) > slots_.size()) {
    grow();
    s = slot_for(id.client);
  }
  *s = Slot{id.client, id.seq, zxid};
  ++size_;
}

void ClientTable::forget_oldest() {
  // Keep the newest three quarters; rebuilding the table also clears the probe chains of the
  // forgotten clients. Amortized over the max_clients / 4 new clients that fit afterwards.
  ages_.clear();
  scratch_.clear();
  for (const Slot& s : slots_) {
    if (s.client != 0) ages_.push_back(s.zxid);
  }
  FASTZAB_ASSERT_OP(ages_.size(), ==, size_);
  const std::size_t forget = std::max<std::size_t>(size_ / 4, 1);
  std::nth_element(ages_.begin(), ages_.begin() + static_cast<std::ptrdiff_t>(forget - 1),
                   ages_.end());
  const Zxid cutoff = ages_[forget - 1];
  for (Slot& s : slots_) {
    if (s.client != 0 && s.zxid > cutoff) scratch_.push_back(s);
    s = Slot{};
  }
  size_ = 0;
  for (const Slot& s : scratch_) {
    *slot_for(s.client) = s;
    ++size_;
  }
}

void ClientTable::clear() noexcept {
  if (size_ == 0) return;
  std::fill(slots_.begin(), slots_.end(), Slot{});
  size_ = 0;
}

void ClientTable::encode(ByteBuffer& out) const {
  std::vector<ClientRecord> records;
  records.reserve(size_);
  for (const Slot& s : slots_) {
    if (s.client != 0) records.push_back(ClientRecord{s.client, s.seq, s.zxid});
  }
  std::sort(records.begin(), records.end(),
            [](const ClientRecord& a, const ClientRecord& b) { return a.client < b.client; });
  encode_client_records(records, out);
}

Expected<std::size_t, DecodeError> ClientTable::decode(Bytes table) {
  std::vector<ClientRecord> records;
  if (auto r = decode_client_records(table, records); !r) return r;
  // Oldest first, so that a smaller table forgets the oldest as it fills.
  std::sort(records.begin(), records.end(),
            [](const ClientRecord& a, const ClientRecord& b) { return a.zxid < b.zxid; });
  clear();
  for (const ClientRecord& r : records) record(WriteId{r.client, r.seq}, r.zxid);
  return records.size();
}

}  // namespace fastzab::core
