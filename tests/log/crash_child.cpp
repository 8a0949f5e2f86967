// The process the crash test kills: opens the log in argv[1] (recovering it), then appends
// records with deterministic payloads forever, pipelining batches, and writes every new durable
// zxid to stdout ("<zxid>\n", one write(2) each) as soon as the log reports it. Now and then it
// writes the epochs (e, e - 1) with e one above the last, and says "e<e>\n" once write_epochs()
// returned.
//
//   log_crash_child DIR SEED sync|io_uring
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "log/log.h"
#include "tests/log/test_util.h"

using namespace fastzab::log;

namespace {
void say(std::uint64_t zxid, const char* prefix = "") {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%s%llu\n", prefix,
                              static_cast<unsigned long long>(zxid));
  if (::write(1, buf, static_cast<std::size_t>(n)) != n) std::_Exit(3);
}
[[noreturn]] void die(const Error& e) {
  std::fprintf(stderr, "log_crash_child: %s\n", e.to_string().c_str());
  std::_Exit(2);
}
}  // namespace

Options crash_options(WriterKind writer);  // crash_options.cpp

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: log_crash_child DIR SEED sync|io_uring\n");
    return 2;
  }
  const WriterKind writer = std::string(argv[3]) == "io_uring" ? WriterKind::io_uring : WriterKind::sync;
  auto log = Log::open(argv[1], crash_options(writer));
  if (!log) die(log.error());
  std::mt19937_64 rng(std::strtoull(argv[2], nullptr, 10));
  std::uint64_t z = (*log)->last_zxid();
  std::uint64_t said = (*log)->durable_zxid();
  std::uint64_t epoch = (*log)->epochs().accepted;
  while (true) {
    const std::uint64_t n = 1 + rng() % 24;
    for (std::uint64_t i = 0; i < n; ++i) {
      ++z;
      if (auto r = (*log)->append(z, fastzab::log::testing::payload_for(z, 2500)); !r) die(r.error());
    }
    if (rng() % 6 == 0) {
      ++epoch;
      if (auto r = (*log)->write_epochs({epoch, epoch - 1}); !r) die(r.error());
      say(epoch, "e");
    }
    Result<std::uint64_t> d = 0;
    if (rng() % 4 == 0) {
      d = (*log)->flush();
    } else {
      if (auto r = (*log)->submit(); !r) die(r.error());
      d = (*log)->poll(rng() % 2 == 0);
    }
    if (!d) die(d.error());
    if (*d > said) {
      said = *d;
      say(said);
    }
  }
}
