// Commit tracing, end to end without a cluster: the trace table (engine/runtime/trace.h: claims,
// first-wins stamps, the cumulative walks, eviction, frame peeking, a reader racing a writer),
// its `trce` line format read back by the bench's parser (bench/cluster/waterfall.h), the
// parser's refusals with their messages, and the join into a waterfall (paths through the leader
// and through a follower, which follower is used, client stamps, exact percentiles).
#include "bench/cluster/waterfall.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/codec.h"
#include "engine/runtime/trace.h"

namespace fastzab::bench {
namespace {

using runtime::trace::Record;
using runtime::trace::Role;
using runtime::trace::Stage;
using runtime::trace::Table;

constexpr std::uint64_t kE1 = std::uint64_t{1} << 32;  // epoch 1, counter 0

Record read_slot(const Table& t, std::uint64_t zxid) {
  Record r;
  EXPECT_TRUE(t.read(zxid & (runtime::trace::kSlots - 1), r)) << zxid;
  return r;
}

// ------------------------------------------------------------------------------ the table

TEST(TraceTableTest, ClaimStampAndFirstStampWins) {
  Table t;
  t.stamp(kE1 + 1, Stage::durable, 5);  // not claimed: ignored
  Record r;
  EXPECT_FALSE(t.read((kE1 + 1) & (runtime::trace::kSlots - 1), r));
  t.claim(kE1 + 1, Role::leader);
  EXPECT_TRUE(t.holds(kE1 + 1));
  t.stamp(kE1 + 1, Stage::durable, 5);
  t.stamp(kE1 + 1, Stage::durable, 9);  // the first time wins
  t.claim(kE1 + 1, Role::follower);     // already held: keeps its stamps and role
  r = read_slot(t, kE1 + 1);
  EXPECT_EQ(r.zxid, kE1 + 1);
  EXPECT_EQ(r.role, Role::leader);
  EXPECT_EQ(r.at(Stage::durable), 5u);
  EXPECT_EQ(r.at(Stage::commit), 0u);
}

TEST(TraceTableTest, ANewerZxidEvictsTheSlot) {
  Table t;
  t.claim(kE1 + 1, Role::leader);
  t.stamp(kE1 + 1, Stage::proposed, 7);
  t.claim(kE1 + 1 + runtime::trace::kSlots, Role::follower);
  EXPECT_FALSE(t.holds(kE1 + 1));
  const Record r = read_slot(t, kE1 + 1);
  EXPECT_EQ(r.zxid, kE1 + 1 + runtime::trace::kSlots);
  EXPECT_EQ(r.role, Role::follower);
  EXPECT_EQ(r.at(Stage::proposed), 0u);
  t.stamp(kE1 + 1, Stage::durable, 3);  // the evicted zxid's late stamp goes nowhere
  EXPECT_EQ(read_slot(t, kE1 + 1).at(Stage::durable), 0u);
}

TEST(TraceTableTest, WalksDownStopAtStampedUnclaimedAndEpochStart) {
  Table t;
  for (std::uint64_t c = 3; c <= 6; ++c) t.claim(kE1 + c, Role::follower);
  t.stamp_down(kE1 + 4, Stage::durable, 10);  // 4, 3, then 2 is not claimed
  t.stamp_down(kE1 + 6, Stage::durable, 20);  // 6, 5, then 4 is stamped already
  EXPECT_EQ(read_slot(t, kE1 + 3).at(Stage::durable), 10u);
  EXPECT_EQ(read_slot(t, kE1 + 4).at(Stage::durable), 10u);
  EXPECT_EQ(read_slot(t, kE1 + 5).at(Stage::durable), 20u);
  EXPECT_EQ(read_slot(t, kE1 + 6).at(Stage::durable), 20u);

  // Epoch 2's first zxid: the walk never continues into epoch 1's zxids.
  const std::uint64_t e2 = 2 * kE1;
  t.claim(e2 + 1, Role::leader);
  t.claim(kE1 + 0xffffffffu, Role::leader);
  t.stamp_down(e2 + 1, Stage::log_submit, 30);
  EXPECT_EQ(read_slot(t, e2 + 1).at(Stage::log_submit), 30u);
  EXPECT_EQ(read_slot(t, kE1 + 0xffffffffu).at(Stage::log_submit), 0u);

  // Commits carry who completed the quorum; ACKs are per follower and cumulative.
  t.commit_down(kE1 + 6, 3, 40);
  EXPECT_EQ(read_slot(t, kE1 + 5).at(Stage::commit), 40u);
  EXPECT_EQ(read_slot(t, kE1 + 5).quorum, 3u);
  t.ack_down(kE1 + 5, 3, 50);
  t.ack_down(kE1 + 6, 3, 60);
  t.ack_down(kE1 + 6, 1, 70);
  const Record r5 = read_slot(t, kE1 + 5);
  ASSERT_EQ(r5.ack_count, 2u);
  EXPECT_EQ(r5.acks[0].peer, 3u);
  EXPECT_EQ(r5.acks[0].ns, 50u);
  EXPECT_EQ(r5.acks[1].peer, 1u);
  EXPECT_EQ(r5.acks[1].ns, 70u);
  const Record r6 = read_slot(t, kE1 + 6);
  ASSERT_EQ(r6.ack_count, 2u);
  EXPECT_EQ(r6.acks[0].ns, 60u);
}

TEST(TraceTableTest, AcksBeyondTheLimitAreDropped) {
  Table t;
  t.claim(kE1 + 1, Role::leader);
  for (std::uint64_t p = 1; p <= runtime::trace::kMaxAcks + 3; ++p) t.ack_down(kE1 + 1, p, p);
  EXPECT_EQ(read_slot(t, kE1 + 1).ack_count, runtime::trace::kMaxAcks);
}

TEST(TraceTableTest, PendingClientStampsBindToTheZxid) {
  Table t;
  runtime::trace::PendingWrites p;
  const std::uint64_t itag = (std::uint64_t{1} << 63) + 17;
  p.add(itag, runtime::trace::ClientStamps{100, 110, 120});
  p.forwarded(itag, 130);
  p.bind(itag + 1, kE1 + 9, Role::follower, t);  // another tag: nothing
  EXPECT_FALSE(t.holds(kE1 + 9));
  p.bind(itag, kE1 + 9, Role::follower, t);
  const Record r = read_slot(t, kE1 + 9);
  EXPECT_EQ(r.role, Role::follower);
  EXPECT_EQ(r.at(Stage::sock_read), 100u);
  EXPECT_EQ(r.at(Stage::ring_push), 110u);
  EXPECT_EQ(r.at(Stage::ring_pop), 120u);
  EXPECT_EQ(r.at(Stage::forwarded), 130u);
  t.stamp(kE1 + 9, Stage::sock_read, 1);
  p.bind(itag, kE1 + 9, Role::follower, t);  // once only
  EXPECT_EQ(read_slot(t, kE1 + 9).at(Stage::sock_read), 100u);
}

TEST(TraceTableTest, PeekReadsProposalsAcksAndCommitsOnly) {
  using core::PacketType;
  using core::Zxid;
  core::ByteBuffer f;
  core::BatchWriter w(PacketType::proposal, Zxid{static_cast<std::int64_t>(kE1 + 4)}, f);
  const std::byte e[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  for (int i = 0; i < 3; ++i) w.add(core::Bytes(e));
  w.finish();
  auto p = runtime::trace::peek(f);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, runtime::trace::FramePeek::Kind::proposal);
  EXPECT_EQ(p->zxid, kE1 + 4);
  EXPECT_EQ(p->count, 3u);
  for (std::size_t n = 0; n < 21; ++n) {
    EXPECT_FALSE(runtime::trace::peek(core::Bytes(f).first(n))) << n;  // truncated
  }
  f.clear();
  core::encode_packet(PacketType::ack, Zxid{static_cast<std::int64_t>(kE1 + 7)}, {}, f);
  p = runtime::trace::peek(f);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, runtime::trace::FramePeek::Kind::ack);
  EXPECT_EQ(p->zxid, kE1 + 7);
  f.clear();
  core::encode_packet(PacketType::commit, Zxid{static_cast<std::int64_t>(kE1 + 8)}, {}, f);
  p = runtime::trace::peek(f);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, runtime::trace::FramePeek::Kind::commit);
  f.clear();
  core::encode_packet(PacketType::ping, Zxid{static_cast<std::int64_t>(kE1 + 8)}, {}, f);
  EXPECT_FALSE(runtime::trace::peek(f));
  f[0] = std::byte{3};  // not a quorum frame
  EXPECT_FALSE(runtime::trace::peek(f));
  const std::byte forward[18] = {std::byte{4}};
  EXPECT_FALSE(runtime::trace::peek(forward));  // the runtime's forward reply
}

