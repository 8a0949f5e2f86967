// The client table of exactly-once writes (engine/core/client_table.h): lookups, the bound and
// which clients it forgets, growth, and the encoding that travels in snapshots.
#include "engine/core/client_table.h"

#include <gtest/gtest.h>

namespace fastzab::core {
namespace {

Zxid z(std::uint32_t counter) { return Zxid::make(Epoch{1}, counter); }

TEST(ClientTable, KeepsEachClientsNewestSequence) {
  ClientTable t(8);
  EXPECT_FALSE(t.find(1).has_value());
  t.record(WriteId{1, 5}, z(1));
  t.record(WriteId{2, 1}, z(2));
  t.record(WriteId{1, 6}, z(3));
  t.record(WriteId{1, 4}, z(4));  // older than what is recorded: ignored
  t.record(WriteId{}, z(5));      // anonymous: never recorded
  ASSERT_TRUE(t.find(1).has_value());
  EXPECT_EQ(t.find(1)->seq, 6u);
  EXPECT_EQ(t.find(1)->zxid, z(3));
  EXPECT_EQ(t.find(2)->zxid, z(2));
  EXPECT_FALSE(t.find(0).has_value());
  EXPECT_EQ(t.size(), 2u);
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.find(1).has_value());
}

// At its bound, a new client makes the table forget the quarter whose last write is oldest;
// the others, and the newcomer, stay. Growth on the way there keeps every client.
TEST(ClientTable, ForgetsTheOldestQuarterWhenFull) {
  ClientTable t(100);
  for (std::uint32_t c = 1; c <= 100; ++c) t.record(WriteId{c, 1}, z(c));
  // Client 1 writes again: it is now among the newest.
  t.record(WriteId{1, 2}, z(101));
  for (std::uint32_t c = 1; c <= 100; ++c) ASSERT_TRUE(t.find(c).has_value()) << c;
  t.record(WriteId{1000, 1}, z(102));
  EXPECT_EQ(t.size(), 76u);  // 100 - 25 forgotten + the newcomer
  EXPECT_TRUE(t.find(1).has_value());
  EXPECT_TRUE(t.find(1000).has_value());
  for (std::uint32_t c = 2; c <= 26; ++c) EXPECT_FALSE(t.find(c).has_value()) << c;
  for (std::uint32_t c = 27; c <= 100; ++c) EXPECT_TRUE(t.find(c).has_value()) << c;
}

// Every server that applied the same entries encodes the same bytes; a smaller table decoding a
// larger one keeps the newest clients.
TEST(ClientTable, EncodingRoundTripsAndIsCanonical) {
  ClientTable a(64), b(64);
  for (std::uint32_t c = 1; c <= 40; ++c) a.record(WriteId{c * 7919, c}, z(c));
  for (std::uint32_t c = 1; c <= 40; ++c) b.record(WriteId{c * 7919, c}, z(c));
  ByteBuffer ea, eb;
  a.encode(ea);
  b.encode(eb);
  EXPECT_EQ(ea, eb);
  ClientTable back(64);
  ASSERT_EQ(back.decode(Bytes(ea)), 40u);
  ByteBuffer again;
  back.encode(again);
  EXPECT_EQ(again, ea);
  ClientTable small(8);
  ASSERT_TRUE(small.decode(Bytes(ea)).has_value());
  EXPECT_LE(small.size(), 8u);
  EXPECT_TRUE(small.find(40 * 7919).has_value());
  EXPECT_FALSE(small.find(1 * 7919).has_value());
  // Garbage is refused, and leaves a value, not a crash.
  const ByteBuffer junk{std::byte{1}, std::byte{2}, std::byte{3}};
  EXPECT_FALSE(back.decode(Bytes(junk)).has_value());
}

}  // namespace
}  // namespace fastzab::core
