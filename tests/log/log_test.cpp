// Suite `log`: one test (or more) per rule of log/FORMAT.md and log/log.h, mostly on the
// fault-injecting file system (fault_fs.h), and the real-file tests for both writers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "log/crc32c.h"
#include "log/format.h"
#include "log/log.h"
#include "tests/log/fault_fs.h"
#include "tests/log/test_util.h"

namespace fastzab::log {
namespace {

using testing::CrashMode;
using testing::FaultFs;
using testing::payload_for;
using testing::TempDir;

const std::string kDir = "/log";

Options small_options(FileSystem* fs) {
  Options o;
  o.cluster_id = 42;
  o.segment_bytes = 4096;
  o.max_record_bytes = 400;
  o.max_batch_bytes = 512;
  o.fs = fs;
  return o;
}

std::unique_ptr<Log> must_open(const std::string& dir, const Options& o) {
  auto l = Log::open(dir, o);
  if (!l) ADD_FAILURE() << l.error().to_string();
  return l ? std::move(*l) : nullptr;
}

void append_range(Log& log, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t z = from; z <= to; ++z) {
    auto r = log.append(z, payload_for(z));
    ASSERT_TRUE(r) << r.error().to_string();
  }
}

Log::Position must_locate(Log& log, std::uint64_t zxid) {
  auto p = log.locate(zxid);
  if (!p) {
    ADD_FAILURE() << p.error().to_string();
    return {};
  }
  if (!*p) {
    ADD_FAILURE() << "no durable record " << zxid;
    return {};
  }
  return **p;
}

// Every record 1..n is there, in order, with its payload.
void expect_records(Log& log, std::uint64_t n) {
  auto recs = log.read(1, UINT64_MAX);
  ASSERT_TRUE(recs) << recs.error().to_string();
  ASSERT_EQ(recs->size(), n);
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ((*recs)[i].zxid, i + 1);
    ASSERT_EQ((*recs)[i].payload, payload_for(i + 1)) << "zxid " << i + 1;
  }
}

// ---------------------------------------------------------------- CRC32C
TEST(Crc32c, KnownVectors) {
  const char* digits = "123456789";
  EXPECT_EQ(crc32c_extend_portable(0, digits, 9), 0xE3069283u);
  EXPECT_EQ(crc32c(digits, 9), 0xE3069283u);
  std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<unsigned char>(i);
    dec[i] = static_cast<unsigned char>(31 - i);
  }
  // RFC 3720 (iSCSI) B.4 test vectors.
  EXPECT_EQ(crc32c_extend_portable(0, zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c_extend_portable(0, ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c_extend_portable(0, inc.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c_extend_portable(0, dec.data(), 32), 0x113FDB5Cu);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  if (!crc32c_has_sse42()) GTEST_SKIP() << "no SSE4.2 on this CPU: hardware path not checked";
  EXPECT_EQ(crc32c_extend_sse42(0, digits, 9), 0xE3069283u);
  EXPECT_EQ(crc32c_extend_sse42(0, zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c_extend_sse42(0, ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c_extend_sse42(0, inc.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c_extend_sse42(0, dec.data(), 32), 0x113FDB5Cu);
}

TEST(Crc32c, HardwareAndPortableAgreeOnRandomInputs) {
  if (!crc32c_has_sse42()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937_64 rng(1);
  std::vector<unsigned char> buf(4096 + 16);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (int i = 0; i < 2000; ++i) {
    const std::size_t off = rng() % 16, len = rng() % 4096;
    const std::uint32_t seed = static_cast<std::uint32_t>(rng());
    ASSERT_EQ(crc32c_extend_sse42(seed, buf.data() + off, len),
              crc32c_extend_portable(seed, buf.data() + off, len))
        << "offset " << off << " length " << len;
  }
}

TEST(Crc32c, ExtendEqualsWhole) {
  const char* s = "the quick brown fox jumps over the lazy dog";
  const std::size_t n = std::strlen(s);
  for (std::size_t k = 0; k <= n; ++k) {
    EXPECT_EQ(crc32c_extend(crc32c(s, k), s + k, n - k), crc32c(s, n));
    EXPECT_EQ(crc32c_extend_portable(crc32c_extend_portable(0, s, k), s + k, n - k),
              crc32c(s, n));
  }
}

// ---------------------------------------------------------------- format
TEST(Format, SegmentHeaderRoundTripAndChecks) {
  format::SegmentHeader h{format::kVersion, 7, 0x100000001ull, 1 << 20, 4096};
  std::array<std::byte, format::kSegmentHeaderBytes> buf{};
  format::encode(h, buf);
  format::SegmentHeader g;
  ASSERT_EQ(format::decode(buf, g), format::HeaderStatus::ok);
  EXPECT_EQ(g.cluster_id, 7u);
  EXPECT_EQ(g.first_zxid, 0x100000001ull);
  EXPECT_EQ(g.tail_window_bytes, 4096u);
  auto bad = buf;
  bad[0] = std::byte{'X'};
  EXPECT_EQ(format::decode(bad, g), format::HeaderStatus::bad_magic);
  bad = buf;
  bad[8] = std::byte{3};
  EXPECT_EQ(format::decode(bad, g), format::HeaderStatus::bad_version);
  bad[8] = std::byte{0};
  EXPECT_EQ(format::decode(bad, g), format::HeaderStatus::bad_version);
  // Version 1 segments are still read (under their own recovery rule).
  format::encode(format::SegmentHeader{1, 7, 0x100000001ull, 1 << 20, 4096}, bad);
  ASSERT_EQ(format::decode(bad, g), format::HeaderStatus::ok);
  EXPECT_EQ(g.version, 1u);
  bad = buf;
  bad[20] ^= std::byte{1};
  EXPECT_EQ(format::decode(bad, g), format::HeaderStatus::bad_checksum);
}

TEST(Format, RecordHeaderZeroIsEndAndEveryBitIsCovered) {
  std::array<std::byte, format::kRecordHeaderBytes> zero{};
  format::RecordHeader rh;
  EXPECT_EQ(format::decode_record_header(zero.data(), format::kVersion, rh),
            format::RecordStatus::end);
  const auto payload = payload_for(5);
  std::array<std::byte, format::kRecordHeaderBytes> h{};
  format::encode_record_header(5, payload, 1000, h.data());
  ASSERT_EQ(format::decode_record_header(h.data(), format::kVersion, rh), format::RecordStatus::ok);
  EXPECT_EQ(rh.zxid, 5u);
  EXPECT_EQ(rh.length, payload.size());
  EXPECT_EQ(rh.synced_back, 1000u);
  EXPECT_EQ(rh.synced_below(5000), 4000u);
  EXPECT_EQ(rh.synced_below(999), 0u);  // nonsense: "nothing known"
  for (std::size_t bit = 0; bit < h.size() * 8; ++bit) {
    auto c = h;
    c[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    EXPECT_NE(format::decode_record_header(c.data(), format::kVersion, rh),
              format::RecordStatus::ok)
        << bit;
  }
  // The synced-back field: what is known durable, or nothing.
  EXPECT_EQ(format::synced_back(5000, 4000), 1000u);
  EXPECT_EQ(format::synced_back(5000, 5000), 0u);
  EXPECT_EQ(format::synced_back(5000, 0), format::kSyncedUnknown);
  EXPECT_EQ(format::synced_back(1ull << 33, 64), format::kSyncedUnknown);  // does not fit
}

std::string hex_of(std::span<const std::byte> bytes) {
  std::string hex;
  for (auto b : bytes) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(b));
    hex += buf;
  }
  return hex;
}

// A version 1 record header (FORMAT.md, "Version 1 segments"): type 1 and a zero reserved field
// where version 2 has the synced-back field.
void encode_v1_record_header(std::uint64_t zxid, std::span<const std::byte> payload,
                             std::byte* out) {
  const std::uint32_t pcrc = crc32c(payload.data(), payload.size());
  const std::uint32_t len = static_cast<std::uint32_t>(payload.size());
  const std::uint16_t type = 1, zero = 0;
  std::memcpy(out + 4, &pcrc, 4);
  std::memcpy(out + 8, &zxid, 8);
  std::memcpy(out + 16, &len, 4);
  std::memcpy(out + 20, &type, 2);
  std::memcpy(out + 22, &zero, 2);
  const std::uint32_t hcrc = crc32c(out + 4, format::kRecordHeaderBytes - 4);
  std::memcpy(out, &hcrc, 4);
}

TEST(Format, WorkedExampleInFormatMd) {
  // FORMAT.md shows this record byte for byte; keep them in step.
  const std::array<std::byte, 3> payload{std::byte{'a'}, std::byte{'b'}, std::byte{'c'}};
  std::array<std::byte, format::kRecordHeaderBytes> h{};
  format::encode_record_header(0x0000000100000001ull, payload, 0x80, h.data());
  EXPECT_EQ(hex_of(h), "c72bd640b73f4b36" "0100000001000000" "0300000080000000");
  // The version 1 example of the previous FORMAT.md, still read.
  encode_v1_record_header(0x0000000100000001ull, payload, h.data());
  EXPECT_EQ(hex_of(h), "404833cfb73f4b36" "0100000001000000" "0300000001000000");
  format::RecordHeader rh;
  ASSERT_EQ(format::decode_record_header(h.data(), 1, rh), format::RecordStatus::ok);
  EXPECT_EQ(rh.synced_back, format::kSyncedUnknown);
}

// ---------------------------------------------------------------- append, flush, read
TEST(Log, AppendFlushReadReopen) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 100);
    EXPECT_EQ(log->durable_zxid(), 0u);
    auto d = log->flush();
    ASSERT_TRUE(d) << d.error().to_string();
    EXPECT_EQ(*d, 100u);
    EXPECT_GT(log->segment_count(), 3u);  // 4 KiB segments roll over
    expect_records(*log, 100);
  }
  auto log = must_open(kDir, o);
  EXPECT_EQ(log->last_zxid(), 100u);
  EXPECT_EQ(log->durable_zxid(), 100u);
  EXPECT_FALSE(log->recovery().torn_tail_cut);
  expect_records(*log, 100);
}

TEST(Log, GroupCommitIsOneWriteAndOneSyncPerBatch) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  o.segment_bytes = 1 << 20;
  o.max_batch_bytes = 1 << 16;
  auto log = must_open(kDir, o);
  append_range(*log, 1, 1);
  ASSERT_TRUE(log->flush());  // creates the segment
  const auto w = fs.writes, s = fs.syncs;
  const auto written_before = fs.bytes_written;
  const auto before = log->batch_stats();
  append_range(*log, 2, 51);
  ASSERT_TRUE(log->flush());
  EXPECT_EQ(fs.writes - w, 1u);
  EXPECT_EQ(fs.syncs - s, 1u);
  // The batch statistics count that one batch, its 50 records and every byte it wrote.
  const auto after = log->batch_stats();
  EXPECT_EQ(after.batches - before.batches, 1u);
  EXPECT_EQ(after.records - before.records, 50u);
  EXPECT_EQ(after.bytes - before.bytes, fs.bytes_written - written_before);
}

TEST(Log, SyncNoneDoesNotSyncBatches) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  o.segment_bytes = 1 << 20;
  o.sync = SyncMode::none;
  auto log = must_open(kDir, o);
  append_range(*log, 1, 1);
  ASSERT_TRUE(log->flush());
  const auto s = fs.syncs;
  append_range(*log, 2, 51);
  auto d = log->flush();
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, 51u);
  EXPECT_EQ(fs.syncs, s);
  EXPECT_EQ(log->tail_window_bytes(), 0u);
}

