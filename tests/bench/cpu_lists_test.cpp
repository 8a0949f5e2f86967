// fastzab-bench's CPU placement of busy servers (bench/cluster/process_cluster.h, cpu_lists):
// disjoint --cpus lists, nothing for the other poll modes, a refusal that says what to change
// when the machine has too few CPUs.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "bench/cluster/process_cluster.h"
#include "engine/runtime/config.h"

namespace fastzab::bench {
namespace {

TEST(CpuLists, OtherPollModesPinNothing) {
  for (const char* poll : {"blocking", "adaptive"}) {
    auto lists = cpu_lists(3, 4, poll, {0, 1});  // too few CPUs would not matter
    ASSERT_TRUE(lists) << lists.error();
    EXPECT_TRUE(lists->empty()) << poll;
  }
}

TEST(CpuLists, BusyServersGetDisjointCpus) {
  const std::vector<std::uint32_t> available = {0, 1, 2, 3, 4, 5, 8, 9};
  auto lists = cpu_lists(3, 2, "busy", available);
  ASSERT_TRUE(lists) << lists.error();
  EXPECT_EQ(*lists, (std::vector<std::string>{"0-1", "2-3", "4-5"}));
  auto one_each = cpu_lists(4, 2, "busy", available);
  ASSERT_TRUE(one_each) << one_each.error();
  EXPECT_EQ(one_each->back(), "8-9");
  // Every list parses as a server's --cpus would, and no CPU is in two.
  std::set<std::uint32_t> used;
  for (const std::string& l : *one_each) {
    auto cpus = runtime::parse_cpu_list(l);
    ASSERT_TRUE(cpus) << cpus.error().message;
    EXPECT_EQ(cpus->size(), 2u);
    for (std::uint32_t c : *cpus) EXPECT_TRUE(used.insert(c).second) << "CPU " << c << " twice";
  }
}

TEST(CpuLists, TooFewCpusForBusyServersIsRefused) {
  // This machine's shape: 2 CPUs, 3 servers.
  auto lists = cpu_lists(3, 1, "busy", {0, 1});
  ASSERT_FALSE(lists);
  EXPECT_EQ(lists.error(),
            "--poll busy needs a CPU of its own for each spinning group thread: 3 servers x 1 "
            "group = 3 CPUs, but this machine has 2 (0-1); use --poll adaptive or blocking, or "
            "fewer --servers or --groups");
  EXPECT_FALSE(cpu_lists(2, 2, "busy", {0, 1, 2}));
  EXPECT_TRUE(cpu_lists(2, 1, "busy", {0, 1}));
}

}  // namespace
}  // namespace fastzab::bench