// One thread claims and stamps, another reads: a record read must never mix two zxids' stamps
// (every stamp the writer puts in a slot equals the slot's zxid).
TEST(TraceTableTest, AReaderNeverSeesAMixedSlot) {
  Table t;
  std::atomic<bool> done{false};
  constexpr std::uint64_t kWrites = 300000;
  std::thread writer([&] {
    for (std::uint64_t c = 1; c <= kWrites; ++c) {
      const std::uint64_t z = kE1 + c;
      t.claim(z, Role::leader);
      for (std::size_t s = 0; s < runtime::trace::kStageCount; ++s) {
        t.stamp(z, static_cast<Stage>(s), z);
      }
      t.ack_down(z, 1, z);  // z-1 holds server 1's ACK already: the walk stops at z
      t.commit_down(z, z, z);
    }
    done.store(true);
  });
  std::uint64_t reads = 0, mixed = 0, seen = 0;
  std::mt19937_64 rng(42);
  while (!done.load() || reads < 1000) {
    Record r;
    ++reads;
    if (!t.read(rng() & (runtime::trace::kSlots - 1), r)) continue;
    ++seen;
    for (std::uint64_t v : r.ns) mixed += (v != 0 && v != r.zxid);
    for (std::size_t a = 0; a < r.ack_count; ++a) {
      mixed += r.acks[a].peer != 1 || r.acks[a].ns != r.zxid;
    }
    mixed += r.quorum != 0 && r.quorum != r.zxid;
  }
  writer.join();
  EXPECT_EQ(mixed, 0u) << "of " << seen << " records read";
  EXPECT_GT(seen, 0u);
}