TEST(Log, ASecondLogOnTheSameDirectoryIsRefusedOnTheFaultyFileSystemToo) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  auto first = must_open(kDir, o);
  auto second = Log::open(kDir, o);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, errc::in_use);
  first.reset();
  EXPECT_TRUE(Log::open(kDir, o));
}

TEST(Log, ZxidsMustIncreaseAndRecordsFit) {
  FaultFs fs(1);
  auto log = must_open(kDir, small_options(&fs));
  ASSERT_TRUE(log->append(5, payload_for(5)));
  auto r = log->append(5, payload_for(5));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  r = log->append(4, payload_for(4));
  EXPECT_FALSE(r);
  std::vector<std::byte> big(401);
  r = log->append(6, big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_TRUE(log->append(6, std::vector<std::byte>(400)));
}

TEST(Log, BadOptionsAreRefused) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  o.segment_bytes = 100;
  EXPECT_EQ(Log::open(kDir, o).error().code, errc::invalid_argument);
  o = small_options(&fs);
  o.max_record_bytes = 8192;
  EXPECT_EQ(Log::open(kDir, o).error().code, errc::invalid_argument);
}

TEST(Log, ReadRangeAndByteBudgetAndIndex) {
  FaultFs fs(1);
  auto log = must_open(kDir, small_options(&fs));
  append_range(*log, 1, 60);
  ASSERT_TRUE(log->flush());
  auto r = log->read(10, 20);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 11u);
  EXPECT_EQ(r->front().zxid, 10u);
  EXPECT_EQ(r->back().zxid, 20u);
  r = log->read(10, 60, 1);  // a budget smaller than one record still returns one
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().zxid, 10u);
  r = log->read(61, 100);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  auto pos = log->locate(37);
  ASSERT_TRUE(pos && *pos);
  EXPECT_NE((*pos)->file.find("/log/log."), std::string::npos);
  EXPECT_EQ((*pos)->length, payload_for(37).size());
  auto none = log->locate(61);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  // Not yet durable records are not served.
  append_range(*log, 61, 62);
  r = log->read(60, 62);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 1u);
}

// The sparse index (an entry per 4 KiB of segment, then a scan of record headers) against a
// model: random appends (some records larger than a scan chunk), reads of random ranges and
// byte budgets, locate, truncates into the middle of segments, and reopens.
TEST(Log, SparseIndexAgreesWithAModelOnRandomOperations) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    FaultFs fs(seed);
    Options o = small_options(&fs);
    o.segment_bytes = 1 << 20;
    o.max_record_bytes = 200 * 1024;
    o.max_batch_bytes = 64 * 1024;
    std::mt19937_64 rng(seed);
    std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> model;
    std::uint64_t z = 0;
    auto log = must_open(kDir, o);
    for (int op = 0; op < 150; ++op) {
      const auto kind = rng() % 10;
      if (kind < 5) {
        const std::uint64_t n = 1 + rng() % 200;
        for (std::uint64_t i = 0; i < n; ++i) {
          z += 1 + rng() % 3;  // zxids increase, not always by one
          const std::size_t max_len = rng() % 50 == 0 ? 150 * 1024 : 120;
          auto p = payload_for(z, max_len);
          ASSERT_TRUE(log->append(z, p));
          model.emplace_back(z, std::move(p));
        }
        ASSERT_TRUE(log->flush());
      } else if (kind < 8 && !model.empty()) {
        const std::uint64_t from = rng() % (z + 2), to = from + rng() % 400;
        const std::size_t budget = rng() % 2 ? SIZE_MAX : rng() % 20000;
        auto got = log->read(from, to, budget);
        ASSERT_TRUE(got) << got.error().to_string();
        std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> want;
        std::size_t bytes = 0;
        for (const auto& [mz, mp] : model) {
          if (mz < from || mz > to) continue;
          if (!want.empty() && bytes + mp.size() > budget) break;
          want.emplace_back(mz, mp);
          bytes += mp.size();
        }
        ASSERT_EQ(got->size(), want.size()) << "seed " << seed << " read " << from << ".." << to;
        for (std::size_t i = 0; i < want.size(); ++i) {
          ASSERT_EQ((*got)[i].zxid, want[i].first);
          ASSERT_EQ((*got)[i].payload, want[i].second);
        }
        const std::uint64_t probe = rng() % (z + 2);
        auto pos = log->locate(probe);
        ASSERT_TRUE(pos) << pos.error().to_string();
        auto it = std::find_if(model.begin(), model.end(),
                               [&](const auto& e) { return e.first == probe; });
        ASSERT_EQ(pos->has_value(), it != model.end()) << "seed " << seed << " zxid " << probe;
        if (*pos) {
          EXPECT_EQ((*pos)->length, it->second.size());
        }
      } else if (kind == 8 && !model.empty()) {
        const std::uint64_t keep = rng() % (z + 1);
        ASSERT_TRUE(log->truncate(keep));
        while (!model.empty() && model.back().first > keep) model.pop_back();
        z = std::max(keep, model.empty() ? 0 : model.back().first);
        ASSERT_EQ(log->last_zxid(), model.empty() ? 0 : model.back().first);
      } else {
        log.reset();
        log = must_open(kDir, o);
        ASSERT_EQ(log->last_zxid(), model.empty() ? 0 : model.back().first) << "seed " << seed;
        ASSERT_EQ(log->recovery().records, model.size());
      }
      ASSERT_EQ(log->record_count(), model.size()) << "seed " << seed << " op " << op;
    }
  }
}

TEST(Log, ReadDetectsCorruptionOfIndexedRecord) {
  FaultFs fs(1);
  auto log = must_open(kDir, small_options(&fs));
  append_range(*log, 1, 10);
  ASSERT_TRUE(log->flush());
  auto found = log->locate(4);
  ASSERT_TRUE(found && *found && (*found)->length > 0);
  const auto pos = *found;
  fs.flip_bit(pos->file, pos->offset + format::kRecordHeaderBytes, 3);
  auto r = log->read(1, 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find(pos->file + " at offset " + std::to_string(pos->offset)),
            std::string::npos)
      << r.error().detail;
}

// ---------------------------------------------------------------- crashes and torn tails
TEST(Recovery, CrashDropsWhatWasNeverFlushed) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 30);
    ASSERT_TRUE(log->flush());
    append_range(*log, 31, 40);  // queued only
  }
  fs.crash(CrashMode::drop_unsynced);
  auto log = must_open(kDir, o);
  EXPECT_EQ(log->last_zxid(), 30u);
  expect_records(*log, 30);
}

// The core rule, over many seeds: acknowledged records survive any crash of the unsynced tail,
// and recovery cuts the torn part cleanly, so the log accepts appends again.
TEST(Recovery, TornTailIsCutAndAcknowledgedRecordsSurviveSeeds) {
  int cuts = 0;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    FaultFs fs(seed);
    auto o = small_options(&fs);
    std::mt19937_64 rng(seed);
    std::uint64_t acked = 0, z = 0;
    {
      auto log = must_open(kDir, o);
      const int flushes = static_cast<int>(rng() % 6);
      for (int f = 0; f < flushes; ++f) {
        const std::uint64_t n = 1 + rng() % 20;
        append_range(*log, z + 1, z + n);
        z += n;
        auto d = log->flush();
        ASSERT_TRUE(d) << d.error().to_string();
        acked = *d;
      }
      // A last batch whose write lands but whose sync fails (the crash comes before it).
      const std::uint64_t n = 1 + rng() % 20;
      append_range(*log, z + 1, z + n);
      fs.fail_sync_after = 0;
      auto d = log->flush();
      ASSERT_FALSE(d);
      EXPECT_EQ(log->durable_zxid(), acked);
      fs.fail_sync_after = -1;
    }
    fs.crash(seed % 2 ? CrashMode::prefix_and_tear : CrashMode::random_subset);
    auto log = Log::open(kDir, o);
    ASSERT_TRUE(log) << "seed " << seed << ": " << log.error().to_string();
    cuts += (*log)->recovery().torn_tail_cut ? 1 : 0;
    ASSERT_GE((*log)->last_zxid(), acked) << "seed " << seed;
    auto recs = (*log)->read(1, UINT64_MAX);
    ASSERT_TRUE(recs) << recs.error().to_string();
    ASSERT_EQ(recs->size(), (*log)->last_zxid());
    for (std::size_t i = 0; i < recs->size(); ++i) {
      ASSERT_EQ((*recs)[i].zxid, i + 1);
      ASSERT_EQ((*recs)[i].payload, payload_for(i + 1));
    }
    // And it takes appends again, which survive the next reopen.
    const std::uint64_t last = (*log)->last_zxid();
    append_range(**log, last + 1, last + 5);
    ASSERT_TRUE((*log)->flush());
    log->reset();
    auto again = must_open(kDir, o);
    ASSERT_EQ(again->last_zxid(), last + 5) << "seed " << seed;
  }
  EXPECT_GT(cuts, 50);  // the seeds do exercise torn tails
}

