// Differential test (issue 3): the real log (on the fault-injecting file layer) and the
// simulator's disk model (tests/sim/disk.h) follow the same durability rules.
//
// One seeded random sequence of operations drives both: append batches, flushes, truncate,
// write epochs, and crashes, either between operations or in the middle of one (a write or sync
// fails, which stops the log like a crash would, then the file layer crashes keeping a random
// part of the unsynced writes: all, none, a prefix with a torn write, or a random subset). After
// every recovery the real log's durable state (records (zxid, bytes) in order, and the epochs)
// must be a state the model allows: the model's durable image after its crash kept some prefix
// of the pending ops (Disk::crash(survivors)). Before each crash both must acknowledge the same
// zxid, and everything acknowledged (and not cut by a truncate that survived) must be there
// after recovery in both.
//
// Where the models legitimately differ, the comparison normalises, and says so:
//  * Torn-tail granularity: the model's ops are atomic (an append batch survives whole or not
//    at all); the real log recovers whatever whole records reached the disk before a torn
//    write, so it may keep a prefix of the first lost append batch. Accepted when the extra
//    records are exactly a strict prefix of that op's records (never acknowledged: the log
//    acknowledges only after the fdatasync that covers them). The test then truncates the real
//    log back to the model's state, as the core's recovery drops the unacknowledged tail.
//  * Truncate atomicity: the model's truncate is one atomic op; the real truncate removes whole
//    segments newest first (each removal durable) and then cuts the last one, so a crash in
//    the middle leaves a log between the old and the truncated one (always a prefix of the old
//    log). Accepted when the real log is a prefix of the state before the truncate and extends
//    the state after it; the test then finishes the truncate on the real log.
//  * Issue order: the model completes ops in issue order. Log::write_epochs flushes the records
//    appended before it, so the real log keeps that order too (a write_epochs that overtook
//    queued records would be a state the model never produces; this test found it).
//  * Epoch writes: the model's persist_epochs is atomic; the real write_epochs overwrites one
//    slot of the epoch file in place. A crash between that write and its fdatasync keeps it
//    whole, torn or not at all (the fault layer tears an overwrite like an append), and the
//    state must still be the model's with or without the op: old or new epochs, never a mix.
//    No normalisation; the coverage line counts these crashes and which epochs came back.
//  * Not covered: snapshots and the application state (the model's install_snapshot replaces
//    the log; the real log's snapshots are files beside it), and sync=none (its "durable" is
//    the page cache, which a power loss does not keep; the model has no such mode).
#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "log/log.h"
#include "tests/log/fault_fs.h"
#include "tests/log/test_util.h"
#include "tests/sim/disk.h"

namespace fastzab::log::testing {
namespace {

namespace core = fastzab::core;
namespace sim = fastzab::sim;

struct Rec {
  std::uint64_t zxid = 0;
  std::vector<std::byte> bytes;
  friend bool operator==(const Rec&, const Rec&) = default;
};
using State = std::vector<Rec>;

struct Coverage {
  std::uint64_t ops = 0, appends = 0, records = 0, flushes = 0, truncates = 0, epoch_writes = 0;
  std::uint64_t crashes = 0, fault_crashes = 0, exact = 0, torn_prefix = 0, truncate_between = 0;
  std::uint64_t survivors_nonzero = 0, lost_pending = 0, rollovers_seen = 0;
  // Crashes with the epoch file's slot written and not yet synced (in the middle of
  // write_epochs), and which epochs came back.
  std::uint64_t epochs_mid_write = 0, epochs_mid_old = 0, epochs_mid_new = 0;
};

std::string describe(const State& s) {
  std::string out = std::to_string(s.size()) + " records";
  if (!s.empty()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " [%" PRIx64 " .. %" PRIx64 "]", s.front().zxid,
                  s.back().zxid);
    out += buf;
  }
  return out;
}

State from_sim(const sim::LogImage& img) {
  State s;
  for (const core::LoggedEntry& e : img.entries) {
    s.push_back(Rec{static_cast<std::uint64_t>(e.zxid.value), e.bytes});
  }
  return s;
}

bool is_prefix(const State& p, const State& of) {
  return p.size() <= of.size() && std::equal(p.begin(), p.end(), of.begin());
}

class Harness {
 public:
  explicit Harness(std::uint64_t seed)
      : seed_(seed), rng_(seed), model_rng_(seed ^ 0xD15C), fs_(seed * 31 + 7) {
    opt_.cluster_id = 7;
    opt_.fs = &fs_;
    opt_.writer = WriterKind::sync;
    opt_.sync = SyncMode::fdatasync;
    // Small segments and batches: rollovers and multi-batch flushes happen often.
    opt_.segment_bytes = 4096u << rng_.below(3);
    opt_.max_record_bytes = 1024;
    opt_.max_batch_bytes = 256u << rng_.below(5);
    disk_.emplace(0, model_rng_, queue_, sim::DiskParams{});
    open_real();
  }