// ------------------------------------------------------------------------- the line format

TEST(TraceFormatTest, TheServersLinesParseBack) {
  Table group;
  Table app;
  const std::uint64_t z = kE1 + 2;
  group.claim(z, Role::leader);
  const Stage order[] = {Stage::sock_read, Stage::ring_push,  Stage::ring_pop, Stage::proposed,
                         Stage::proposal_sent, Stage::log_submit, Stage::durable,
                         Stage::applied,   Stage::reply_handed};
  std::uint64_t ns = 1000;
  for (Stage s : order) group.stamp(z, s, ns += 10);
  group.ack_down(z, 3, 1500);
  group.ack_down(z, 1, 1600);
  group.commit_down(z, 3, 1510);
  app.claim(z, Role::none);
  app.stamp(z, Stage::reply_polled, 1700);
  app.stamp(z, Stage::reply_written, 1710);
  const Record g = read_slot(group, z);
  const Record a = read_slot(app, z);
  std::string text;
  runtime::trace::append_line(text, g, &a, 2, 0);
  EXPECT_EQ(text,
            "zxid=0x0000000100000002 server=2 group=0 role=leader sock_read=1010 ring_push=1020 "
            "ring_pop=1030 proposed=1040 proposal_sent=1050 log_submit=1060 durable=1070 "
            "ack.3=1500 ack.1=1600 commit=1510 quorum=3 applied=1080 reply_handed=1090 "
            "reply_polled=1700 reply_written=1710\n");
  auto lines = parse_trce(text);
  ASSERT_TRUE(lines) << lines.error();
  ASSERT_EQ(lines->size(), 1u);
  const TraceLine& l = (*lines)[0];
  EXPECT_EQ(l.zxid, z);
  EXPECT_EQ(l.server, 2u);
  EXPECT_EQ(l.group, 0u);
  EXPECT_EQ(l.role, Role::leader);
  EXPECT_EQ(l.quorum, 3u);
  ASSERT_EQ(l.acks.size(), 2u);
  EXPECT_EQ(l.acks[1].peer, 1u);
  EXPECT_EQ(l.acks[1].ns, 1600u);
  for (std::size_t i = 0; i < runtime::trace::kStageCount; ++i) {
    const std::uint64_t want = g.ns[i] != 0 ? g.ns[i] : a.ns[i];
    EXPECT_EQ(l.ns[i], want) << runtime::trace::kStageNames[i];
  }
}