// sync=none: a rollover does not wait for the previous segment, so a crash may tear any of the
// trailing sync=none segments. Recovery must still leave a gapless prefix 1..last (never a hole)
// and open without calling it corruption.
TEST(Recovery, SyncNoneCrashLeavesAGaplessPrefixAcrossSegmentsSeeds) {
  int cuts_before_last = 0;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    FaultFs fs(seed);
    auto o = small_options(&fs);
    o.sync = SyncMode::none;
    std::mt19937_64 rng(seed);
    std::uint64_t z = 0;
    {
      auto log = must_open(kDir, o);
      const int flushes = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flushes; ++f) {
        const std::uint64_t n = 1 + rng() % 40;
        append_range(*log, z + 1, z + n);
        z += n;
        auto d = log->flush();
        ASSERT_TRUE(d) << d.error().to_string();
        ASSERT_EQ(*d, z);  // sync=none reports written records as durable
      }
    }
    fs.crash(seed % 3 == 0   ? CrashMode::drop_unsynced
             : seed % 3 == 1 ? CrashMode::prefix_and_tear
                             : CrashMode::random_subset);
    auto log = Log::open(kDir, o);
    ASSERT_TRUE(log) << "seed " << seed << ": " << log.error().to_string();
    const RecoveryReport& rep = (*log)->recovery();
    EXPECT_FALSE(rep.corruption_cut);
    if (rep.segments_dropped > 0) ++cuts_before_last;
    auto recs = (*log)->read(1, UINT64_MAX);
    ASSERT_TRUE(recs) << recs.error().to_string();
    ASSERT_LE((*log)->last_zxid(), z);
    ASSERT_EQ(recs->size(), (*log)->last_zxid()) << "seed " << seed << ": a hole";
    for (std::size_t i = 0; i < recs->size(); ++i) {
      ASSERT_EQ((*recs)[i].zxid, i + 1);
      ASSERT_EQ((*recs)[i].payload, payload_for(i + 1));
    }
    const std::uint64_t last = (*log)->last_zxid();
    append_range(**log, last + 1, last + 5);
    ASSERT_TRUE((*log)->flush());
    log->reset();
    auto again = must_open(kDir, o);
    ASSERT_EQ(again->last_zxid(), last + 5) << "seed " << seed;
  }
  EXPECT_GT(cuts_before_last, 30);  // the seeds do tear segments before the last one
}

// The rollover in sync=none makes the new segment (header sync, directory sync) and nothing
// else: the previous segment is not synced.
TEST(Log, SyncNoneRolloverDoesNotSyncThePreviousSegment) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  o.sync = SyncMode::none;
  auto log = must_open(kDir, o);
  append_range(*log, 1, 1);
  ASSERT_TRUE(log->flush());
  const auto s = fs.syncs;
  const auto segs = log->segment_count();
  append_range(*log, 2, 200);
  ASSERT_TRUE(log->flush());
  const auto made = log->segment_count() - segs;
  ASSERT_GT(made, 3u);
  EXPECT_EQ(fs.syncs - s, made);  // one header sync per new segment
}

// Records acknowledged under sync=fdatasync must survive even when the log was written in
// sync=none before: open() syncs the earlier segments before anything new is acknowledged.
TEST(Recovery, FdatasyncAfterSyncNoneKeepsAcknowledgedRecordsSeeds) {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    FaultFs fs(seed);
    auto o = small_options(&fs);
    o.sync = SyncMode::none;
    {
      auto log = must_open(kDir, o);
      append_range(*log, 1, 120);  // several segments
      ASSERT_TRUE(log->flush());
    }
    o.sync = SyncMode::fdatasync;
    std::uint64_t acked = 0;
    {
      auto log = must_open(kDir, o);
      append_range(*log, 121, 140);
      auto d = log->flush();
      ASSERT_TRUE(d) << d.error().to_string();
      acked = *d;
    }
    ASSERT_EQ(acked, 140u);
    fs.crash(seed % 2 ? CrashMode::random_subset : CrashMode::drop_unsynced);
    auto log = Log::open(kDir, o);
    ASSERT_TRUE(log) << "seed " << seed << ": " << log.error().to_string();
    EXPECT_EQ((*log)->last_zxid(), 140u) << "seed " << seed;
    expect_records(**log, 140);
  }
}

TEST(Recovery, CorruptionInAnEarlierSegmentFailsOpenNamingFileAndOffset) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 100);
    ASSERT_TRUE(log->flush());
  }
  auto pos = [&] {
    auto log = must_open(kDir, o);
    return must_locate(*log, 3);
  }();
  fs.flip_bit(pos.file, pos.offset + 10, 0);
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find(pos.file + " at offset " + std::to_string(pos.offset)),
            std::string::npos)
      << r.error().detail;
  EXPECT_NE(r.error().detail.find("truncate_at_corruption"), std::string::npos);
  // Nothing was changed by the failed open.
  EXPECT_FALSE(Log::open(kDir, o));

  // The operator's named option cuts there; the report says what was cut.
  o.recovery = RecoveryMode::truncate_at_corruption;
  auto log = must_open(kDir, o);
  EXPECT_TRUE(log->recovery().corruption_cut);
  EXPECT_EQ(log->recovery().cut_file, pos.file);
  EXPECT_EQ(log->recovery().cut_offset, pos.offset);
  EXPECT_GT(log->recovery().segments_dropped, 0u);
  EXPECT_EQ(log->last_zxid(), 2u);
  expect_records(*log, 2);
}

TEST(Recovery, CorruptionInLastSegmentBeyondTheTailWindowFailsOpen) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  o.segment_bytes = 1 << 16;  // one segment
  std::uint64_t window = 0;
  {
    auto log = must_open(kDir, o);
    window = log->tail_window_bytes();
    append_range(*log, 1, 100);
    ASSERT_TRUE(log->flush());
    ASSERT_EQ(log->segment_count(), 1u);
  }
  auto log0 = must_open(kDir, o);
  auto early = must_locate(*log0, 2);
  auto late = must_locate(*log0, 100);
  log0.reset();
  ASSERT_GT(late.offset, early.offset + window);
  fs.flip_bit(early.file, early.offset + 30, 5);
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find("at offset " + std::to_string(early.offset)), std::string::npos);
}

// Records 1..50 flushed, then one bit of record 50's header flipped: within the tail window.
Options log_with_bad_last_record(FaultFs& fs) {
  auto o = small_options(&fs);
  o.segment_bytes = 1 << 16;
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 50);
    EXPECT_TRUE(log->flush());
  }
  auto log0 = must_open(kDir, o);
  EXPECT_FALSE(log0->recovery().state_lost);
  auto last = must_locate(*log0, 50);
  log0.reset();
  fs.flip_bit(last.file, last.offset + 9, 1);
  return o;
}

TEST(Recovery, BadRecordWithinTheTailWindowIsTreatedAsTorn) {
  // The documented limit of the rule (FORMAT.md): the last tail_window bytes may be a torn
  // write, so a bad record there is cut. Such records were in flight, never acknowledged,
  // unless the disk corrupted synced data in that window.
  FaultFs fs(1);
  const auto o = log_with_bad_last_record(fs);
  auto log = must_open(kDir, o);
  EXPECT_TRUE(log->recovery().torn_tail_cut);
  EXPECT_EQ(log->last_zxid(), 49u);
}

TEST(Recovery, JunkAfterACleanEndIsCutInTheWindowAndCorruptBeyondIt) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  o.segment_bytes = 1 << 16;
  std::string file;
  std::uint64_t end = 0, window = 0;
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 10);
    ASSERT_TRUE(log->flush());
    auto p = must_locate(*log, 10);
    file = p.file;
    end = p.offset + format::kRecordHeaderBytes + p.length;
    window = log->tail_window_bytes();
  }
  fs.flip_bit(file, end + 100, 0);  // within the window: a page of a lost batch
  {
    auto log = must_open(kDir, o);
    EXPECT_TRUE(log->recovery().torn_tail_cut);
    EXPECT_EQ(log->last_zxid(), 10u);
  }
  // The cut rolled to a new segment for the next appends; make junk far beyond the window in
  // the original (now not last) segment, and in a last one.
  auto l2 = must_open(kDir, o);
  EXPECT_EQ(fs.contents(file)[end + 100], std::byte{0});  // the cut zeroed it
  l2.reset();
  fs.flip_bit(file, end + window + 200, 0);
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find(file), std::string::npos);
}

TEST(Recovery, LeftoverTempFilesAndEmptyLastSegmentAreRemoved) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 5);
    ASSERT_TRUE(log->flush());
  }
  fs.put(kDir + "/log.0000000000000009.tmp", std::vector<std::byte>(10));
  fs.put(kDir + "/snapshot.0000000000000009.tmp", std::vector<std::byte>(10));
  // A segment created (header durable) whose first record never made it.
  std::array<std::byte, format::kSegmentHeaderBytes> head{};
  format::encode(format::SegmentHeader{format::kVersion, 42, 6, 4096, 512}, head);
  std::vector<std::byte> seg(head.begin(), head.end());
  seg.resize(4096);
  fs.put(kDir + "/log.0000000000000006", seg);
  auto log = must_open(kDir, o);
  EXPECT_EQ(log->recovery().temp_files_removed, 2u);
  EXPECT_EQ(log->recovery().empty_segments_removed, 1u);
  EXPECT_FALSE(fs.exists(kDir + "/log.0000000000000006"));
  EXPECT_FALSE(fs.exists(kDir + "/log.0000000000000009.tmp"));
  EXPECT_EQ(log->last_zxid(), 5u);
}

// ---------------------------------------------------------------- the synced-back field (issue 10)
// A tail window as large as the io_uring writer's (there: 4 batches of up to 1 MiB), here from
// one batch of up to 64 KiB: every record of these logs lies within the window of the end.
Options wide_window_options(FileSystem* fs) {
  Options o = small_options(fs);
  o.segment_bytes = 1 << 20;
  o.max_batch_bytes = 64 << 10;
  return o;
}