  void run(int steps, Coverage& cov) {
    for (int i = 0; i < steps && !::testing::Test::HasFailure(); ++i) {
      ++cov.ops;
      const std::uint64_t roll = rng_.below(100);
      if (roll < 40) {
        append_batch(cov);
      } else if (roll < 55) {
        flush(cov);
      } else if (roll < 62) {
        ++epoch_;  // the next append starts a new epoch at counter 1
      } else if (roll < 72) {
        write_epochs(cov);
      } else if (roll < 82) {
        truncate(cov);
      } else if (roll < 90) {
        crash(cov, /*fault=*/false);
      } else {
        crash(cov, /*fault=*/true);
      }
    }
    flush(cov);
    crash(cov, false);
  }

 private:
  struct Pending {
    enum class Kind : std::uint8_t { append, truncate, epochs } kind = Kind::append;
    State recs;              // append
    std::uint64_t zxid = 0;  // truncate
  };

  void open_real() {
    auto l = Log::open(dir_, opt_);
    ASSERT_TRUE(l.has_value()) << "seed " << seed_ << ": open: " << l.error().to_string();
    log_ = std::move(*l);
    ASSERT_FALSE(log_->recovery().corruption_cut) << "seed " << seed_;
  }

  State real_state() {
    auto r = log_->read(1, UINT64_MAX);
    EXPECT_TRUE(r.has_value()) << "seed " << seed_ << ": read: " << r.error().to_string();
    State s;
    if (!r) return s;
    for (Record& x : *r) s.push_back(Rec{x.zxid, std::move(x.payload)});
    return s;
  }

  core::Zxid next_zxid() const {
    const core::Zxid last = disk_->log().last();
    if (static_cast<std::uint64_t>(last.epoch().value) == epoch_) return last.next();
    return core::Zxid::make(core::Epoch{static_cast<std::int64_t>(epoch_)}, 1);
  }

  std::uint64_t issue() { return next_op_++; }  // model op ids are 1, 2, ... in issue order

  // The model's pending ops all complete (what a successful flush means in the real log).
  void complete_all() {
    while (!pending_.empty()) {
      const sim::Completion c = disk_->complete(pending_ids_.front());
      if (c.kind == sim::Completion::Kind::log_durable) {
        model_acked_ = static_cast<std::uint64_t>(c.zxid.value);
      }
      pending_.erase(pending_.begin());
      pending_ids_.erase(pending_ids_.begin());
    }
  }

  void append_batch(Coverage& cov) {
    const std::size_t n = 1 + rng_.below(6);
    core::Zxid z = next_zxid();
    const core::Zxid first = z;
    std::vector<core::LoggedEntry> entries;
    Pending p;
    for (std::size_t i = 0; i < n; ++i, z = z.next()) {
      const auto zx = static_cast<std::uint64_t>(z.value);
      std::vector<std::byte> bytes = payload_for(zx ^ seed_, 300);
      auto r = log_->append(zx, bytes);
      ASSERT_TRUE(r.has_value()) << "seed " << seed_ << ": append: " << r.error().to_string();
      entries.push_back(core::LoggedEntry{z, bytes});
      p.recs.push_back(Rec{zx, std::move(bytes)});
    }
    const std::string problem = disk_->append(first, std::move(entries));
    ASSERT_EQ(problem, "") << "seed " << seed_;
    pending_.push_back(std::move(p));
    pending_ids_.push_back(issue());
    ++cov.appends;
    cov.records += n;
  }