TEST(TraceFormatTest, BlankLinesAndCrlfAreFineAndEmptyIsNothing) {
  auto lines = parse_trce("\r\nzxid=0x5 server=1 group=3 role=follower durable=7\r\n  \n");
  ASSERT_TRUE(lines) << lines.error();
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].group, 3u);
  EXPECT_EQ((*lines)[0].at(Stage::durable), 7u);
  auto none = parse_trce("");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(TraceFormatTest, EachBadLineHasItsMessage) {
  const std::string ok = "zxid=0x1 server=1 group=0 role=leader";
  const std::pair<std::string, std::string> cases[] = {
      {"trace is off (zoo.cfg: trace=on)\n", "the server's trace is off (zoo.cfg: trace=on)"},
      {"zxid=0x1 server=1 group=0", "line 1: no role="},
      {"server=1 group=0 role=leader", "line 1: no zxid="},
      {"zxid=0x1 group=0 role=leader", "line 1: no server="},
      {"zxid=0x1 server=1 role=leader", "line 1: no group="},
      {"\n\n" + ok + " bogus=1", "line 3: 'bogus': unknown key"},
      {ok + " durable", "line 1: 'durable': expected key=value"},
      {ok + " =5", "line 1: '=5': expected key=value"},
      {"zxid=1 server=1 group=0 role=leader",
       "line 1: zxid: '1' is not 0x followed by hex digits (non-zero)"},
      {"zxid=0x server=1 group=0 role=leader",
       "line 1: zxid: '0x' is not 0x followed by hex digits (non-zero)"},
      {"zxid=0x0 server=1 group=0 role=leader",
       "line 1: zxid: '0x0' is not 0x followed by hex digits (non-zero)"},
      {"zxid=0x10000000000000000 server=1 group=0 role=leader",
       "line 1: zxid: '0x10000000000000000' is not 0x followed by hex digits (non-zero)"},
      {"zxid=0x1g server=1 group=0 role=leader",
       "line 1: zxid: '0x1g' is not 0x followed by hex digits (non-zero)"},
      {"zxid=0x1 zxid=0x2 server=1 group=0 role=leader", "line 1: zxid: given twice"},
      {"zxid=0x1 server=0 group=0 role=leader", "line 1: server: 0 is not a server id"},
      {"zxid=0x1 server=-1 group=0 role=leader", "line 1: server: '-1' is not a whole number"},
      {"zxid=0x1 server=1 group=4294967296 role=leader",
       "line 1: group: '4294967296' is out of range"},
      {"zxid=0x1 server=1 group=0 role=king",
       "line 1: role: 'king' is not one of leader, follower, observer, looking"},
      {ok + " durable=-5", "line 1: durable: '-5' is not a whole number"},
      {ok + " durable=+5", "line 1: durable: '+5' is not a whole number"},
      {ok + " durable=18446744073709551616",
       "line 1: durable: '18446744073709551616' is not a whole number"},
      {ok + " durable=0", "line 1: durable: 0 is not a time"},
      {ok + " durable=1 durable=2", "line 1: durable: given twice"},
      {ok + " ack.x=5", "line 1: 'ack.x': not ack.<server id>"},
      {ok + " ack.0=5", "line 1: 'ack.0': not ack.<server id>"},
      {ok + " ack.=5", "line 1: 'ack.': not ack.<server id>"},
      {ok + " ack.1=5 ack.1=6", "line 1: ack.1: given twice"},
      {ok + " ack.1=x", "line 1: ack.1: 'x' is not a whole number"},
      {ok + " quorum=1 quorum=2", "line 1: quorum: given twice"},
      {ok + " " + std::string(100, 'k') + "=1",
       "line 1: '" + std::string(40, 'k') + "...': unknown key"},
  };
  for (const auto& [text, message] : cases) {
    auto r = parse_trce(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error(), message) << text;
  }
  std::string many = ok;
  for (std::size_t p = 1; p <= kMaxParsedAcks + 1; ++p) {
    many += " ack." + std::to_string(p) + "=1";
  }
  auto r = parse_trce(many);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "line 1: more than 64 acks");
}