// Records 1..n, flushed every `every` records, so that each batch is synced (and its
// completion reaped) before the next batch's records are appended.
void append_synced(Log& log, std::uint64_t n, std::uint64_t every) {
  for (std::uint64_t z = 1; z <= n; z += every) {
    append_range(log, z, std::min(n, z + every - 1));
    auto d = log.flush();
    ASSERT_TRUE(d) << d.error().to_string();
  }
}

// The first zxid >= z whose payload is not empty (a byte of it can be flipped).
std::uint64_t with_payload(std::uint64_t z) {
  while (payload_for(z).empty()) ++z;
  return z;
}

// Bug 5 of issue 10: one flipped byte in a synced record well before the end, with later
// records synced, all within the tail window. The window alone cannot tell it from a torn
// write (FORMAT.md's version 1 limit: it was cut with everything after it, silently); the
// synced-back field of the later records can: open() reports corruption and cuts nothing.
TEST(Recovery, FlippedByteBelowASyncedOffsetIsCorruptionNotATornTail) {
  FaultFs fs(1);
  auto o = wide_window_options(&fs);
  std::uint64_t window = 0;
  {
    auto log = must_open(kDir, o);
    window = log->tail_window_bytes();
    append_synced(*log, 300, 10);
    ASSERT_EQ(log->segment_count(), 1u);
  }
  const std::uint64_t bad = with_payload(100);
  auto log0 = must_open(kDir, o);
  const auto pos = must_locate(*log0, bad);
  const auto last = must_locate(*log0, 300);
  log0.reset();
  ASSERT_LT(last.offset, pos.offset + window) << "the test wants the whole tail in the window";
  fs.flip_bit(pos.file, pos.offset + format::kRecordHeaderBytes, 2);
  const auto before = fs.contents(pos.file);

  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r) << "cut as a torn tail: " << describe_cut((*r)->recovery());
  EXPECT_EQ(r.error().code, errc::corrupt);
  const std::string& d = r.error().detail;
  EXPECT_NE(d.find(pos.file + " at offset " + std::to_string(pos.offset) +
                   ": payload checksum mismatch"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("says was synced"), std::string::npos) << d;
  EXPECT_NE(d.find(std::to_string(301 - bad) + " readable records"), std::string::npos) << d;
  // It says exactly how to select the mode that cuts.
  EXPECT_NE(d.find("restart with recovery mode truncate_at_corruption (log::Options::recovery = "
                   "RecoveryMode::truncate_at_corruption)"),
            std::string::npos)
      << d;
  EXPECT_EQ(fs.contents(pos.file), before);  // nothing changed
  o.recovery_setting = "logRecovery";
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("(logRecovery=truncate_at_corruption)"), std::string::npos)
      << r.error().detail;

  // The operator's mode cuts there, and the report names what went.
  o.recovery = RecoveryMode::truncate_at_corruption;
  auto log = must_open(kDir, o);
  const RecoveryReport& rep = log->recovery();
  EXPECT_TRUE(rep.corruption_cut);
  EXPECT_FALSE(rep.torn_tail_cut);
  EXPECT_EQ(rep.cut_offset, pos.offset);
  EXPECT_EQ(rep.records_cut, 301 - bad);
  EXPECT_EQ(rep.cut_first_zxid, bad);
  EXPECT_EQ(rep.cut_last_zxid, 300u);
  EXPECT_EQ(rep.bytes_cut, last.offset + format::kRecordHeaderBytes + last.length - pos.offset);
  EXPECT_EQ(log->last_zxid(), bad - 1);
  expect_records(*log, bad - 1);
  const std::string line = describe_cut(rep);
  EXPECT_NE(line.find(std::to_string(301 - bad) + " records, zxid 0x" +
                      std::string(16 - 2, '0') + "64"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("to 0x000000000000012c"), std::string::npos) << line;
}

// A damaged record header (its length unknown) is found past by searching for the next
// header that checks out.
TEST(Recovery, EveryCutLeavesTheStateLostMarkUntilCleared) {
  // A cut record may have been acknowledged (issue 10, bug 5): the mark that keeps the node from
  // voting is written before the cut and survives reopening until clear_state_lost().
  FaultFs fs(1);
  const auto o = log_with_bad_last_record(fs);
  {
    auto log = must_open(kDir, o);
    EXPECT_TRUE(log->recovery().torn_tail_cut);
    EXPECT_TRUE(log->recovery().state_lost);
  }
  {
    // Nothing is cut this time; the mark from the earlier cut is still there.
    auto log = must_open(kDir, o);
    EXPECT_FALSE(log->recovery().torn_tail_cut);
    EXPECT_TRUE(log->recovery().state_lost);
    ASSERT_TRUE(log->clear_state_lost());
    EXPECT_FALSE(log->recovery().state_lost);
  }
  auto log = must_open(kDir, o);
  EXPECT_FALSE(log->recovery().state_lost);
}

TEST(Recovery, DamagedHeaderBelowASyncedOffsetIsCorruptionToo) {
  FaultFs fs(1);
  auto o = wide_window_options(&fs);
  {
    auto log = must_open(kDir, o);
    append_synced(*log, 300, 10);
  }
  auto log0 = must_open(kDir, o);
  const auto pos = must_locate(*log0, 150);
  log0.reset();
  fs.flip_bit(pos.file, pos.offset + 17, 6);  // the length field
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r) << "cut as a torn tail: " << describe_cut((*r)->recovery());
  EXPECT_NE(r.error().detail.find("record header checksum mismatch"), std::string::npos)
      << r.error().detail;
  o.recovery = RecoveryMode::truncate_at_corruption;
  auto log = must_open(kDir, o);
  EXPECT_TRUE(log->recovery().state_lost);
  // Record 150 cannot be read; 151..300 can.
  EXPECT_EQ(log->recovery().records_cut, 150u);
  EXPECT_EQ(log->recovery().cut_first_zxid, 151u);
  EXPECT_EQ(log->recovery().cut_last_zxid, 300u);
  EXPECT_EQ(log->last_zxid(), 149u);
}

// The other side of the rule: the batch in flight at a crash is still a torn tail, cut, and the
// report names the records that went (never acknowledged: they were never synced).
TEST(Recovery, TornFinalBatchIsStillCutAndReportedSeeds) {
  int cuts = 0, with_records = 0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    FaultFs fs(seed);
    auto o = wide_window_options(&fs);
    {
      auto log = must_open(kDir, o);
      append_synced(*log, 200, 10);
      // The last batch is written, its sync fails, then the machine crashes.
      append_range(*log, 201, 230);
      fs.fail_sync_after = 0;
      ASSERT_FALSE(log->flush());
      fs.fail_sync_after = -1;
    }
    fs.crash(seed % 2 ? CrashMode::prefix_and_tear : CrashMode::random_subset);
    auto log = Log::open(kDir, o);
    ASSERT_TRUE(log) << "seed " << seed << ": " << log.error().to_string();
    const RecoveryReport& rep = (*log)->recovery();
    EXPECT_FALSE(rep.corruption_cut);
    ASSERT_GE((*log)->last_zxid(), 200u) << "seed " << seed;
    expect_records(**log, (*log)->last_zxid());
    if (!rep.torn_tail_cut) {
      EXPECT_EQ(rep.records_cut, 0u);
      EXPECT_TRUE(describe_cut(rep).empty());
      continue;
    }
    ++cuts;
    EXPECT_GT(rep.bytes_cut, 0u);
    EXPECT_LE(rep.records_cut, 230 - (*log)->last_zxid()) << "seed " << seed;
    if (rep.records_cut > 0) {
      ++with_records;
      EXPECT_GT(rep.cut_first_zxid, (*log)->last_zxid()) << "seed " << seed;
      EXPECT_LE(rep.cut_last_zxid, 230u) << "seed " << seed;
      EXPECT_LE(rep.cut_first_zxid, rep.cut_last_zxid);
    }
    EXPECT_NE(describe_cut(rep).find("cut a torn tail: " + std::to_string(rep.records_cut)),
              std::string::npos)
        << describe_cut(rep);
  }
  EXPECT_GT(cuts, 50);
  EXPECT_GT(with_records, 10);  // some crashes kept whole records behind a torn one
}

// Version 1 segments (no synced-back field) are read under their old rule: a bad record in the
// tail window is cut as a torn tail, as before. New records go to a new, version 2 segment.
std::vector<std::byte> v1_segment(std::uint64_t first, std::uint64_t last,
                                  std::uint64_t segment_bytes, std::uint64_t window,
                                  std::map<std::uint64_t, std::uint64_t>* offsets = nullptr) {
  std::vector<std::byte> seg(format::kSegmentHeaderBytes);
  format::encode(format::SegmentHeader{1, 42, first, segment_bytes, window},
                 std::span<std::byte, format::kSegmentHeaderBytes>(seg.data(),
                                                                   format::kSegmentHeaderBytes));
  for (std::uint64_t z = first; z <= last; ++z) {
    const auto p = payload_for(z);
    if (offsets != nullptr) (*offsets)[z] = seg.size();
    const std::size_t at = seg.size();
    seg.resize(at + format::kRecordHeaderBytes);
    encode_v1_record_header(z, p, seg.data() + at);
    seg.insert(seg.end(), p.begin(), p.end());
  }
  seg.resize(segment_bytes);
  return seg;
}

