// fastzab-sim: runs the deterministic simulator for one seed or a range of seeds and prints one
// line per seed (or, with --quiet, only violations and a summary). Exits 1 on any violation.
//
//   fastzab-sim --seed S | --seeds A-B | --file regression_seeds.txt
//               [--nodes N] [--observers M] [--mixed] [--steps K] [--liveness-budget T]
//               [--no-restart-probes] [--host-bug NAME] [--expect-violation CHECK]
//               [--verbose] [--quiet]
//
// --steps K: the safety phase processes K events (network deliveries, ticks, disk completions,
// client submissions, faults, ...); then every fault heals and the liveness phase runs until a
// proposal is delivered everywhere, or fails after T simulated time units (kTickPeriod = 10 units
// is one node tick). --mixed picks the node count (3, 5 or 7 voters, 0-2 observers) from the seed.
// --no-restart-probes: do not check, at each durable change that bears on the start-up rules,
// that a node could restart from its durable image; count only restarts that actually happen.
// --host-bug NAME (kHostBugs below; cluster.h says what each breaks): break the simulated host on
// purpose (the checkers must catch it; the sim suite tests that they do).
// --expect-violation CHECK: the self-test mode. Runs the seeds until one reports a violation of
// the checker CHECK (the name in "[...]" of a violation line) and then exits 0; exits 1 if none
// did (other checkers' violations are printed but do not count), 2 on a usage error.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "cluster.h"

namespace {

using fastzab::sim::Cluster;
using fastzab::sim::SimOptions;
using fastzab::sim::SimResult;

// Preformatted before each seed, so the abort handler only has to write() it.
char g_abort_note[256] = "fastzab-sim: aborted\n";

extern "C" void on_abort(int) {
  const ssize_t ignored = write(2, g_abort_note, std::strlen(g_abort_note));
  (void)ignored;
}

const char* const kHostBugs[] = {
    "ignore-barriers", "early-acks", "early-proposal-acks", "newleader-ack-before-log",
    "newleader-ack-before-epoch", "lose-synced", "ignore-lost-state", "ignore-disk-errors", "no-fail-stop",
};

// Every name a violation may carry (Checkers::fail's `check`).
const char* const kChecks[] = {
    "leader", "order", "integrity", "agreement", "lost-write", "recovery-drop", "ack-durable",
    "newleader-ack-epoch", "newleader-ack-log", "ackepoch-durable", "leaderinfo-durable",
    "newleader-durable", "disk-failure-ack", "disk-failure-sent", "restart", "liveness",
    "storm", "host",
};

bool one_of(const std::string& v, const auto& names) {
  for (const char* n : names) {
    if (v == n) return true;
  }
  return false;
}

struct Job {
  std::uint64_t seed;
  std::uint32_t voters;
  std::uint32_t observers;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "fastzab-sim: %s\n"
               "usage: fastzab-sim (--seed S | --seeds A-B | --file F) [--nodes N] "
               "[--observers M] [--mixed]\n"
               "                   [--steps K] [--liveness-budget T] [--no-restart-probes]\n"
               "                   [--host-bug NAME] [--expect-violation CHECK] [--verbose] "
               "[--quiet]\n",
               why);
  std::exit(2);
}

std::uint64_t parse_u64(const std::string& s, const char* what) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0') usage(what);
  return v;
}

// The node counts a --mixed run uses for a seed; independent of the simulation's own Rng.
Job mixed_job(std::uint64_t seed) {
  fastzab::sim::Rng r(seed ^ 0x5eedc0ffee123457ULL);
  static const std::uint32_t kVoters[] = {3, 3, 5, 5, 7};
  static const std::uint32_t kObservers[] = {0, 0, 0, 1, 2};
  return Job{seed, kVoters[r.below(5)], kObservers[r.below(5)]};
}