// Random edits of a valid answer: every outcome is a value or an error, never a crash or a read
// out of bounds (run it under ASan to see the latter).
TEST(TraceFormatTest, MangledAnswersNeverCrash) {
  const std::string base =
      "zxid=0x0000000100000002 server=2 group=0 role=leader sock_read=1010 ring_push=1020 "
      "ack.3=1500 commit=1510 quorum=3 applied=1080\n"
      "zxid=0x0000000100000002 server=3 group=0 role=follower proposal_recv=1 ack_sent=9\n";
  const char alphabet[] = "=.x0 9\nzq\r\t-ack";
  std::mt19937_64 rng(7);
  std::size_t ok = 0, bad = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = alphabet[rng() % (sizeof alphabet - 1)]; break;
        case 1: s.erase(at, 1 + rng() % 8); break;
        default: s.insert(at, 1, alphabet[rng() % (sizeof alphabet - 1)]); break;
      }
    }
    auto r = parse_trce(s);
    (r ? ok : bad) += 1;
    if (r) {
      const std::vector<std::string> answers{s};
      (void)compute_waterfall(answers);  // joins whatever parsed, or reports two lines of one server
    }
  }
  EXPECT_GT(ok, 100u);
  EXPECT_GT(bad, 100u);
}

// ------------------------------------------------------------------------------- the join

// A line of a server's answer, from key=value pairs.
std::string line(std::uint64_t zxid, std::uint64_t server, const std::string& role,
                 const std::string& rest, std::uint32_t group = 0) {
  char z[24];
  std::snprintf(z, sizeof z, "0x%016llx", static_cast<unsigned long long>(zxid));
  return std::string("zxid=") + z + " server=" + std::to_string(server) + " group=" +
         std::to_string(group) + " role=" + role + " " + rest + "\n";
}

std::string kv(const std::string& k, std::uint64_t v) { return k + "=" + std::to_string(v) + " "; }

const WaterfallRow* row(const WaterfallSection& s, const std::string& stage,
                        const std::string& from) {
  for (const WaterfallRow& r : s.rows) {
    if (r.stage == stage && r.from == from) return &r;
  }
  return nullptr;
}