TEST(Recovery, VersionOneSegmentsKeepTheirRuleAndNewRecordsGoToVersionTwo) {
  FaultFs fs(1);
  auto o = wide_window_options(&fs);
  fs.make_dir(kDir);
  std::map<std::uint64_t, std::uint64_t> offsets;
  fs.put(kDir + "/log.0000000000000001", v1_segment(1, 100, o.segment_bytes, 64 << 10, &offsets));
  {
    auto log = must_open(kDir, o);
    EXPECT_EQ(log->recovery().version1_segments, 1u);
    expect_records(*log, 100);
    append_range(*log, 101, 110);
    ASSERT_TRUE(log->flush());
    EXPECT_EQ(log->segment_count(), 2u);  // not appended to the version 1 segment
    expect_records(*log, 110);
  }
  const auto v2 = fs.contents(kDir + "/log.0000000000000065");
  ASSERT_GE(v2.size(), format::kSegmentHeaderBytes);
  format::SegmentHeader h;
  ASSERT_EQ(format::decode(std::span<const std::byte, format::kSegmentHeaderBytes>(
                               v2.data(), format::kSegmentHeaderBytes),
                           h),
            format::HeaderStatus::ok);
  EXPECT_EQ(h.version, format::kVersion);

  // In a version 1 last segment, the same flipped byte as above is cut as a torn tail: that
  // version has no synced-back field to tell otherwise.
  FaultFs old(2);
  old.make_dir(kDir);
  old.put(kDir + "/log.0000000000000001", v1_segment(1, 100, o.segment_bytes, 64 << 10, &offsets));
  const std::uint64_t bad = with_payload(50);
  old.flip_bit(kDir + "/log.0000000000000001", offsets[bad] + format::kRecordHeaderBytes, 0);
  auto o2 = wide_window_options(&old);
  auto log = must_open(kDir, o2);
  EXPECT_TRUE(log->recovery().torn_tail_cut);
  EXPECT_EQ(log->recovery().records_cut, 101 - bad);  // but not silently
  EXPECT_EQ(log->recovery().cut_first_zxid, bad);
  EXPECT_EQ(log->recovery().cut_last_zxid, 100u);
  EXPECT_EQ(log->last_zxid(), bad - 1);
}

// A cut in an earlier sync=none segment removes the later ones; what they held is counted.
TEST(Recovery, SegmentsDroppedBehindACutAreCounted) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 100);
    ASSERT_TRUE(log->flush());
  }
  auto log0 = must_open(kDir, o);
  const auto pos = must_locate(*log0, 3);
  log0.reset();
  fs.flip_bit(pos.file, pos.offset + 10, 0);  // record 3's header
  o.recovery = RecoveryMode::truncate_at_corruption;
  auto log = must_open(kDir, o);
  EXPECT_GT(log->recovery().segments_dropped, 0u);
  EXPECT_EQ(log->recovery().records_cut, 97u);  // 4..100: record 3's header is unreadable
  EXPECT_EQ(log->recovery().cut_first_zxid, 4u);
  EXPECT_EQ(log->recovery().cut_last_zxid, 100u);
  EXPECT_NE(describe_cut(log->recovery()).find("later segments removed"), std::string::npos);
}

TEST(Log, RecoveryModeNamesRoundTrip) {
  for (RecoveryMode m : {RecoveryMode::cut_torn_tail, RecoveryMode::truncate_at_corruption}) {
    EXPECT_EQ(parse_recovery_mode(to_string(m)), m);
  }
  EXPECT_EQ(parse_recovery_mode("cut_torn_tail"), RecoveryMode::cut_torn_tail);
  EXPECT_EQ(parse_recovery_mode("truncate_at_corruption"), RecoveryMode::truncate_at_corruption);
  EXPECT_FALSE(parse_recovery_mode("truncate"));
  EXPECT_FALSE(parse_recovery_mode(""));
}

// ---------------------------------------------------------------- wrong files
TEST(BadInput, WrongMagicVersionAndClusterNameTheFile) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 3);
    ASSERT_TRUE(log->flush());
  }
  const std::string seg = kDir + "/log.0000000000000001";
  auto good = fs.contents(seg);

  auto bytes = good;
  std::memcpy(bytes.data(), "NOTALOG!", 8);
  fs.put(seg, bytes);
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::not_a_log);
  EXPECT_NE(r.error().detail.find(seg), std::string::npos) << r.error().detail;

  bytes = good;
  bytes[8] = std::byte{9};
  fs.put(seg, bytes);
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_version);
  EXPECT_NE(r.error().detail.find(seg), std::string::npos);

  fs.put(seg, good);
  fs.remove(kDir + "/epochs");
  o.cluster_id = 43;
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::wrong_cluster);
  EXPECT_NE(r.error().detail.find(seg), std::string::npos);
  EXPECT_NE(r.error().to_string().find("cluster id 42"), std::string::npos);
  o.cluster_id = 42;
  EXPECT_TRUE(Log::open(kDir, o));
}

TEST(BadInput, EpochFileOfAnotherClusterIsRefused) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  ASSERT_TRUE(Log::open(kDir, o));
  o.cluster_id = 1;
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::wrong_cluster);
  EXPECT_NE(r.error().detail.find(kDir + "/epochs"), std::string::npos);
}

TEST(BadInput, UnwritableDirectoryIsAClearError) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  fs.fail_mkdir_errno = EACCES;
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::io_error);
  EXPECT_NE(r.error().to_string().find("log directory /log"), std::string::npos);
  EXPECT_NE(r.error().to_string().find("Permission denied"), std::string::npos);
  fs.fail_mkdir_errno = 0;
  fs.fail_create_errno = EROFS;  // mkdir works, creating files does not
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("Read-only file system"), std::string::npos);
}

TEST(BadInput, RealDirectoryUnderAFileIsAClearError) {
  TempDir tmp;
  const std::string file = tmp.path() + "/plain";
  std::ofstream(file) << "x";
  Options o;
  auto r = Log::open(file + "/log", o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find(file), std::string::npos) << r.error().to_string();
}

// ---------------------------------------------------------------- poisoning
class Poison : public ::testing::TestWithParam<std::tuple<bool, int>> {};

TEST_P(Poison, FailedWriteOrSyncPoisonsTheLog) {
  const auto [on_sync, err] = GetParam();
  FaultFs fs(1);
  auto o = small_options(&fs);
  auto log = must_open(kDir, o);
  append_range(*log, 1, 10);
  ASSERT_TRUE(log->flush());
  append_range(*log, 11, 12);
  if (on_sync) {
    fs.fail_sync_after = 0;
    fs.sync_errno = err;
  } else {
    fs.fail_write_after = 0;
    fs.write_errno = err;
  }
  auto d = log->flush();
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, err == ENOSPC ? errc::no_space : errc::io_error);
  EXPECT_TRUE(log->poisoned());
  EXPECT_EQ(log->durable_zxid(), 10u);
  // The disk is fine again: the log still refuses, with the original cause in the message.
  fs.fail_sync_after = fs.fail_write_after = -1;
  auto a = log->append(13, payload_for(13));
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, errc::poisoned);
  EXPECT_NE(a.error().to_string().find("injected"), std::string::npos) << a.error().to_string();
  EXPECT_FALSE(log->flush());
  EXPECT_FALSE(log->truncate(5));
  EXPECT_EQ(log->durable_zxid(), 10u);
  // A restart recovers every acknowledged record.
  log.reset();
  fs.crash(CrashMode::prefix_and_tear);
  auto again = must_open(kDir, o);
  EXPECT_GE(again->last_zxid(), 10u);
}

INSTANTIATE_TEST_SUITE_P(WriteAndSync, Poison,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(EIO, ENOSPC)));

TEST(Poison, FullDiskWhenCreatingASegmentIsAnError) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  auto log = must_open(kDir, o);
  fs.fail_allocate_errno = ENOSPC;
  append_range(*log, 1, 3);
  auto d = log->flush();
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, errc::no_space);
  EXPECT_NE(d.error().to_string().find("fallocate"), std::string::npos);
  EXPECT_TRUE(log->poisoned());
}

// ---------------------------------------------------------------- truncate
TEST(Truncate, DropsRecordsAboveZxidDurablyAcrossSegments) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  auto log = must_open(kDir, o);
  append_range(*log, 1, 100);
  ASSERT_TRUE(log->flush());
  const auto segs = log->segment_count();
  ASSERT_TRUE(log->truncate(40));
  EXPECT_LT(log->segment_count(), segs);
  EXPECT_EQ(log->last_zxid(), 40u);
  EXPECT_EQ(log->durable_zxid(), 40u);
  expect_records(*log, 40);
  // New records after the cut, with other payloads than the dropped ones had.
  for (std::uint64_t z = 41; z <= 45; ++z) ASSERT_TRUE(log->append(z, payload_for(z + 1000)));
  ASSERT_TRUE(log->flush());
  log.reset();
  fs.crash(CrashMode::drop_unsynced);
  log = must_open(kDir, o);
  EXPECT_FALSE(log->recovery().torn_tail_cut);
  EXPECT_EQ(log->last_zxid(), 45u);
  auto r = log->read(41, 45);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].payload, payload_for(1041));
  ASSERT_TRUE(log->truncate(0));
  EXPECT_EQ(log->last_zxid(), 0u);
  EXPECT_EQ(log->segment_count(), 0u);
  log.reset();
  log = must_open(kDir, o);
  EXPECT_EQ(log->last_zxid(), 0u);
}

TEST(Truncate, QueuedRecordsAreWrittenThenCut) {
  FaultFs fs(1);
  auto log = must_open(kDir, small_options(&fs));
  append_range(*log, 1, 20);
  ASSERT_TRUE(log->truncate(15));
  EXPECT_EQ(log->last_zxid(), 15u);
  expect_records(*log, 15);
}

// ---------------------------------------------------------------- epochs
TEST(Epochs, WrittenInPlaceAndReadBack) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    EXPECT_EQ(log->epochs(), (Epochs{0, 0}));
    ASSERT_TRUE(log->write_epochs({3, 2}));
    EXPECT_EQ(log->epochs(), (Epochs{3, 2}));
    EXPECT_EQ(log->write_epochs({3, 4}).error().code, errc::invalid_argument);
  }
  fs.crash(CrashMode::drop_unsynced);
  {
    auto log = must_open(kDir, o);
    EXPECT_EQ(log->epochs(), (Epochs{3, 2}));
    // A failed sync: the log is not poisoned and still reports the epochs known durable; what a
    // crash leaves of the unsynced slot is the business of TornSlotWriteReadsBackOldOrNew.
    fs.fail_sync_after = 0;
    EXPECT_FALSE(log->write_epochs({4, 4}));
    fs.fail_sync_after = -1;
    EXPECT_FALSE(log->poisoned());
    EXPECT_EQ(log->epochs(), (Epochs{3, 2}));
  }
  fs.crash(CrashMode::drop_unsynced);
  auto log = must_open(kDir, o);
  EXPECT_EQ(log->epochs(), (Epochs{3, 2}));
  log.reset();  // (a second open while it is open is refused: in_use)
  // One damaged slot is a torn write (the next test); both is corruption.
  fs.flip_bit(kDir + "/epochs", 30, 2);
  fs.flip_bit(kDir + "/epochs", format::kEpochSlotStride + 30, 2);
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find("/log/epochs"), std::string::npos);
}

