#include "bench/cluster/in_process.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <unordered_map>

#include "bench/cluster/heap_count.h"
#include "engine/include/fastzab/fastzab.h"
#include "engine/runtime/config.h"

namespace fastzab::bench {

namespace {

// Counts what it applies; its snapshot is that count.
class CountingMachine final : public StateMachine {
 public:
  void apply(std::uint64_t, std::span<const std::byte>) override { ++applied_; }
  std::vector<std::byte> snapshot() override {
    std::vector<std::byte> out(sizeof applied_);
    std::memcpy(out.data(), &applied_, sizeof applied_);
    return out;
  }
  void restore(std::uint64_t, std::span<const std::byte> s) override {
    applied_ = 0;
    if (s.size() == sizeof applied_) std::memcpy(&applied_, s.data(), sizeof applied_);
  }

 private:
  std::uint64_t applied_ = 0;
};

}  // namespace

struct InProcessCluster::Impl {
  std::vector<std::unique_ptr<CountingMachine>> machines;
  std::vector<std::unique_ptr<Node>> nodes;
  std::uint64_t next_tag = 1;
  // The measured writes are one client's (fastzab::WriteId): this id, and their tags as its
  // sequence (increasing; the leader probes of wait_leader are anonymous).
  std::uint64_t client_id = std::random_device{}() | std::uint64_t{1} << 32;
};

InProcessCluster::InProcessCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
InProcessCluster::~InProcessCluster() {
  for (auto& n : impl_->nodes) n->stop();
}
unsigned InProcessCluster::size() const noexcept { return static_cast<unsigned>(impl_->nodes.size()); }

std::expected<std::unique_ptr<InProcessCluster>, std::string> InProcessCluster::start(const ClusterOptions& options) {
  if (options.servers == 0 || options.servers > 9) {
    return std::unexpected("--servers must be 1..9, not " + std::to_string(options.servers));
  }
  // One group per Node here; busy Nodes get disjoint CPUs as busy servers do.
  auto cpus = cpu_lists(options.servers, 1, options.poll, runtime::available_cpus());
  if (!cpus) return std::unexpected(cpus.error());
  const std::string secret = options.root + "/secret";
  {
    std::random_device rd;
    std::ofstream f(secret);
    for (int i = 0; i < 48; ++i) f << "0123456789abcdef"[rd() % 16];
  }
  ::chmod(secret.c_str(), 0600);
  std::string cfg = "tickTime=" + std::to_string(options.tick_ms) +
                    "\ninitLimit=10\nsyncLimit=5\nclusterId=4242\nclientPort=1\nsecretFile=" + secret +
                    "\npoll=" + options.poll + "\nsync=" + options.sync + "\ndataDir=" + options.root + "/data\n";
  for (const std::string& line : options.extra_config) cfg += line + "\n";
  for (unsigned id = 1; id <= options.servers; ++id) {
    auto q = free_loopback_port();
    auto e = free_loopback_port();
    if (!q || !e) return std::unexpected(std::string("no free port on 127.0.0.1"));
    cfg += "server." + std::to_string(id) + "=127.0.0.1:" + std::to_string(*q) + ":" + std::to_string(*e) + "\n";
  }
  const std::string path = options.root + "/zoo.cfg";
  std::ofstream(path) << cfg;
  auto impl = std::make_unique<Impl>();
  for (unsigned id = 1; id <= options.servers; ++id) {
    impl->machines.push_back(std::make_unique<CountingMachine>());
    NodeOptions o;
    o.config_file = path;
    o.id = id;
    o.data_dir = options.root + "/data" + std::to_string(id);
    if (!cpus->empty()) o.cpus = (*cpus)[id - 1];
    auto node = Node::start(o, *impl->machines.back());
    if (!node) return std::unexpected("server " + std::to_string(id) + ": " + node.error().message);
    impl->nodes.push_back(std::move(*node));
  }
  return std::unique_ptr<InProcessCluster>(new InProcessCluster(std::move(impl)));
}

std::expected<unsigned, std::string> InProcessCluster::wait_leader(std::uint64_t timeout_ns) {
  const std::uint64_t deadline = now_ns() + timeout_ns;
  const std::byte probe[8]{};
  while (now_ns() < deadline) {
    for (unsigned i = 0; i < impl_->nodes.size(); ++i) {
      Node& n = *impl_->nodes[i];
      if (n.status().role != Role::leader) continue;
      const std::uint64_t tag = impl_->next_tag++;
      if (!n.propose(tag, probe)) continue;
      bool answered = false, committed = false;
      const std::uint64_t until = now_ns() + 2'000'000'000u;
      while (!answered && now_ns() < until) {
        n.wait(std::chrono::milliseconds(10));
        n.poll([&](const Event& e) {
          if (e.kind != Event::Kind::role_changed && e.tag == tag) {
            answered = true;
            committed = e.kind == Event::Kind::write_committed;
          }
        });
      }
      if (committed) return i;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::unexpected(std::string("no leader took a write within the time limit"));
}

InProcessRun InProcessCluster::run(unsigned target, unsigned window, std::size_t value_bytes, double warmup_s,
                                   double measured_s) {
  Node& n = *impl_->nodes.at(target);
  std::vector<std::byte> value(value_bytes, std::byte{'v'});
  // The send time of each outstanding write, indexed by tag modulo a power of two above the
  // window: tags are consecutive and at most `window` are outstanding.
  std::size_t slots = 1;
  while (slots < 2u * window) slots <<= 1;
  std::vector<std::uint64_t> sent_at(slots);
  InProcessRun r;
  unsigned outstanding = 0;
  bool measuring = false;
  const std::uint64_t start = now_ns();
  const auto warm_end = start + static_cast<std::uint64_t>(warmup_s * 1e9);
  const auto end = warm_end + static_cast<std::uint64_t>(measured_s * 1e9);
  ResourceSample before;
  std::optional<std::uint64_t> allocations_before;
  for (std::uint64_t now = start; now < end; now = now_ns()) {
    if (!measuring && now >= warm_end) {
      measuring = true;
      r = InProcessRun{};
      before = sample_threads(::getpid());
      allocations_before = heap_allocations();
    }
    while (outstanding < window) {
      const std::uint64_t tag = impl_->next_tag;
      if (!n.propose(0, tag, value, WriteId{impl_->client_id, tag})) break;
      ++impl_->next_tag;
      sent_at[tag & (slots - 1)] = now_ns();
      ++outstanding;
    }
    n.wait(std::chrono::milliseconds(10));
    const std::uint64_t t = now_ns();
    n.poll([&](const Event& e) {
      if (e.kind == Event::Kind::role_changed) return;
      --outstanding;
      if (e.kind == Event::Kind::write_committed) {
        ++r.commits;
        r.latency.record(t - sent_at[e.tag & (slots - 1)]);
      } else {
        ++r.errors;
      }
    });
  }
  if (const auto now_count = heap_allocations(); now_count && allocations_before) {
    r.allocations = *now_count - *allocations_before;
  }
  const ResourceSample after = sample_threads(::getpid());
  r.used.cpu_ns = after.cpu_ns - before.cpu_ns;
  r.used.context_switches = after.context_switches - before.context_switches;
  r.measured_s = measured_s;
  // Let the outstanding writes finish, so the next run starts from an empty window.
  const std::uint64_t drain_until = now_ns() + 5'000'000'000u;
  while (outstanding > 0 && now_ns() < drain_until) {
    n.wait(std::chrono::milliseconds(10));
    n.poll([&](const Event& e) {
      if (e.kind != Event::Kind::role_changed) --outstanding;
    });
  }
  return r;
}

}  // namespace fastzab::bench