// Ten writes to leader 2, followers 1 and 3; the step sock_read - send is 1..10 us so that its
// percentiles are known exactly, and follower 3 completes the quorum.
struct LeaderCluster {
  std::vector<std::string> answers{"", "", ""};  // servers 1, 2, 3
  std::vector<ClientWrite> client;
  LeaderCluster(std::uint64_t quorum = 3, bool ack3_first = true) {
    for (std::uint64_t k = 1; k <= 10; ++k) {
      const std::uint64_t z = kE1 + k;
      const std::uint64_t b = 1'000'000 * k;  // this write's time base
      const std::uint64_t read = b + 1000 * k;
      client.push_back(ClientWrite{z, b, b + 200'000});
      const std::uint64_t ack1 = ack3_first ? b + 90'000 : b + 60'000;
      const std::uint64_t ack3 = ack3_first ? b + 60'000 : b + 90'000;
      answers[1] += line(z, 2, "leader",
                         kv("sock_read", read) + kv("ring_push", read + 2000) +
                             kv("ring_pop", read + 5000) + kv("proposed", read + 6000) +
                             kv("proposal_sent", read + 8000) + kv("log_submit", read + 8500) +
                             kv("durable", read + 70'000) + kv("ack.1", ack1) +
                             kv("ack.3", ack3) + kv("commit", b + 100'000) +
                             kv("quorum", quorum) + kv("applied", b + 101'000) +
                             kv("reply_handed", b + 102'000) + kv("reply_polled", b + 110'000) +
                             kv("reply_written", b + 111'000));
      answers[2] += line(z, 3, "follower",
                         kv("proposal_recv", read + 20'000) + kv("log_submit", read + 21'000) +
                             kv("durable", read + 40'000) + kv("ack_sent", read + 41'000) +
                             kv("commit_recv", b + 120'000) + kv("applied", b + 121'000));
      answers[0] += line(z, 1, "follower",
                         kv("proposal_recv", read + 30'000) + kv("log_submit", read + 31'000) +
                             kv("durable", read + 77'000) + kv("ack_sent", read + 78'000));
    }
  }
};

TEST(WaterfallTest, WritesToTheLeaderFollowTheQuorumFollower) {
  LeaderCluster c;
  auto w = compute_waterfall(c.answers, c.client);
  ASSERT_TRUE(w) << w.error();
  EXPECT_EQ(w->zxids_seen, 10u);
  EXPECT_EQ(w->unjoined, 0u);
  EXPECT_EQ(w->client_matched, 10u);
  ASSERT_EQ(w->sections.size(), 1u);
  const WaterfallSection& s = w->sections[0];
  EXPECT_EQ(s.title, "writes sent to the leader");
  EXPECT_EQ(s.writes, 10u);
  EXPECT_EQ(s.quorum_by_leader_disk, 0u);
  const WaterfallRow* r = row(s, "leader sock_read", "client send");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->samples, 10u);
  EXPECT_EQ(r->p50_ns, 5000);  // 1..10 us: the 5th and the 9th of ten
  EXPECT_EQ(r->p90_ns, 9000);
  // Follower 3's stages (it completed the quorum), not follower 1's.
  r = row(s, "follower proposal_recv", "leader proposal_sent");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->p50_ns, 12'000);
  r = row(s, "follower durable", "follower log_submit");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->p90_ns, 19'000);
  r = row(s, "leader ack_recv", "follower ack_sent");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->samples, 10u);
  r = row(s, "leader commit", "leader ack_recv");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->p50_ns, 40'000);
  r = row(s, "leader durable", "leader log_submit");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->parallel);
  EXPECT_EQ(r->p50_ns, 61'500);
  r = row(s, "client recv", "leader reply_written");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->p50_ns, 89'000);
  r = row(s, "client recv", "client send");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->total);
  EXPECT_EQ(r->p50_ns, 200'000);
  // Replication on the leader, proposal to commit: 94 - k us for k = 1..10.
  r = row(s, "leader commit", "leader proposed");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->total);
  EXPECT_EQ(r->p50_ns, 88'000);
  EXPECT_EQ(r->p90_ns, 92'000);
  // Rows in path order: the first is the client's send.
  EXPECT_EQ(s.rows.front().stage, "leader sock_read");

  const std::string text = format_waterfall(*w);
  EXPECT_NE(text.find("commit waterfall: writes sent to the leader: 10 writes"), std::string::npos)
      << text;
  EXPECT_NE(text.find("leader sock_read           client send                     10        5.0"
                      "        9.0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("| leader durable"), std::string::npos) << text;
}

TEST(WaterfallTest, WithoutClientStampsTheClientRowsAreEmpty) {
  LeaderCluster c;
  auto w = compute_waterfall(c.answers);
  ASSERT_TRUE(w) << w.error();
  const WaterfallSection& s = w->sections[0];
  EXPECT_EQ(row(s, "leader sock_read", "client send")->samples, 0u);
  EXPECT_EQ(row(s, "leader ring_push", "leader sock_read")->samples, 10u);
  EXPECT_NE(format_waterfall(*w).find("client send                      0          -"),
            std::string::npos)
      << format_waterfall(*w);
}

TEST(WaterfallTest, QuorumByTheLeadersOwnDiskUsesTheFirstFollowerToAck) {
  LeaderCluster c(/*quorum=*/2, /*ack3_first=*/false);  // follower 1 acks first
  auto w = compute_waterfall(c.answers, c.client);
  ASSERT_TRUE(w) << w.error();
  const WaterfallSection& s = w->sections[0];
  EXPECT_EQ(s.quorum_by_leader_disk, 10u);
  // Follower 1's step: proposal_recv - proposal_sent = 22 us (follower 3's is 12 us).
  EXPECT_EQ(row(s, "follower proposal_recv", "leader proposal_sent")->p50_ns, 22'000);
}

TEST(WaterfallTest, WritesThroughAFollowerHaveTheirOwnPath) {
  // Server 3 takes the write and forwards it; leader 2; follower 1 completes the quorum.
  const std::uint64_t z = kE1 + 1;
  std::vector<std::string> answers = {
      line(z, 1, "follower",
           kv("proposal_recv", 150) + kv("log_submit", 160) + kv("durable", 200) +
               kv("ack_sent", 210)),
      line(z, 2, "leader",
           kv("proposed", 130) + kv("proposal_sent", 140) + kv("log_submit", 141) +
               kv("durable", 300) + kv("ack.1", 220) + kv("ack.3", 260) + kv("commit", 225) +
               kv("quorum", 1) + kv("applied", 230)),
      line(z, 3, "follower",
           kv("sock_read", 100) + kv("ring_push", 105) + kv("ring_pop", 110) +
               kv("forwarded", 115) + kv("proposal_recv", 152) + kv("log_submit", 161) +
               kv("durable", 240) + kv("ack_sent", 250) + kv("commit_recv", 240) +
               kv("applied", 242) + kv("reply_handed", 270) + kv("reply_polled", 280) +
               kv("reply_written", 290)),
  };
  const ClientWrite cw[] = {{z, 90, 300}};
  auto w = compute_waterfall(answers, cw);
  ASSERT_TRUE(w) << w.error();
  ASSERT_EQ(w->sections.size(), 1u);
  const WaterfallSection& s = w->sections[0];
  EXPECT_EQ(s.title, "writes sent to a follower (entry), forwarded to the leader");
  EXPECT_EQ(row(s, "entry sock_read", "client send")->p50_ns, 10);
  EXPECT_EQ(row(s, "entry forwarded", "entry ring_pop")->p50_ns, 5);
  EXPECT_EQ(row(s, "leader proposed", "entry forwarded")->p50_ns, 15);
  EXPECT_EQ(row(s, "follower proposal_recv", "leader proposal_sent")->p50_ns, 10);  // server 1
  EXPECT_EQ(row(s, "leader commit", "leader ack_recv")->p50_ns, 5);
  EXPECT_EQ(row(s, "entry commit_recv", "leader commit")->p50_ns, 15);
  EXPECT_EQ(row(s, "client recv", "entry reply_written")->p50_ns, 10);
  EXPECT_EQ(row(s, "entry reply_written", "entry sock_read")->p50_ns, 190);
}

TEST(WaterfallTest, ClientStampsPickTheGroupByTheirTimes) {
  // Groups 0 and 1 both committed zxid z; the client's stamps fit group 1's read time only.
  const std::uint64_t z = kE1 + 1;
  std::vector<std::string> answers = {
      line(z, 1, "leader", kv("sock_read", 100) + kv("proposed", 110), 0) +
          line(z, 1, "leader", kv("sock_read", 500) + kv("proposed", 510), 1),
  };
  const ClientWrite cw[] = {{z, 450, 600}};
  auto w = compute_waterfall(answers, cw);
  ASSERT_TRUE(w) << w.error();
  EXPECT_EQ(w->zxids_seen, 2u);
  EXPECT_EQ(w->client_matched, 1u);
  const WaterfallRow* r = row(w->sections[0], "leader sock_read", "client send");
  EXPECT_EQ(r->samples, 1u);
  EXPECT_EQ(r->p50_ns, 50);
}

TEST(WaterfallTest, UnjoinedZxidsAndErrors) {
  const std::uint64_t z = kE1 + 1;
  // Only a follower's line (the leader's answer is missing): counted, not joined.
  std::vector<std::string> answers = {line(z, 1, "follower", kv("proposal_recv", 5))};
  auto w = compute_waterfall(answers);
  ASSERT_TRUE(w) << w.error();
  EXPECT_EQ(w->zxids_seen, 1u);
  EXPECT_EQ(w->unjoined, 1u);
  EXPECT_TRUE(w->sections.empty());
  EXPECT_NE(format_waterfall(*w).find("no write has both"), std::string::npos);

  answers.push_back(line(z, 1, "follower", kv("durable", 6)));  // server 1 again
  w = compute_waterfall(answers);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), "server 1 has two lines for group 0 zxid 0x0000000100000001");

  answers = {line(z, 1, "leader", kv("proposed", 5)), "zxid=0x1 server=2\n"};
  w = compute_waterfall(answers);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), "answer 2: line 1: no group=");
  answers = {"trace is off (zoo.cfg: trace=on)\n"};
  w = compute_waterfall(answers);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), "answer 1: the server's trace is off (zoo.cfg: trace=on)");
}

}  // namespace
}  // namespace fastzab::bench