// The slot record write_epochs() would write next into `slot` (sequence after `seq`).
std::array<std::byte, format::kEpochSlotBytes> slot_record(std::uint64_t seq, Epochs e) {
  std::array<std::byte, format::kEpochSlotBytes> rec{};
  format::encode(format::EpochRecord{42, seq, e.accepted, e.current}, rec);
  return rec;
}

TEST(Epochs, WriteEpochsIsOneInPlaceWriteAndOneSync) {
  FaultFs fs(1);
  auto log = must_open(kDir, small_options(&fs));
  const auto names = *fs.list(kDir);
  const auto bytes = fs.contents(kDir + "/epochs").size();
  EXPECT_EQ(bytes, format::kEpochFileBytes);
  for (std::uint64_t k = 1; k <= 5; ++k) {
    const auto w = fs.writes, s = fs.syncs;
    ASSERT_TRUE(log->write_epochs({k, k - 1}));
    EXPECT_EQ(fs.writes - w, 1u);
    EXPECT_EQ(fs.syncs - s, 1u);
    // No new file, no rename: the directory is untouched, the file keeps its size.
    EXPECT_EQ(*fs.list(kDir), names);
    EXPECT_EQ(fs.contents(kDir + "/epochs").size(), bytes);
    // The slots alternate, the newer holding k: slot 0 had sequence 1 at creation.
    const auto image = fs.contents(kDir + "/epochs");
    const std::size_t slot = k % 2;
    const auto want = slot_record(k + 1, {k, k - 1});
    EXPECT_EQ(std::memcmp(image.data() + slot * format::kEpochSlotStride, want.data(),
                          want.size()),
              0)
        << "write " << k;
  }
}

// Puts `bytes` into slot `slot` of the epoch file as it is now, durably.
void damage_slot(FaultFs& fs, std::size_t slot, std::span<const std::byte> bytes,
                 std::size_t at = 0) {
  auto image = fs.contents(kDir + "/epochs");
  std::memcpy(image.data() + slot * format::kEpochSlotStride + at, bytes.data(), bytes.size());
  fs.put(kDir + "/epochs", image);
}

// A whole slot (checksum good) whose currentEpoch is above its acceptedEpoch was not written by
// write_epochs(), which refuses that: open() reports corruption naming the slot, in either slot,
// newest or not, and never hands such epochs to the protocol. (Found by the log fuzzer.)
TEST(Epochs, CurrentAboveAcceptedInAWholeSlotIsCorruption) {
  for (std::size_t slot : {std::size_t{0}, std::size_t{1}}) {
    for (std::uint64_t seq : {std::uint64_t{1}, std::uint64_t{50}}) {
      FaultFs fs(1);
      { must_open(kDir, small_options(&fs))->write_epochs({5, 4}); }
      damage_slot(fs, slot, slot_record(seq, {5, 275977418571773}));
      auto r = Log::open(kDir, small_options(&fs));
      ASSERT_FALSE(r) << "slot " << slot << " seq " << seq;
      EXPECT_EQ(r.error().code, errc::corrupt);
      EXPECT_NE(r.error().detail.find("slot " + std::to_string(slot) +
                                      ": currentEpoch 275977418571773 above acceptedEpoch 5"),
                std::string::npos)
          << r.error().detail;
    }
  }
}

// A crash in the middle of write_epochs() can leave any bytes in the slot being written (never
// in the other: its own block). Whatever they are, the other slot's epochs come back, and the
// next write (to the damaged slot again) works.
TEST(Epochs, TornWriteOfEitherSlotRecoversTheOtherSlot) {
  std::mt19937_64 rng(7);
  int torn = 0;
  for (std::size_t target = 0; target < 2; ++target) {
    // What a torn write can leave: a prefix of the new record over the old one (the fault
    // layer's model), a suffix of it (sectors or cache lines landing out of order), random
    // garbage over the record or the whole block, zeros, the new record with one bit wrong.
    for (int damage = 0; damage < 6; ++damage) {
      for (int trial = 0; trial < 20; ++trial) {
        FaultFs fs(static_cast<std::uint64_t>(trial));
        auto o = small_options(&fs);
        auto log = must_open(kDir, o);
        // Slot 0 holds sequence 1 after creation; each write moves to the other slot. Leave
        // the newest in the slot that is not the target.
        const std::uint64_t writes = target == 0 ? 1 + 2 * (trial % 3) : 2 * (trial % 3);
        for (std::uint64_t k = 1; k <= writes; ++k) ASSERT_TRUE(log->write_epochs({10 + k, k}));
        const Epochs old = log->epochs();
        log.reset();
        const auto rec = slot_record(writes + 2, {99, 98});
        std::vector<std::byte> bytes;
        switch (damage) {
          case 0:
            bytes.assign(rec.begin(), rec.begin() + static_cast<std::ptrdiff_t>(
                                                       1 + rng() % (rec.size() - 1)));
            damage_slot(fs, target, bytes);
            break;
          case 1: {
            const std::size_t from = 1 + rng() % (rec.size() - 1);
            bytes.assign(rec.begin() + static_cast<std::ptrdiff_t>(from), rec.end());
            damage_slot(fs, target, bytes, from);
            break;
          }
          case 2:
          case 3:
            bytes.resize(damage == 2 ? rec.size() : format::kEpochSlotStride);
            for (auto& b : bytes) b = static_cast<std::byte>(rng());
            damage_slot(fs, target, bytes);
            break;
          case 4:
            bytes.assign(rec.size(), std::byte{0});
            damage_slot(fs, target, bytes);
            break;
          default: {
            bytes.assign(rec.begin(), rec.end());
            bytes[rng() % bytes.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
            damage_slot(fs, target, bytes);
            break;
          }
        }
        // A tear that left the slot's old record (the prefix written equals the old bytes) or
        // the whole new one is no tear: the old or the new epochs, and nothing is ignored.
        const auto image = fs.contents(kDir + "/epochs");
        const std::span<const std::byte, format::kEpochSlotBytes> left(
            image.data() + target * format::kEpochSlotStride, format::kEpochSlotBytes);
        format::EpochRecord e;
        const bool valid = format::decode(left, e) == format::HeaderStatus::ok;
        const bool is_new = valid && e.sequence == writes + 2;
        log = must_open(kDir, o);
        ASSERT_TRUE(log) << "slot " << target << " damage " << damage << " trial " << trial;
        EXPECT_EQ(log->epochs(), is_new ? (Epochs{99, 98}) : old)
            << "slot " << target << " damage " << damage;
        EXPECT_EQ(log->recovery().epoch_slot_ignored,
                  !valid && !format::all_zero(left.data(), left.size()));
        torn += valid ? 0 : 1;
        ASSERT_TRUE(log->write_epochs({200, 100}));
        log.reset();
        fs.crash(CrashMode::drop_unsynced);
        log = must_open(kDir, o);
        EXPECT_EQ(log->epochs(), (Epochs{200, 100})) << "slot " << target << " damage " << damage;
        EXPECT_FALSE(log->recovery().epoch_slot_ignored);
      }
    }
  }
  EXPECT_GT(torn, 150);  // of 240: most damage leaves an invalid slot
}

TEST(Epochs, WholeNewRecordInTheOtherSlotWins) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  must_open(kDir, o).reset();
  // write_epochs() crashed after its record reached the disk, before it returned.
  damage_slot(fs, 1, slot_record(2, {5, 4}));
  auto log = must_open(kDir, o);
  EXPECT_EQ(log->epochs(), (Epochs{5, 4}));
  ASSERT_TRUE(log->write_epochs({6, 6}));  // into slot 0, sequence 3
  log.reset();
  log = must_open(kDir, o);
  EXPECT_EQ(log->epochs(), (Epochs{6, 6}));
}

TEST(Epochs, BothSlotsBadOrOddFilesAreCorruptionNamingTheFile) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    ASSERT_TRUE(log->write_epochs({2, 1}));
  }
  const std::string path = kDir + "/epochs";
  const auto good = fs.contents(path);
  std::vector<std::byte> junk(format::kEpochSlotBytes, std::byte{0x5a});
  // Both slots torn (or one torn and the other never written).
  damage_slot(fs, 0, junk);
  damage_slot(fs, 1, std::vector<std::byte>(format::kEpochSlotBytes));
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find(path), std::string::npos) << r.error().detail;
  EXPECT_NE(r.error().detail.find("slot 0: bad magic"), std::string::npos) << r.error().detail;
  EXPECT_NE(r.error().detail.find("slot 1: never written"), std::string::npos) << r.error().detail;
  // Two valid records with one sequence: write_epochs() never does that.
  fs.put(path, good);
  damage_slot(fs, 0, slot_record(2, {7, 7}));
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find("sequence 2"), std::string::npos) << r.error().detail;
  // A whole slot record of another version is not torn: this build does not read the file.
  fs.put(path, good);
  auto rec = slot_record(3, {7, 7});
  rec[8] = std::byte{2};
  std::memcpy(rec.data() + 60, std::array<std::uint32_t, 1>{crc32c(rec.data(), 60)}.data(), 4);
  damage_slot(fs, 0, rec);
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::bad_version);
  EXPECT_NE(r.error().detail.find(path), std::string::npos);
  // A valid slot of another cluster.
  fs.put(path, good);
  auto other = std::array<std::byte, format::kEpochSlotBytes>{};
  format::encode(format::EpochRecord{9, 3, 7, 7}, other);
  damage_slot(fs, 0, other);
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::wrong_cluster);
  // Any size but the slotted file's and the previous format's.
  for (std::size_t size : {std::size_t{0}, std::size_t{47}, std::size_t{64}, std::size_t{4096},
                           format::kEpochFileBytes + 1}) {
    auto bytes = good;
    bytes.resize(size);
    fs.put(path, bytes);
    r = Log::open(kDir, o);
    ASSERT_FALSE(r) << size;
    EXPECT_EQ(r.error().code, errc::corrupt);
    EXPECT_NE(r.error().detail.find(path + ": " + std::to_string(size) + " bytes"),
              std::string::npos)
        << r.error().detail;
  }
  fs.put(path, good);
  auto log = must_open(kDir, o);
  EXPECT_EQ(log->epochs(), (Epochs{2, 1}));
}