std::vector<Job> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage("cannot open the seed file");
  std::vector<Job> jobs;
  std::string line;
  while (std::getline(in, line)) {
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream ls(line);
    Job j{};
    if (!(ls >> j.seed)) continue;
    if (!(ls >> j.voters >> j.observers)) usage("seed file lines are 'seed voters observers'");
    jobs.push_back(j);
  }
  return jobs;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Job> jobs;
  std::uint64_t first = 0, last = 0;
  bool have_range = false, mixed = false, verbose = false, quiet = false;
  std::uint32_t voters = 3, observers = 0;
  std::string file;
  std::string expect;
  SimOptions base;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--seed") {
      first = last = parse_u64(value(), "bad --seed");
      have_range = true;
    } else if (a == "--seeds") {
      const std::string v = value();
      const auto dash = v.find('-');
      if (dash == std::string::npos) usage("--seeds takes A-B");
      first = parse_u64(v.substr(0, dash), "bad --seeds");
      last = parse_u64(v.substr(dash + 1), "bad --seeds");
      if (last < first) usage("--seeds A-B needs A <= B");
      have_range = true;
    } else if (a == "--file") {
      file = value();
    } else if (a == "--nodes") {
      voters = static_cast<std::uint32_t>(parse_u64(value(), "bad --nodes"));
    } else if (a == "--observers") {
      observers = static_cast<std::uint32_t>(parse_u64(value(), "bad --observers"));
    } else if (a == "--mixed") {
      mixed = true;
    } else if (a == "--steps") {
      base.steps = parse_u64(value(), "bad --steps");
    } else if (a == "--liveness-budget") {
      base.liveness_budget = static_cast<fastzab::sim::Time>(parse_u64(value(), "bad budget"));
    } else if (a == "--host-bug") {
      base.host_bug = value();
      if (!one_of(base.host_bug, kHostBugs)) usage(("unknown --host-bug " + base.host_bug).c_str());
    } else if (a == "--expect-violation") {
      expect = value();
      if (!one_of(expect, kChecks)) usage(("unknown checker " + expect).c_str());
    } else if (a == "--no-restart-probes") {
      base.restart_probes = false;
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--quiet") {
      quiet = true;
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (voters < 1 || voters + observers > 64) usage("--nodes/--observers out of range");
  if (!file.empty()) {
    jobs = read_file(file);
  } else if (have_range) {
    for (std::uint64_t s = first;; ++s) {
      jobs.push_back(mixed ? mixed_job(s) : Job{s, voters, observers});
      if (s == last) break;
    }
  } else {
    usage("give --seed, --seeds or --file");
  }
  std::signal(SIGABRT, on_abort);
  // Non-default options, repeated in every replay command.
  std::string flags;
  if (base.liveness_budget != SimOptions{}.liveness_budget) {
    flags += " --liveness-budget " + std::to_string(base.liveness_budget);
  }
  if (!base.restart_probes) flags += " --no-restart-probes";
  if (!base.host_bug.empty()) flags += " --host-bug " + base.host_bug;

  std::uint64_t events = 0, commits = 0, failures = 0;
  fastzab::sim::FaultCounts faults;
  std::uint64_t frozen_seeds = 0, clock_seeds = 0, diskerr_seeds = 0, stall_seeds = 0,
                zombie_seeds = 0;
  bool expected_seen = false;
  std::uint64_t acked = 0, forwarded_acked = 0, refused = 0, unknown = 0, retries_acked = 0;
  for (const Job& j : jobs) {
    SimOptions opt = base;
    opt.seed = j.seed;
    opt.voters = j.voters;
    opt.observers = j.observers;
    opt.verbose = verbose;
    std::snprintf(g_abort_note, sizeof g_abort_note,
                  "fastzab-sim: ABORT in seed %llu; replay: fastzab-sim --seed %llu --nodes %u "
                  "--observers %u --steps %llu%s\n",
                  static_cast<unsigned long long>(j.seed), static_cast<unsigned long long>(j.seed),
                  j.voters, j.observers, static_cast<unsigned long long>(opt.steps), flags.c_str());
    Cluster cluster(opt);
    const SimResult r = cluster.run();
    events += r.events;
    commits += r.commits;
    acked += r.acknowledged;
    forwarded_acked += r.forwarded_acknowledged;
    retries_acked += r.retries_acknowledged;
    refused += r.refused;
    unknown += r.unknown_outcomes;
    faults.partitions += r.faults.partitions;
    faults.crashes += r.faults.crashes;
    faults.drops += r.faults.drops;
    faults.spikes += r.faults.spikes;
    faults.slow_disks += r.faults.slow_disks;
    faults.freezes += r.faults.freezes;
    faults.transfers += r.faults.transfers;
    faults.clock_faults += r.faults.clock_faults;
    faults.disk_errors += r.faults.disk_errors;
    faults.disk_failures += r.faults.disk_failures;
    faults.disk_stalls += r.faults.disk_stalls;
    faults.zombie_freezes += r.faults.zombie_freezes;
    faults.zombies += r.faults.zombies;
    faults.zombie_frames += r.faults.zombie_frames;
    faults.zombie_frames_delivered += r.faults.zombie_frames_delivered;
    faults.lost_tails += r.faults.lost_tails;
    faults.lost_tail_entries += r.faults.lost_tail_entries;
    if (r.faults.freezes != 0) ++frozen_seeds;
    if (r.faults.clock_faults != 0) ++clock_seeds;
    if (r.faults.disk_failures != 0) ++diskerr_seeds;
    if (r.faults.disk_stalls != 0) ++stall_seeds;
    if (r.faults.zombies != 0) ++zombie_seeds;
    const bool ok = r.violation.empty();
    if (!ok) ++failures;
    if (!quiet || !ok) {
      std::printf("seed=%llu nodes=%u+%u profile=%s time=%lld events=%llu commits=%zu "
                  "leaders=%zu acked=%zu(fwd %zu) refused=%zu unknown=%zu liveness=%lld "
                  "digest=%016llx %s%s\n",
                  static_cast<unsigned long long>(r.seed), j.voters, j.observers,
                  r.profile.c_str(), static_cast<long long>(r.time),
                  static_cast<unsigned long long>(r.events), r.commits, r.leaders, r.acknowledged,
                  r.forwarded_acknowledged, r.refused, r.unknown_outcomes,
                  static_cast<long long>(r.liveness_time),
                  static_cast<unsigned long long>(r.digest), ok ? "ok" : "VIOLATION: ",
                  r.violation.c_str());
    }
    if (!ok) {
      std::printf("replay: fastzab-sim --seed %llu --nodes %u --observers %u --steps %llu%s "
                  "--verbose\n",
                  static_cast<unsigned long long>(j.seed), j.voters, j.observers,
                  static_cast<unsigned long long>(opt.steps), flags.c_str());
    }
    std::fflush(stdout);
    if (!expect.empty() && r.check == expect) {
      expected_seen = true;
      break;
    }
  }
  if (failures == 0) {
    std::printf("%zu seeds, %llu simulated steps, %llu commits, all ok\n", jobs.size(),
                static_cast<unsigned long long>(events), static_cast<unsigned long long>(commits));
  } else {
    std::printf("%zu seeds, %llu simulated steps, %llu commits, %llu VIOLATIONS\n", jobs.size(),
                static_cast<unsigned long long>(events), static_cast<unsigned long long>(commits),
                static_cast<unsigned long long>(failures));
  }
  std::printf("writes: %llu acknowledged (%llu submitted to a follower or observer and forwarded, "
              "%llu retries of an identified write), %llu refused, %llu unknown outcome\n",
              static_cast<unsigned long long>(acked), static_cast<unsigned long long>(forwarded_acked),
              static_cast<unsigned long long>(retries_acked),
              static_cast<unsigned long long>(refused), static_cast<unsigned long long>(unknown));
  std::printf("faults: %llu partitions, %llu crashes, %llu drops, %llu spikes, %llu slow disks, "
              "%llu freezes (in %llu seeds), %llu transfers, %llu clock faults (in %llu seeds), "
              "%llu disk errors armed / %llu failed ops (in %llu seeds), %llu disk stalls (in %llu "
              "seeds), %llu zombie freezes / %llu zombie leaders (in %llu seeds) / %llu zombie "
              "frames sent, %llu delivered, %llu lost tails (%llu records)\n",
              static_cast<unsigned long long>(faults.partitions),
              static_cast<unsigned long long>(faults.crashes),
              static_cast<unsigned long long>(faults.drops),
              static_cast<unsigned long long>(faults.spikes),
              static_cast<unsigned long long>(faults.slow_disks),
              static_cast<unsigned long long>(faults.freezes),
              static_cast<unsigned long long>(frozen_seeds),
              static_cast<unsigned long long>(faults.transfers),
              static_cast<unsigned long long>(faults.clock_faults),
              static_cast<unsigned long long>(clock_seeds),
              static_cast<unsigned long long>(faults.disk_errors),
              static_cast<unsigned long long>(faults.disk_failures),
              static_cast<unsigned long long>(diskerr_seeds),
              static_cast<unsigned long long>(faults.disk_stalls),
              static_cast<unsigned long long>(stall_seeds),
              static_cast<unsigned long long>(faults.zombie_freezes),
              static_cast<unsigned long long>(faults.zombies),
              static_cast<unsigned long long>(zombie_seeds),
              static_cast<unsigned long long>(faults.zombie_frames),
              static_cast<unsigned long long>(faults.zombie_frames_delivered),
              static_cast<unsigned long long>(faults.lost_tails),
              static_cast<unsigned long long>(faults.lost_tail_entries));
  if (!expect.empty()) {
    std::printf("expect-violation %s: %s\n", expect.c_str(),
                expected_seen ? "reported (ok)" : "NOT reported (the checker did not fire)");
    return expected_seen ? 0 : 1;
  }
  return failures == 0 ? 0 : 1;
}