  void flush(Coverage& cov) {
    auto d = log_->flush();
    ASSERT_TRUE(d.has_value()) << "seed " << seed_ << ": flush: " << d.error().to_string();
    const bool had_append = std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) {
      return p.kind == Pending::Kind::append;
    });
    complete_all();
    if (had_append) {
      // Both acknowledge the same zxid: the last one appended.
      ASSERT_EQ(*d, model_acked_) << "seed " << seed_;
    }
    ++cov.flushes;
  }

  std::pair<std::uint64_t, std::uint64_t> pick_epochs() {
    const std::uint64_t acc = std::max<std::uint64_t>(
        static_cast<std::uint64_t>(disk_->epochs().accepted.value), epoch_ + rng_.below(2));
    const std::uint64_t cur = rng_.below(acc + 1);
    return {acc, cur};
  }

  void write_epochs(Coverage& cov) {
    const auto [acc, cur] = pick_epochs();
    auto r = log_->write_epochs(Epochs{acc, cur});
    ASSERT_TRUE(r.has_value()) << "seed " << seed_ << ": write_epochs: " << r.error().to_string();
    disk_->persist_epochs(core::Epoch{static_cast<std::int64_t>(acc)},
                          core::Epoch{static_cast<std::int64_t>(cur)});
    pending_.push_back(Pending{Pending::Kind::epochs, {}, 0});
    pending_ids_.push_back(issue());
    complete_all();
    ++cov.epoch_writes;
  }

  std::uint64_t pick_truncate_point() {
    const auto& e = disk_->log().entries;
    const std::uint64_t i = rng_.below(e.size() + 1);  // e.size(): truncate to 0
    if (i == e.size() || rng_.below(4) == 0) {
      return e.empty() ? 0 : static_cast<std::uint64_t>(e[rng_.below(e.size())].zxid.value);
    }
    // Mostly near the end: the common TRUNC.
    const std::size_t k = e.size() - 1 - std::min<std::size_t>(rng_.below(8), e.size() - 1);
    return static_cast<std::uint64_t>(e[k].zxid.value);
  }

  void truncate(Coverage& cov) {
    const std::uint64_t z = rng_.below(10) == 0 ? 0 : pick_truncate_point();
    auto r = log_->truncate(z);
    ASSERT_TRUE(r.has_value()) << "seed " << seed_ << ": truncate: " << r.error().to_string();
    ASSERT_EQ(disk_->truncate(core::Zxid{static_cast<std::int64_t>(z)}), "") << "seed " << seed_;
    pending_.push_back(Pending{Pending::Kind::truncate, {}, z});
    pending_ids_.push_back(issue());
    complete_all();
    model_acked_ = std::min(model_acked_, z);
    ++cov.truncates;
  }

  // A crash. With `fault`, a write or sync of the next durable operation fails (the log stops
  // there, poisoned, as a crashed process would) and the crash happens right after it.
  void crash(Coverage& cov, bool fault) {
    ++cov.crashes;
    // Before the crash: the acknowledged state is the model's durable image, and the real log
    // acknowledges the same.
    const State acked = from_sim(disk_->durable_log());
    if (!acked.empty()) {
      ASSERT_GE(log_->durable_zxid(), acked.back().zxid) << "seed " << seed_;
    }
    if (fault) {
      ++cov.fault_crashes;
      if (rng_.coin()) {
        fs_.fail_sync_after = static_cast<int>(rng_.below(3));
      } else {
        fs_.fail_write_after = static_cast<int>(rng_.below(3));
      }
      // The operation that meets the fault is issued to both; only the real one runs (it may
      // fail part way), the model's stays pending.
      switch (rng_.below(3)) {
        case 0: {
          if (rng_.coin()) append_batch(cov);
          (void)log_->flush();
          break;
        }
        case 1: {
          const auto [acc, cur] = pick_epochs();
          (void)log_->write_epochs(Epochs{acc, cur});
          disk_->persist_epochs(core::Epoch{static_cast<std::int64_t>(acc)},
                                core::Epoch{static_cast<std::int64_t>(cur)});
          pending_.push_back(Pending{Pending::Kind::epochs, {}, 0});
          pending_ids_.push_back(issue());
          break;
        }
        default: {
          const std::uint64_t z = pick_truncate_point();
          (void)log_->truncate(z);
          (void)disk_->truncate(core::Zxid{static_cast<std::int64_t>(z)});
          pending_.push_back(Pending{Pending::Kind::truncate, {}, z});
          pending_ids_.push_back(issue());
          break;
        }
      }
    }
    cov.rollovers_seen += log_->segment_count() > 1 ? 1 : 0;
    const bool epochs_mid_write = fs_.unsynced_writes(dir_ + "/epochs") > 0;
    log_.reset();
    fs_.fail_sync_after = -1;
    fs_.fail_write_after = -1;
    const CrashMode mode = static_cast<CrashMode>(rng_.below(3));
    fs_.crash(mode);
    open_real();
    if (::testing::Test::HasFailure()) return;
    const State real = real_state();
    const Epochs real_epochs = log_->epochs();

    // Which model crash gives this state? Disk::crash(s) keeps the first s pending ops.
    std::optional<std::size_t> match;
    bool torn = false, between = false;
    std::vector<State> states;
    std::vector<Epochs> epochs;
    for (std::size_t s = 0; s <= pending_.size(); ++s) {
      sim::Disk d = *disk_;
      d.crash(s);
      states.push_back(from_sim(d.durable_log()));
      epochs.push_back(Epochs{static_cast<std::uint64_t>(d.durable_epochs().accepted.value),
                              static_cast<std::uint64_t>(d.durable_epochs().current.value)});
    }
    for (std::size_t s = 0; s <= pending_.size() && !match; ++s) {
      if (epochs[s] != real_epochs) continue;
      if (states[s] == real) {
        match = s;
        break;
      }
      if (s == pending_.size()) break;
      const Pending& next = pending_[s];
      if (next.kind == Pending::Kind::append && is_prefix(states[s], real)) {
        // Torn-tail granularity: the extra records are a strict prefix of the lost batch.
        const State extra(real.begin() + static_cast<std::ptrdiff_t>(states[s].size()),
                          real.end());
        if (!extra.empty() && extra.size() < next.recs.size() && is_prefix(extra, next.recs)) {
          match = s;
          torn = true;
        }
      } else if (next.kind == Pending::Kind::truncate && is_prefix(real, states[s]) &&
                 is_prefix(states[s + 1], real) && epochs[s + 1] == real_epochs) {
        // Truncate atomicity: the real truncate stopped part way; finish it (model: s + 1).
        match = s + 1;
        between = true;
      }
    }
    ASSERT_TRUE(match.has_value())
        << "seed " << seed_ << ": recovered log (" << describe(real) << ", epochs "
        << real_epochs.accepted << "/" << real_epochs.current
        << ") is no state the disk model allows; acked " << describe(acked) << ", "
        << pending_.size() << " ops pending; model with all pending lost: "
        << describe(states.front()) << ", with all kept: " << describe(states.back());
    const std::size_t s = *match;

    // Everything acknowledged before the crash survives in both, unless a truncate that
    // survived dropped it.
    std::uint64_t cut = UINT64_MAX;
    for (std::size_t k = 0; k < s; ++k) {
      if (pending_[k].kind == Pending::Kind::truncate) cut = std::min(cut, pending_[k].zxid);
    }
    State must;
    for (const Rec& r : acked) {
      if (r.zxid <= cut) must.push_back(r);
    }
    EXPECT_TRUE(is_prefix(must, real)) << "seed " << seed_ << ": acknowledged records lost";
    EXPECT_TRUE(is_prefix(must, states[s])) << "seed " << seed_ << ": model lost acked records";

    if (epochs_mid_write) {
      // Only the fault path leaves an epoch write unsynced, and it issued it last.
      EXPECT_TRUE(!pending_.empty() && pending_.back().kind == Pending::Kind::epochs)
          << "seed " << seed_;
      ++cov.epochs_mid_write;
      ++(s == pending_.size() ? cov.epochs_mid_new : cov.epochs_mid_old);
    }
    if (s > 0) ++cov.survivors_nonzero;
    if (s < pending_.size()) ++cov.lost_pending;
    if (torn) {
      ++cov.torn_prefix;
    } else if (between) {
      ++cov.truncate_between;
    } else {
      ++cov.exact;
    }

    // The model continues from its crash at s; the real log is brought to the same state the
    // way the node's recovery would (drop the unacknowledged tail / finish the truncate).
    disk_->crash(s);
    pending_.clear();
    pending_ids_.clear();
    model_acked_ = states[s].empty() ? 0 : states[s].back().zxid;
    if (torn || between) {
      const std::uint64_t z = states[s].empty() ? 0 : states[s].back().zxid;
      auto r = log_->truncate(z);
      ASSERT_TRUE(r.has_value()) << "seed " << seed_ << ": " << r.error().to_string();
      ASSERT_EQ(real_state(), states[s]) << "seed " << seed_;
    }
    ASSERT_EQ(log_->last_zxid(), model_acked_) << "seed " << seed_;
    epoch_ = std::max<std::uint64_t>(epoch_, real_epochs.accepted);
  }

  std::uint64_t seed_;
  sim::Rng rng_;        // the operation sequence
  sim::Rng model_rng_;  // the model's latencies (irrelevant here: ops complete when told)
  sim::EventQueue queue_;
  FaultFs fs_;
  Options opt_;
  const std::string dir_ = "/difflog";
  std::unique_ptr<Log> log_;
  std::optional<sim::Disk> disk_;
  std::vector<Pending> pending_;
  std::vector<std::uint64_t> pending_ids_;
  std::uint64_t next_op_ = 1;
  std::uint64_t model_acked_ = 0;
  std::uint64_t epoch_ = 1;
};