// Through the fault layer's own crash model: write_epochs() stopped after its write (the sync
// fails, as a crash would stop it), then a crash keeps the unsynced write whole, torn at a
// random byte, or not at all. The epochs read back are the old or the new, never a mix.
TEST(Epochs, TornSlotWriteReadsBackOldOrNewSeeds) {
  int old_seen = 0, new_seen = 0;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    FaultFs fs(seed);
    auto o = small_options(&fs);
    auto log = must_open(kDir, o);
    std::mt19937_64 rng(seed);
    Epochs old{0, 0};
    for (std::uint64_t k = 0, n = rng() % 4; k < n; ++k) {
      old = Epochs{10 + k, 5 + k};
      ASSERT_TRUE(log->write_epochs(old));
    }
    // Records appended before it must be durable before the new epochs can be.
    append_range(*log, 1, 3);
    ASSERT_TRUE(log->flush());
    const Epochs next{100 + seed, seed};
    fs.fail_sync_after = 0;
    ASSERT_FALSE(log->write_epochs(next));
    fs.fail_sync_after = -1;
    EXPECT_EQ(log->epochs(), old);
    log.reset();
    fs.crash(seed % 3 == 0 ? CrashMode::random_subset : CrashMode::prefix_and_tear);
    log = must_open(kDir, o);
    ASSERT_TRUE(log) << "seed " << seed;
    const Epochs got = log->epochs();
    EXPECT_TRUE(got == old || got == next) << "seed " << seed << ": " << got.accepted << "/"
                                           << got.current;
    old_seen += got == old ? 1 : 0;
    new_seen += got == next ? 1 : 0;
    EXPECT_EQ(log->last_zxid(), 3u);
    // And it goes on from there: the next write is durable.
    ASSERT_TRUE(log->write_epochs({1000, 999}));
    log.reset();
    fs.crash(CrashMode::drop_unsynced);
    log = must_open(kDir, o);
    EXPECT_EQ(log->epochs(), (Epochs{1000, 999})) << "seed " << seed;
  }
  EXPECT_GT(old_seen, 50);
  EXPECT_GT(new_seen, 50);
}

TEST(Epochs, RecordsAppendedBeforeAreDurableFirst) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  auto log = must_open(kDir, o);
  append_range(*log, 1, 20);
  ASSERT_TRUE(log->write_epochs({1, 1}));
  log.reset();
  fs.crash(CrashMode::drop_unsynced);
  log = must_open(kDir, o);
  EXPECT_EQ(log->epochs(), (Epochs{1, 1}));
  expect_records(*log, 20);
}

// The previous format: one 48-byte record (FORMAT.md), built here byte by byte.
std::vector<std::byte> legacy_epoch_file(std::uint64_t cluster, std::uint64_t accepted,
                                         std::uint64_t current) {
  std::vector<std::byte> b(48);
  auto put = [&](std::size_t at, auto v) { std::memcpy(b.data() + at, &v, sizeof v); };
  std::memcpy(b.data(), "FZABEPOC", 8);
  put(8, std::uint32_t{1});
  put(12, std::uint32_t{48});
  put(16, cluster);
  put(24, accepted);
  put(32, current);
  put(44, crc32c(b.data(), 44));
  return b;
}

TEST(Epochs, PreviousFormatFileIsMigratedOnceAtomically) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    append_range(*log, 1, 5);
    ASSERT_TRUE(log->flush());
  }
  const std::string path = kDir + "/epochs";
  fs.put(path, legacy_epoch_file(42, 7, 6));
  // The replacement fails at its directory sync: the previous file is still what a crash keeps,
  // and the next open migrates it.
  fs.fail_sync_after = 1;
  auto r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  fs.fail_sync_after = -1;
  fs.crash(CrashMode::drop_unsynced);
  EXPECT_EQ(fs.contents(path).size(), 48u);
  {
    auto log = must_open(kDir, o);
    EXPECT_TRUE(log->recovery().epochs_migrated);
    EXPECT_EQ(log->recovery().temp_files_removed, 0u);
    EXPECT_EQ(log->epochs(), (Epochs{7, 6}));
    EXPECT_EQ(log->last_zxid(), 5u);
  }
  // Durable before open() returned: a crash now keeps the slotted file.
  fs.crash(CrashMode::drop_unsynced);
  EXPECT_EQ(fs.contents(path).size(), format::kEpochFileBytes);
  EXPECT_FALSE(fs.exists(path + ".tmp"));
  {
    auto log = must_open(kDir, o);
    EXPECT_FALSE(log->recovery().epochs_migrated);
    EXPECT_EQ(log->epochs(), (Epochs{7, 6}));
    ASSERT_TRUE(log->write_epochs({8, 7}));
  }
  fs.crash(CrashMode::drop_unsynced);
  auto log = must_open(kDir, o);
  EXPECT_EQ(log->epochs(), (Epochs{8, 7}));
  log.reset();
  // A bad previous-format file is refused as before, naming the file.
  auto bad = legacy_epoch_file(42, 7, 6);
  bad[30] ^= std::byte{4};
  fs.put(path, bad);
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find(path), std::string::npos);
  fs.put(path, legacy_epoch_file(41, 7, 6));
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::wrong_cluster);
  // Nor can a previous-format file say currentEpoch > acceptedEpoch.
  fs.put(path, legacy_epoch_file(42, 6, 7));
  r = Log::open(kDir, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find("epoch file: currentEpoch 7 above acceptedEpoch 6"),
            std::string::npos)
      << r.error().detail;
  EXPECT_EQ(fs.contents(path).size(), 48u);  // nothing changed
}

TEST(Epochs, PreviousFormatFileIsMigratedOnRealFiles) {
  TempDir tmp;
  Options o;
  o.cluster_id = 5;
  const std::string path = tmp.path() + "/epochs";
  {
    const auto bytes = legacy_epoch_file(5, 3, 3);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  {
    auto log = must_open(tmp.path(), o);
    EXPECT_TRUE(log->recovery().epochs_migrated);
    EXPECT_EQ(log->epochs(), (Epochs{3, 3}));
    EXPECT_EQ(std::filesystem::file_size(path), format::kEpochFileBytes);
    for (std::uint64_t k = 4; k < 10; ++k) ASSERT_TRUE(log->write_epochs({k, k - 1}));
  }
  auto log = must_open(tmp.path(), o);
  EXPECT_EQ(log->epochs(), (Epochs{9, 8}));
  EXPECT_EQ(std::filesystem::file_size(path), format::kEpochFileBytes);
}

// ---------------------------------------------------------------- snapshots and purge
TEST(Snapshots, SaveLoadPurge) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  o.keep_snapshots = 2;
  auto log = must_open(kDir, o);
  auto none = log->latest_snapshot();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  append_range(*log, 1, 100);
  ASSERT_TRUE(log->flush());
  const auto segs = log->segment_count();
  for (std::uint64_t z : {20u, 50u, 80u}) ASSERT_TRUE(log->save_snapshot(z, payload_for(z, 5000)));
  auto s = log->latest_snapshot();
  ASSERT_TRUE(s && *s);
  EXPECT_EQ((*s)->zxid, 80u);
  EXPECT_EQ((*s)->data, payload_for(80, 5000));
  auto p = log->purge();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->snapshots_removed, 1u);
  EXPECT_GT(p->segments_removed, 0u);
  EXPECT_EQ(log->segment_count(), segs - p->segments_removed);
  EXPECT_FALSE(fs.exists(kDir + "/snapshot.0000000000000014"));
  // Everything above the snapshot is still there; nothing is left wholly below it.
  const std::uint64_t first = log->first_zxid();
  EXPECT_LE(first, 81u);
  auto r = log->read(first, 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 101 - first);
  log.reset();
  fs.crash(CrashMode::drop_unsynced);
  log = must_open(kDir, o);
  EXPECT_EQ(log->snapshot_zxids(), (std::vector<std::uint64_t>{50, 80}));
  EXPECT_EQ(log->first_zxid(), first);
}

TEST(Snapshots, FailedSnapshotWriteLeavesThePreviousOne) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  {
    auto log = must_open(kDir, o);
    ASSERT_TRUE(log->save_snapshot(10, payload_for(10, 1000)));
    fs.fail_sync_after = 0;
    EXPECT_FALSE(log->save_snapshot(20, payload_for(20, 1000)));
    fs.fail_sync_after = -1;
  }
  fs.crash(CrashMode::prefix_and_tear);
  auto log = must_open(kDir, o);
  auto s = log->latest_snapshot();
  ASSERT_TRUE(s && *s);
  EXPECT_EQ((*s)->zxid, 10u);
  fs.flip_bit(kDir + "/snapshot.000000000000000a", 100, 0);
  s = log->latest_snapshot();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::corrupt);
  EXPECT_NE(s.error().detail.find("snapshot.000000000000000a"), std::string::npos);
}

// Bug 6 of issue 10: a follower that installs a snapshot from the leader drops every record:
// those below it are superseded (a zombie leader's uncommitted writes of an old epoch among
// them), those above it are another history's. truncate(at) kept the ones below.
TEST(Snapshots, ResetToSnapshotDropsEveryRecord) {
  FaultFs fs(1);
  auto o = small_options(&fs);
  auto log = must_open(kDir, o);
  const std::uint64_t e1 = 1ull << 32, e2 = 2ull << 32;
  for (std::uint64_t c = 1; c <= 50; ++c) ASSERT_TRUE(log->append(e1 | c, payload_for(c)));
  ASSERT_TRUE(log->flush());
  for (std::uint64_t c = 51; c <= 60; ++c) ASSERT_TRUE(log->append(e1 | c, payload_for(c)));  // queued
  ASSERT_GT(log->segment_count(), 2u);
  const std::uint64_t at = e2 | 7;
  EXPECT_EQ(log->reset_to_snapshot(at).error().code, errc::invalid_argument);  // no snapshot yet
  ASSERT_TRUE(log->save_snapshot(at, payload_for(7, 2000)));
  auto r = log->reset_to_snapshot(at);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(log->segment_count(), 0u);
  EXPECT_EQ(log->record_count(), 0u);
  EXPECT_EQ(log->first_zxid(), 0u);
  EXPECT_EQ(log->last_zxid(), at);
  EXPECT_EQ(log->durable_zxid(), at);
  auto none = log->read(1, UINT64_MAX);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto names = fs.list(kDir);
  ASSERT_TRUE(names);
  for (const std::string& n : *names) EXPECT_NE(n.rfind("log.", 0), 0u) << n;
  // The next append must be above the snapshot.
  EXPECT_EQ(log->append(at, payload_for(1)).error().code, errc::invalid_argument);
  ASSERT_TRUE(log->append(at + 1, payload_for(8)));
  ASSERT_TRUE(log->flush());
  log.reset();
  fs.crash(CrashMode::drop_unsynced);
  log = must_open(kDir, o);
  EXPECT_EQ(log->first_zxid(), at + 1);
  EXPECT_EQ(log->last_zxid(), at + 1);
  EXPECT_EQ(log->record_count(), 1u);
  auto snap = log->latest_snapshot();
  ASSERT_TRUE(snap && *snap);
  EXPECT_EQ((*snap)->zxid, at);
}

// A crash after the snapshot is durable and before every segment is gone leaves the snapshot
// and a prefix of the old log, which opens cleanly (the engine syncs again from there).
TEST(Snapshots, CrashInTheMiddleOfAResetLeavesTheSnapshotAndAPrefix) {
  for (int fail_at = 0; fail_at < 8; ++fail_at) {
    FaultFs fs(1);
    auto o = small_options(&fs);
    std::size_t segments = 0;
    {
      auto log = must_open(kDir, o);
      append_range(*log, 1, 100);
      ASSERT_TRUE(log->flush());
      segments = log->segment_count();
      ASSERT_TRUE(log->save_snapshot(70, payload_for(70, 500)));
      fs.fail_sync_after = fail_at;  // the directory fsync of one removal fails
      auto r = log->reset_to_snapshot(70);
      EXPECT_EQ(r.has_value(), static_cast<std::size_t>(fail_at) >= segments) << fail_at;
      fs.fail_sync_after = -1;
    }
    fs.crash(CrashMode::drop_unsynced);
    auto log = must_open(kDir, o);
    auto snap = log->latest_snapshot();
    ASSERT_TRUE(snap && *snap);
    EXPECT_EQ((*snap)->zxid, 70u);
    // Newest first: what is left is records 1..k.
    expect_records(*log, log->last_zxid());
    EXPECT_LE(log->segment_count(), segments - std::min<std::size_t>(segments, fail_at));
    if (static_cast<std::size_t>(fail_at) >= segments) {
      EXPECT_EQ(log->segment_count(), 0u);
    }
  }
}

// ---------------------------------------------------------------- real files, both writers
class RealFiles : public ::testing::TestWithParam<WriterKind> {
 protected:
  Options options() {
    Options o;
    o.cluster_id = 9;
    o.segment_bytes = 1 << 16;
    o.max_record_bytes = 2000;
    o.max_batch_bytes = 4096;
    o.max_inflight_batches = 4;
    o.writer = GetParam();
    return o;
  }
  void SetUp() override {
    if (GetParam() == WriterKind::io_uring) {
      auto w = make_uring_writer(1);
      if (!w) GTEST_SKIP() << "io_uring unavailable: " << w.error().to_string();
    }
  }
};

TEST_P(RealFiles, PipelinedBatchesRollOverAndReopen) {
  TempDir tmp;
  auto o = options();
  {
    auto log = must_open(tmp.path(), o);
    std::uint64_t z = 0, seen = 0;
    for (int round = 0; round < 200; ++round) {
      for (int k = 0; k < 7; ++k, ++z) ASSERT_TRUE(log->append(z + 1, payload_for(z + 1, 1500)));
      ASSERT_TRUE(log->submit());
      auto d = log->poll(false);
      ASSERT_TRUE(d);
      ASSERT_GE(*d, seen);  // durability only moves forward
      seen = *d;
    }
    auto d = log->flush();
    ASSERT_TRUE(d) << d.error().to_string();
    EXPECT_EQ(*d, z);
    EXPECT_GT(log->segment_count(), 5u);
  }
  auto log = must_open(tmp.path(), o);
  auto recs = log->read(1, UINT64_MAX);
  ASSERT_TRUE(recs);
  ASSERT_EQ(recs->size(), 1400u);
  for (std::size_t i = 0; i < recs->size(); ++i) {
    ASSERT_EQ((*recs)[i].payload, payload_for(i + 1, 1500));
  }
  ASSERT_TRUE(log->truncate(700));
  log.reset();
  log = must_open(tmp.path(), o);
  EXPECT_EQ(log->last_zxid(), 700u);
}

// Two logs on one directory would interleave segments and corrupt each other: the second
// open() is refused at once, naming the directory, and the lock goes with the first Log.
TEST_P(RealFiles, ASecondLogOnTheSameDirectoryIsRefused) {
  TempDir tmp;
  {
    auto first = must_open(tmp.path(), options());
    auto second = Log::open(tmp.path(), options());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, errc::in_use);
    EXPECT_NE(second.error().detail.find(tmp.path() + ": another process has this log open"),
              std::string::npos)
        << second.error().to_string();
    ASSERT_TRUE(first->append(1, payload_for(1)));
    ASSERT_TRUE(first->flush());
  }
  auto again = must_open(tmp.path(), options());
  EXPECT_EQ(again->last_zxid(), 1u);
}

TEST_P(RealFiles, SegmentFilesArePreallocated) {
  TempDir tmp;
  auto log = must_open(tmp.path(), options());
  ASSERT_TRUE(log->append(1, payload_for(1)));
  ASSERT_TRUE(log->flush());
  EXPECT_EQ(std::filesystem::file_size(tmp.path() + "/log.0000000000000001"), 1u << 16);
}

TEST_P(RealFiles, WritesToAReadOnlyFileDescriptorPoison) {
  // A write the kernel refuses (EBADF on a descriptor opened read-only) must come back as an
  // error and poison the log, for both writers.
  TempDir tmp;
  auto log = must_open(tmp.path(), options());
  ASSERT_TRUE(log->append(1, payload_for(1)));
  ASSERT_TRUE(log->flush());
  auto pos = must_locate(*log, 1);
  // Swap the segment's descriptor for a read-only one behind the log's back.
  const int fd = ::open(pos.file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  int target = -1;
  for (int cand = 3; cand < 1024; ++cand) {
    char link[64], path[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", cand);
    const ssize_t n = ::readlink(link, path, sizeof path - 1);
    if (n <= 0 || cand == fd) continue;
    path[n] = 0;
    if (pos.file == path) target = cand;
  }
  ASSERT_GE(target, 0);
  ASSERT_EQ(::dup2(fd, target), target);
  ::close(fd);
  ASSERT_TRUE(log->append(2, payload_for(2)));
  auto d = log->flush();
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().sys_errno, EBADF) << d.error().to_string();
  EXPECT_EQ(log->durable_zxid(), 1u);
  EXPECT_EQ(log->append(3, payload_for(3)).error().code, errc::poisoned);
}

// Bug 5 of issue 10 on real files with both writers: a stopped follower's 3,000 synced
// records, one flipped byte in record 1,001, everything after it within the tail window. open()
// names the corruption and keeps all 3,000 records; it used to cut 1,001..3,000 silently.
TEST_P(RealFiles, FlippedByteInRecord1001Of3000IsCorruptionNotACut) {
  TempDir tmp;
  auto o = options();
  o.segment_bytes = 64 << 20;
  o.max_record_bytes = 1 << 20;
  o.max_batch_bytes = 1 << 20;
  std::uint64_t window = 0;
  {
    auto log = must_open(tmp.path(), o);
    window = log->tail_window_bytes();
    std::uint64_t z = 0;
    while (z < 3000) {
      for (int k = 0; k < 7 && z < 3000; ++k, ++z) {
        ASSERT_TRUE(log->append(z + 1, payload_for(z + 1, 600)));
      }
      ASSERT_TRUE(log->submit());
      ASSERT_TRUE(log->poll(false));
    }
    auto d = log->flush();
    ASSERT_TRUE(d) << d.error().to_string();
    ASSERT_EQ(*d, 3000u);
    ASSERT_EQ(log->segment_count(), 1u);
  }
  std::uint64_t bad = 1001;
  while (payload_for(bad, 600).empty()) ++bad;
  auto log0 = must_open(tmp.path(), o);
  const auto pos = must_locate(*log0, bad);
  const auto last = must_locate(*log0, 3000);
  log0.reset();
  ASSERT_LT(last.offset + last.length, pos.offset + window) << "all in the tail window";
  {
    std::fstream f(pos.file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(pos.offset + format::kRecordHeaderBytes));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(pos.offset + format::kRecordHeaderBytes));
    f.put(static_cast<char>(c ^ 0x10));
  }
  auto r = Log::open(tmp.path(), o);
  ASSERT_FALSE(r) << "cut: " << describe_cut((*r)->recovery());
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_NE(r.error().detail.find(pos.file + " at offset " + std::to_string(pos.offset)),
            std::string::npos)
      << r.error().detail;
  EXPECT_NE(r.error().detail.find("truncate_at_corruption"), std::string::npos);
  o.recovery = RecoveryMode::truncate_at_corruption;
  auto log = must_open(tmp.path(), o);
  EXPECT_TRUE(log->recovery().corruption_cut);
  EXPECT_EQ(log->recovery().records_cut, 3001 - bad);
  EXPECT_EQ(log->recovery().cut_first_zxid, bad);
  EXPECT_EQ(log->recovery().cut_last_zxid, 3000u);
  EXPECT_EQ(log->last_zxid(), bad - 1);
}

INSTANTIATE_TEST_SUITE_P(Writers, RealFiles,
                         ::testing::Values(WriterKind::sync, WriterKind::io_uring),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)); });

}  // namespace
}  // namespace fastzab::log