TEST(Differential, RealLogAndSimDiskAgreeAfterEveryRecovery) {
  constexpr std::uint64_t kSeeds = 200;
  constexpr int kSteps = 250;
  Coverage cov;
  for (std::uint64_t seed = 1; seed <= kSeeds && !HasFailure(); ++seed) {
    Harness h(seed);
    h.run(kSteps, cov);
  }
  std::printf("differential: %" PRIu64 " seeds x %d steps: %" PRIu64 " appends (%" PRIu64
              " records), %" PRIu64 " flushes, %" PRIu64 " truncates, %" PRIu64
              " epoch writes, %" PRIu64 " crashes (%" PRIu64 " mid-operation); matches: %" PRIu64
              " exact, %" PRIu64 " torn-prefix, %" PRIu64 " truncate-between; %" PRIu64
              " with surviving pending ops, %" PRIu64 " losing pending ops, %" PRIu64
              " with several segments; %" PRIu64 " crashes in the middle of write_epochs (%" PRIu64
              " read back the old epochs, %" PRIu64 " the new)\n",
              kSeeds, kSteps, cov.appends, cov.records, cov.flushes, cov.truncates,
              cov.epoch_writes, cov.crashes, cov.fault_crashes, cov.exact, cov.torn_prefix,
              cov.truncate_between, cov.survivors_nonzero, cov.lost_pending, cov.rollovers_seen,
              cov.epochs_mid_write, cov.epochs_mid_old, cov.epochs_mid_new);
  // The interesting cases must actually occur, or the test proves little.
  EXPECT_GT(cov.survivors_nonzero, 10u);
  EXPECT_GT(cov.lost_pending, 10u);
  EXPECT_GT(cov.torn_prefix, 0u);
  EXPECT_GT(cov.rollovers_seen, 10u);
  EXPECT_GT(cov.epochs_mid_old, 10u);
  EXPECT_GT(cov.epochs_mid_new, 10u);
}

}  // namespace
}  // namespace fastzab::log::testing
