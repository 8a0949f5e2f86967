// zoo.cfg parsing (engine/runtime/config.h): a full example, every default, one test per error
// with its message (exact text for many, the source:line prefix for all), warnings for unknown
// and misspelled keys, hierarchical quorums, load_config's secret file, validate_for.
#include "engine/runtime/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "engine/core/constants.h"
#include "engine/core/node.h"

namespace fastzab::runtime {
namespace {

using core::MemberSet;
using core::ServerId;

// Seven lines, so that a line appended with with() is line 8.
constexpr std::string_view kBase =
    "dataDir=/var/lib/fastzab\n"              // 1
    "clientPort=2181\n"                       // 2
    "clusterId=7\n"                           // 3
    "secretFile=/etc/fastzab/secret\n"        // 4
    "server.1=127.0.0.1:2888:3888\n"          // 5
    "server.2=127.0.0.1:2889:3889\n"          // 6
    "server.3=127.0.0.1:2890:3890\n";         // 7
constexpr int kNext = 8;

std::string with(std::string_view extra) { return std::string(kBase) + std::string(extra) + "\n"; }

Result<ServerConfig> parse(std::string_view text) { return parse_config(text, "zoo.cfg"); }

// The error message, or a note that there was none.
std::string error_of(std::string_view text) {
  auto c = parse(text);
  return c ? "(parsed without error)" : c.error().message;
}

std::string at_line(int line) { return "zoo.cfg:" + std::to_string(line) + ": "; }

ServerConfig parse_ok(std::string_view text) {
  auto c = parse(text);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return c ? *c : ServerConfig{};
}

MemberSet set_of(std::initializer_list<std::size_t> indices) {
  MemberSet s;
  for (std::size_t i : indices) s.set(i);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Valid configurations

TEST(ConfigTest, FullExampleParses) {
  const ServerConfig c = parse_ok(
      "# a comment\n"
      "\n"
      "   tickTime = 500  \n"
      "initLimit=20\n"
      "syncLimit=4\n"
      "dataDir=/data/fz\n"
      "clientPort=12181\n"
      "server.3=10.0.0.3:2888:3888:participant\n"
      "server.1=10.0.0.1:2888:3888\n"
      "server.2=[fe80::2]:2888:3888\n"
      "server.10=10.0.0.4:2888:3888:observer\n"
      "transport=uring\n"
      "poll=busy\n"
      "sync=none\n"
      "groups=8\n"
      "secretFile=/etc/fz/secret\n"
      "clusterId=18446744073709551615\n"
      "snapCount=5000\n"
      "trace=on\n");
  EXPECT_EQ(c.source, "zoo.cfg");
  EXPECT_EQ(c.tick_time_ms, 500u);
  EXPECT_EQ(c.init_limit_ticks, 20u);
  EXPECT_EQ(c.sync_limit_ticks, 4u);
  EXPECT_EQ(c.snap_count, 5000u);
  EXPECT_EQ(c.data_dir, "/data/fz");
  EXPECT_EQ(c.client_port, 12181);
  EXPECT_EQ(c.transport, Transport::uring);
  EXPECT_EQ(c.poll, PollMode::busy);
  EXPECT_EQ(c.sync, SyncMode::none);
  EXPECT_EQ(c.groups, 8u);
  EXPECT_EQ(c.secret_file, "/etc/fz/secret");
  EXPECT_EQ(c.secret_file_line, 16u);
  EXPECT_TRUE(c.secret.empty());  // parse_config reads no file
  EXPECT_EQ(c.cluster_id, 18446744073709551615ull);
  EXPECT_TRUE(c.trace);
  EXPECT_TRUE(c.warnings.empty());

  // Sorted by id, whatever the file order.
  ASSERT_EQ(c.servers.size(), 4u);
  EXPECT_EQ(c.servers[0].id, ServerId{1});
  EXPECT_EQ(c.servers[0].host, "10.0.0.1");
  EXPECT_EQ(c.servers[0].line, 9u);
  EXPECT_EQ(c.servers[1].host, "fe80::2");
  EXPECT_EQ(c.servers[2].id, ServerId{3});
  EXPECT_EQ(c.servers[2].quorum_port, 2888);
  EXPECT_EQ(c.servers[2].election_port, 3888);
  EXPECT_FALSE(c.servers[2].observer);
  EXPECT_EQ(c.servers[3].id, ServerId{10});
  EXPECT_TRUE(c.servers[3].observer);

  // The core's view: the same members in the same order, majority over the three voters.
  ASSERT_EQ(c.cluster.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(c.cluster.members()[i].id, c.servers[i].id);
  EXPECT_EQ(c.cluster.verifier().kind(), core::QuorumVerifier::Kind::majority);
  EXPECT_FALSE(c.cluster.is_voter(ServerId{10}));
  EXPECT_TRUE(c.cluster.verifier().is_quorum(set_of({0, 1})));
  EXPECT_FALSE(c.cluster.verifier().is_quorum(set_of({0, 3})));
}

// transport=dpdk: the EAL's arguments and the peer table, each server's own (net/README.md).
TEST(ConfigTest, DpdkKeys) {
  const std::string base =
      "dataDir=/d\nclientPort=2181\nclusterId=1\nsecretFile=/s\n"
      "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\nserver.3=10.0.0.3:2888:3888\n";
  const ServerConfig c = parse_ok(base +
                                  "transport=dpdk\n"
                                  "dpdkEal= --no-huge -m 256\t--no-pci  --vdev=net_memif0,role=server \n"
                                  "dpdkPeer.2=0\n"
                                  "dpdkPeer.3=1,02:aB:00:00:00:03\n");
  EXPECT_EQ(c.transport, Transport::dpdk);
  EXPECT_EQ(c.dpdk_eal, (std::vector<std::string>{"--no-huge", "-m", "256", "--no-pci",
                                                  "--vdev=net_memif0,role=server"}));
  ASSERT_EQ(c.dpdk_peers.size(), 2u);
  EXPECT_EQ(c.dpdk_peers[0].id, ServerId{2});
  EXPECT_EQ(c.dpdk_peers[0].port, 0);
  EXPECT_EQ(c.dpdk_peers[0].mac, (std::array<std::uint8_t, 6>{}));
  EXPECT_EQ(c.dpdk_peers[1].port, 1);
  EXPECT_EQ(c.dpdk_peers[1].mac, (std::array<std::uint8_t, 6>{0x02, 0xab, 0, 0, 0, 3}));
  EXPECT_TRUE(c.warnings.empty());

  const auto refused = [&](const std::string& extra, const std::string& why) {
    const auto r = parse_config(base + extra, "zoo.cfg");
    ASSERT_FALSE(r.has_value()) << extra;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  };
  refused("transport=dpdk\n", "transport=dpdk needs the EAL's arguments");
  refused("transport=dpdk\ndpdkEal=--no-huge\n", "transport=dpdk needs a peer table");
  refused("transport=dpdk\ndpdkMemifDir=/m\ndpdkPeer.2=0\n", "give one or the other");
  refused("transport=dpdk\ndpdkEal=--no-huge\ngroups=2\n", "groups=1 only");
  refused("transport=dpdk\ndpdkEal=--no-huge\ndpdkPeer.9=0\n", "server 9 is not listed");
  refused("dpdkPeer.2=70000\n", "70000");
  refused("dpdkPeer.2=x\n", "dpdkPeer.2");
  refused("dpdkPeer.2=0,02:00:00:00:00\n", "is not a MAC address");
  refused("dpdkPeer.2=0,02-00-00-00-00-01\n", "is not a MAC address");
  refused("dpdkPeer.2=0,01:00:5e:00:00:01\n", "multicast");
  refused("dpdkPeer.2=0\ndpdkPeer.2=1\n", "duplicate key");
  // Busy polling is DPDK's default, and check_cpus says what it needs and how to avoid it.
  EXPECT_EQ(c.poll, PollMode::busy);
  EXPECT_TRUE(c.poll_is_default);
  const auto busy = check_cpus(c, {0, 1});
  ASSERT_FALSE(busy.has_value());
  EXPECT_NE(busy.error().message.find("transport=dpdk's default"), std::string::npos) << busy.error().message;
  EXPECT_EQ(parse_ok(base + "transport=dpdk\ndpdkMemifDir=/m\npoll=adaptive\n").poll, PollMode::adaptive);
  const ServerConfig uring = parse_ok(base + "dpdkPeer.2=0\n");
  ASSERT_EQ(uring.warnings.size(), 1u);
  EXPECT_NE(uring.warnings[0].find("ignored: transport is not dpdk"), std::string::npos) << uring.warnings[0];
}

// A server's own dpdkPeer table must name every other server once, and not itself.
TEST(ConfigTest, DpdkPeerTableMatchesTheCluster) {
  const std::string base =
      "dataDir=/d\nclientPort=2181\nclusterId=1\nsecretFile=/s\ntransport=dpdk\ndpdkEal=-l 0\n"
      "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\nserver.3=10.0.0.3:2888:3888\n";
  const auto check = [&](const std::string& table, std::int64_t self) {
    return validate_for(parse_ok(base + table), ServerId{self});
  };
  EXPECT_EQ(check("dpdkPeer.2=0\ndpdkPeer.3=1\n", 1), 0u);
  const auto refused = [&](const std::string& table, std::int64_t self, const std::string& why) {
    const auto r = check(table, self);
    ASSERT_FALSE(r.has_value()) << table;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  };
  refused("dpdkPeer.2=0\n", 1, "does not say how to reach server 3");
  refused("dpdkPeer.1=0\ndpdkPeer.2=1\ndpdkPeer.3=2\n", 1, "names server 1 itself");
  refused("dpdkPeer.1=0\n", 3, "does not say how to reach server 2");
}

// What transport=dpdk sets up: the EAL's arguments and the peers, from either form of table.
TEST(ConfigTest, DpdkPlan) {
  const std::string base =
      "dataDir=/data/s2\nclientPort=2181\nclusterId=1\nsecretFile=/s\ntransport=dpdk\n"
      "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\nserver.3=10.0.0.3:2888:3888\n";
  const DpdkPlan mesh = dpdk_plan(parse_ok(base + "dpdkMemifDir=/run/fz\n"), ServerId{2}, 1);
  const std::vector<std::string> defaults = {"--no-huge", "-m", "256", "--no-pci", "--iova-mode=va",
                                             "--no-telemetry", "--log-level=lib.eal:notice", "-l", "1"};
  ASSERT_EQ(mesh.eal.size(), defaults.size() + 3);
  EXPECT_TRUE(std::equal(defaults.begin(), defaults.end(), mesh.eal.begin()));
  EXPECT_TRUE(mesh.eal[defaults.size()].starts_with("--file-prefix=fastzab-")) << mesh.eal[defaults.size()];
  // Server 2 listens on its link to 3 and dials 1's.
  EXPECT_EQ(mesh.eal[defaults.size() + 1],
            "--vdev=net_memif_1_2,role=client,socket=/run/fz/memif-1-2.sock,socket-abstract=no,id=0");
  EXPECT_EQ(mesh.eal[defaults.size() + 2],
            "--vdev=net_memif_2_3,role=server,socket=/run/fz/memif-2-3.sock,socket-abstract=no,id=0");
  ASSERT_EQ(mesh.peers.size(), 2u);
  EXPECT_EQ(mesh.peers[0].id, ServerId{1});
  EXPECT_EQ(mesh.peers[0].device, "net_memif_1_2");
  EXPECT_EQ(mesh.peers[1].device, "net_memif_2_3");
  // The prefix is the server's own: stable for it, distinct from another server's.
  EXPECT_EQ(dpdk_plan(parse_ok(base + "dpdkMemifDir=/run/fz\n"), ServerId{2}, 1).eal, mesh.eal);
  EXPECT_NE(dpdk_plan(parse_ok(base + "dpdkMemifDir=/run/fz\n"), ServerId{3}, 1).eal[defaults.size()],
            mesh.eal[defaults.size()]);

  // An explicit table and EAL: the arguments as written, lcores and prefix kept.
  const DpdkPlan table = dpdk_plan(
      parse_ok(base + "dpdkEal=-l 3 --file-prefix p2 -a 0000:3b:00.0\n"
                      "dpdkPeer.1=0,02:00:00:00:00:01\ndpdkPeer.3=0,02:00:00:00:00:03\n"),
      ServerId{2}, 0);
  EXPECT_EQ(table.eal, (std::vector<std::string>{"-l", "3", "--file-prefix", "p2", "-a", "0000:3b:00.0"}));
  ASSERT_EQ(table.peers.size(), 2u);
  EXPECT_TRUE(table.peers[1].device.empty());
  EXPECT_EQ(table.peers[1].port, 0);
  EXPECT_EQ(table.peers[1].mac, (std::array<std::uint8_t, 6>{2, 0, 0, 0, 0, 3}));
}

TEST(ConfigTest, EveryDefault) {
  const ServerConfig c = parse_ok(
      "dataDir=/d\n"
      "clientPort=2181\n"
      "clusterId=1\n"
      "server.1=localhost:2888:3888\n");
  EXPECT_EQ(c.tick_time_ms, 2000u);
  EXPECT_EQ(c.init_limit_ticks, 10u);
  EXPECT_EQ(c.sync_limit_ticks, 5u);
  EXPECT_EQ(c.snap_count, 100000u);  // ZooKeeper's default
  EXPECT_EQ(c.prealloc_kb, 65536u);  // ZooKeeper's default: 64 MiB segments
  EXPECT_EQ(c.transport, Transport::uring);
  EXPECT_EQ(c.poll, PollMode::blocking);
  EXPECT_EQ(c.sync, SyncMode::fdatasync);
  EXPECT_EQ(c.groups, 1u);
  EXPECT_FALSE(c.trace);  // commit tracing is off unless asked for
  // One server: no secret needed.
  EXPECT_TRUE(c.secret_file.empty());
  ASSERT_EQ(c.servers.size(), 1u);
  EXPECT_FALSE(c.servers[0].observer);
  EXPECT_EQ(c.cluster.verifier().kind(), core::QuorumVerifier::Kind::majority);
  EXPECT_TRUE(c.warnings.empty());
}

// ---- protocol timing (README.md "Timing") ----

TEST(ConfigTest, UnsetTickResolutionFollowsTheFinestTimerSet) {
  EXPECT_EQ(parse_ok(with("learnerHelloRetryMs=2")).tick_resolution_ms, 2u);
  EXPECT_EQ(parse_ok(with("electionFinalizeWaitMs=3\nheartbeatMs=6")).tick_resolution_ms, 3u);
  EXPECT_EQ(parse_ok(with("electionFinalizeWaitMs=50")).tick_resolution_ms, 5u);
  EXPECT_EQ(parse_ok(with("tickResolutionMs=1")).tick_resolution_ms, 1u);
}

TEST(ConfigTest, TimingDefaultsAreZooKeepersAndDoNotGrowWithTickTime) {
  const ServerConfig c = parse_ok(kBase);
  EXPECT_EQ(c.tick_resolution_ms, 5u);   // coarse: each tick wakes the group thread
  EXPECT_EQ(c.election_finalize_wait_ms, 200u);         // ZooKeeper's finalizeWait
  EXPECT_EQ(c.election_notification_max_ms, 60000u);    // ZooKeeper's back-off cap
  EXPECT_EQ(c.learner_hello_retry_ms, 10u);
  EXPECT_EQ(c.heartbeat_ms, 100u);        // min(100, tickTime/2)
  EXPECT_EQ(c.leader_silence_ms, 2000u);  // min(2000, syncLimit*tickTime)
  core::NodeConfig n;
  set_node_timing(c, n);
  // In ticks of 5 ms.
  EXPECT_EQ(n.finalize_wait_ticks, 40);
  EXPECT_EQ(n.notify_min_ticks, 40);  // the back-off starts at the finalize wait
  EXPECT_EQ(n.notify_max_ticks, 12000);
  EXPECT_EQ(n.learner_hello_retry_ticks, 2);
  EXPECT_EQ(n.ping_ticks, 20);
  EXPECT_EQ(n.leader_silence_ticks, 400);
  EXPECT_EQ(n.init_limit_ticks, 4000);  // initLimit*tickTime
  EXPECT_EQ(n.sync_limit_ticks, 2000);
}

TEST(ConfigTest, TimingDefaultsShrinkWithAShortTickTime) {
  const ServerConfig c = parse_ok(with("tickTime=20"));
  EXPECT_EQ(c.heartbeat_ms, 10u);
  EXPECT_EQ(c.leader_silence_ms, 100u);
  core::NodeConfig n;
  set_node_timing(c, n);
  EXPECT_EQ(n.ping_ticks, 2);  // in ticks of 5 ms
  EXPECT_EQ(n.init_limit_ticks, 40);
  EXPECT_EQ(n.sync_limit_ticks, 20);
  EXPECT_EQ(n.finalize_wait_ticks, 40);  // not tied to tickTime
}

TEST(ConfigTest, TimingKeysConvertToTicksOfTheResolution) {
  const ServerConfig c = parse_ok(with(
      "tickResolutionMs=10\nelectionFinalizeWaitMs=25\nelectionNotificationMaxMs=1000\n"
      "learnerHelloRetryMs=10\nheartbeatMs=50\nleaderSilenceMs=301\ninitLimit=2147483647\n"
      "transferTimeoutMs=95"));
  core::NodeConfig n;
  set_node_timing(c, n);
  EXPECT_EQ(n.transfer_timeout_ticks, 10);
  EXPECT_EQ(n.finalize_wait_ticks, 3);  // rounded up
  EXPECT_EQ(n.notify_min_ticks, 3);
  EXPECT_EQ(n.notify_max_ticks, 100);
  EXPECT_EQ(n.learner_hello_retry_ticks, 1);
  EXPECT_EQ(n.ping_ticks, 5);
  EXPECT_EQ(n.leader_silence_ticks, 31);
  EXPECT_EQ(n.init_limit_ticks, core::kMaxDurationTicks);  // capped, about 124 days here
  EXPECT_EQ(n.sync_limit_ticks, 1000);
  // The core accepts what parse_config let through.
  n.cluster = c.cluster;
  n.self = ServerId{1};
  EXPECT_NO_THROW(core::Node(n, core::DurableState{}));
}

TEST(ConfigTest, TransferTimeoutDefaultAndBounds) {
  core::NodeConfig n;
  set_node_timing(parse_ok(with("")), n);
  EXPECT_EQ(n.transfer_timeout_ticks, 200);  // 1000 ms in ticks of 5 ms
  EXPECT_EQ(error_of(with("transferTimeoutMs=0")),
            at_line(kNext) + "transferTimeoutMs: 0 is out of range 1..2147483647");
  EXPECT_EQ(error_of(with("tickResolutionMs=10\ntransferTimeoutMs=5")),
            at_line(kNext + 1) + "transferTimeoutMs: 5 ms is below tickResolutionMs (10 ms), "
                                 "the finest time the server counts");
}

TEST(ConfigTest, TimingErrors) {
  EXPECT_EQ(error_of(with("tickResolutionMs=0")),
            at_line(kNext) + "tickResolutionMs: 0 is out of range 1..1000");
  EXPECT_EQ(error_of(with("electionFinalizeWaitMs=soon")),
            at_line(kNext) + "electionFinalizeWaitMs: 'soon' is not a whole number");
  EXPECT_EQ(error_of(with("electionNotificationMaxMs=100")),
            at_line(kNext) + "electionNotificationMaxMs: 100 ms is below electionFinalizeWaitMs "
                             "(200 ms), where the notification back-off starts");
  EXPECT_EQ(error_of(with("electionFinalizeWaitMs=70000")),
            at_line(kNext) + "electionFinalizeWaitMs: 70000 ms is above "
                             "electionNotificationMaxMs (60000 ms), the cap of the notification "
                             "back-off that starts at it");
  EXPECT_EQ(error_of(with("tickResolutionMs=10\nlearnerHelloRetryMs=5")),
            at_line(kNext + 1) + "learnerHelloRetryMs: 5 ms is below tickResolutionMs (10 ms), "
                                 "the finest time the server counts");
  EXPECT_EQ(error_of(with("heartbeatMs=6000")),
            at_line(kNext) + "heartbeatMs: 6000 ms is more than half of syncLimit*tickTime "
                             "(10000 ms): the leader would drop followers between heartbeats");
  EXPECT_EQ(error_of(with("leaderSilenceMs=150")),
            at_line(kNext) + "leaderSilenceMs: 150 ms is less than two heartbeats (heartbeatMs "
                             "100 ms): followers would give up a live leader");
  EXPECT_EQ(error_of(with("heartbeatMs=100\nheartbeatMs=100")),
            at_line(kNext + 1) + "heartbeatMs: duplicate key (first set on line 8)");
}

TEST(ConfigTest, SnapCountBounds) {
  EXPECT_EQ(parse_ok(with("preAllocSize=2048")).prealloc_kb, 2048u);
  EXPECT_EQ(parse_ok(with("snapCount=1")).snap_count, 1u);
  EXPECT_EQ(parse_ok(with("snapCount = 200 ")).snap_count, 200u);
  EXPECT_EQ(parse_ok(with("snapCount=2147483647")).snap_count, 2147483647u);
  // A key fastzab reads now: no "does not use" warning.
  EXPECT_TRUE(parse_ok(with("snapCount=100000")).warnings.empty());
}

TEST(ConfigTest, TraceOnOrOff) {
  EXPECT_TRUE(parse_ok(with("trace=on")).trace);
  EXPECT_TRUE(parse_ok(with("  trace =  on \r")).trace);
  EXPECT_FALSE(parse_ok(with("trace=off")).trace);
  EXPECT_TRUE(parse_ok(with("trace=on")).warnings.empty());
  // A misspelt key is a warning with a hint, and tracing stays off.
  const ServerConfig c = parse_ok(with("trce=on"));
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0], "zoo.cfg:8: trce: unknown key; ignored (did you mean trace?)");
  EXPECT_FALSE(c.trace);
  EXPECT_EQ(error_of(with("trace=on\ntrace=off")),
            at_line(kNext + 1) + "trace: duplicate key (first set on line 8)");
}

TEST(ConfigTest, CpusListsAndRanges) {
  EXPECT_TRUE(parse_ok(kBase).cpus.empty());  // the default: nothing is pinned
  EXPECT_EQ(parse_ok(with("cpus=0,1")).cpus, (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(parse_ok(with("cpus=2-5")).cpus, (std::vector<std::uint32_t>{2, 3, 4, 5}));
  EXPECT_EQ(parse_ok(with("cpus=7")).cpus, (std::vector<std::uint32_t>{7}));
  EXPECT_EQ(parse_ok(with("cpus=1023")).cpus, (std::vector<std::uint32_t>{1023}));
  // The order written is the order of the groups; whitespace around items is ignored.
  EXPECT_EQ(parse_ok(with(" cpus = 6, 0 - 1 ,3 ")).cpus, (std::vector<std::uint32_t>{6, 0, 1, 3}));
  const ServerConfig c = parse_ok(with("cpus=0,1"));
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_EQ(c.cpus_origin, "zoo.cfg:8: cpus");
}

TEST(ConfigTest, CpuListFormatsAsRanges) {
  EXPECT_EQ(format_cpu_list({}), "");
  EXPECT_EQ(format_cpu_list({4}), "4");
  EXPECT_EQ(format_cpu_list({3, 0, 1, 2, 7, 9, 10}), "0-3,7,9-10");
  // Round trip.
  auto parsed = parse_cpu_list(format_cpu_list({0, 2, 3, 4, 8}));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(*parsed, (std::vector<std::uint32_t>{0, 2, 3, 4, 8}));
  EXPECT_FALSE(available_cpus().empty());
}

// check_cpus, the start-up check, against a made-up machine.
TEST(ConfigTest, CpuPlacementAtStartUp) {
  const std::vector<std::uint32_t> two = {0, 1}, four = {0, 1, 2, 3};
  // kBase with quorum ports 10 apart, room for up to 10 groups each (check_group_ports).
  auto with = [](std::string_view extra) {
    std::string text = ::fastzab::runtime::with(extra);
    text.replace(text.find("2889:3889"), 9, "2898:3898");
    text.replace(text.find("2890:3890"), 9, "2908:3908");
    return text;
  };
  auto check = [](const std::string& text, const std::vector<std::uint32_t>& available) {
    auto c = parse(text);
    if (!c) return "parse: " + c.error().message;
    auto r = check_cpus(*c, available);
    return r ? std::string("ok") : r.error().message;
  };
  EXPECT_EQ(check(with(""), two), "ok");  // nothing listed, nothing spins
  EXPECT_EQ(check(with("cpus=1"), two), "ok");
  EXPECT_EQ(check(with("cpus=0-2\ngroups=2"), four), "ok");  // more CPUs than groups
  EXPECT_EQ(check(with("cpus=0,2"), four), "ok");
  EXPECT_EQ(check(with("cpus=0,5"), two),
            at_line(kNext) + "cpus: CPU 5 is not available on this machine (this process may use "
                             "CPUs 0-1)");
  EXPECT_EQ(check(with("poll=busy\ncpus=1"), two), "ok");
  EXPECT_EQ(check(with("poll=busy\ngroups=2\ncpus=1,0"), two), "ok");
  EXPECT_EQ(check(with("poll=busy\ngroups=3\ncpus=0,1"), four),
            at_line(kNext + 2) + "cpus: poll=busy needs one CPU per group: set cpus=0-2 or other "
                                 "distinct CPUs (3 groups, 2 listed)");
  EXPECT_EQ(check(with("poll=busy\ngroups=3"), four),
            "zoo.cfg: cpus: poll=busy needs one CPU per group: list them, e.g. cpus=0-2 for "
            "groups=3 (servers sharing a host need disjoint lists: fastzab-server --cpus); "
            "spinning threads left unpinned compete for the same CPUs");
  EXPECT_EQ(check(with("poll=busy\ngroups=3\ncpus=0"), two),
            at_line(kNext + 2) + "cpus: poll=busy needs one CPU per group: groups=3 but this "
                                 "process may use CPUs 0-1: use fewer groups or poll=adaptive");
  // An override (fastzab-server --cpus) is named as such.
  auto c = parse(with("poll=busy\ngroups=2\ncpus=0,1"));
  ASSERT_TRUE(c);
  c->cpus = {3};
  c->cpus_origin = "--cpus";
  EXPECT_EQ(check_cpus(*c, four).error().message,
            "--cpus: poll=busy needs one CPU per group: set --cpus 0-1 or other distinct CPUs "
            "(2 groups, 1 listed)");
}

// Group g of a server listens on its quorum port + g, so groups=G needs G ports per server, clear
// of the other servers' ports on the same host (kBase's are 2888, 2889, 2890 on 127.0.0.1).
TEST(ConfigErrorTest, GroupPortRangesMustNotOverlap) {
  EXPECT_EQ(error_of(with("groups=2")),
            at_line(6) + "server.2: groups=2 gives server.1 quorum ports 2888..2889 (group g "
                         "listens on quorum port + g), and 127.0.0.1:2889 is server.2's: their "
                         "port ranges overlap (server.1 on line 5)");
  // The election port counts too: nothing listens on it, but it is another server's address.
  EXPECT_EQ(error_of("dataDir=/d\nclientPort=2181\nclusterId=7\nsecretFile=/s\n"
                     "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2898:2889\ngroups=2\n"),
            at_line(6) + "server.2: groups=2 gives server.1 quorum ports 2888..2889 (group g "
                         "listens on quorum port + g), and 127.0.0.1:2889 is server.2's: their "
                         "port ranges overlap (server.1 on line 5)");
  EXPECT_EQ(error_of("dataDir=/d\nclientPort=2181\nclusterId=7\n"
                     "server.1=127.0.0.1:65535:3888\ngroups=2\n"),
            at_line(4) + "server.1: groups=2 needs quorum ports 65535..65536, past 65535");
  // Other hosts, or ports far enough apart, are fine.
  parse_ok("dataDir=/d\nclientPort=2181\nclusterId=7\nsecretFile=/s\n"
           "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\ngroups=8\n");
  parse_ok("dataDir=/d\nclientPort=2181\nclusterId=7\nsecretFile=/s\n"
           "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2890:3890\ngroups=2\n");
}

TEST(ConfigErrorTest, CpusErrors) {
  const std::string l = at_line(kNext) + "cpus: ";
  const std::string form = " (write CPUs as 0,1 and ranges as 2-5)";
  EXPECT_EQ(error_of(with("cpus=0,0")), l + "CPU 0 is listed twice");
  EXPECT_EQ(error_of(with("cpus=0-3,2")), l + "CPU 2 is listed twice");
  EXPECT_EQ(error_of(with("cpus=5-2")), l + "range 5-2 runs backwards");
  EXPECT_EQ(error_of(with("cpus=0,,1")), l + "'0,,1' has an empty item" + form);
  EXPECT_EQ(error_of(with("cpus=0,")), l + "'0,' has an empty item" + form);
  EXPECT_EQ(error_of(with("cpus=a")), l + "'a' is not a CPU number or range" + form);
  EXPECT_EQ(error_of(with("cpus=-1")), l + "'-1' is not a CPU number or range" + form);
  EXPECT_EQ(error_of(with("cpus=1-")), l + "'1-' is not a CPU number or range" + form);
  EXPECT_EQ(error_of(with("cpus=1-2-3")), l + "'1-2-3' is not a CPU number or range" + form);
  EXPECT_EQ(error_of(with("cpus=0 1")), l + "'0 1' is not a CPU number or range" + form);
  EXPECT_EQ(error_of(with("cpus=1024")), l + "CPU 1024 is out of range 0..1023");
  EXPECT_EQ(error_of(with("cpus=0-99999999999")), l + "CPU 99999999999 is out of range 0..1023");
  EXPECT_EQ(error_of(with("cpus=")), l + "empty value");
  EXPECT_EQ(error_of(with("cpus=0\ncpus=1")),
            at_line(kNext + 1) + "cpus: duplicate key (first set on line 8)");
  EXPECT_FALSE(parse_cpu_list(" "));
}

TEST(ConfigTest, WindowsLineEndsAndNoFinalNewline) {
  const ServerConfig c = parse_ok(
      "dataDir=/d\r\nclientPort=2181\r\nclusterId=1\r\nserver.1=h:1:2");
  EXPECT_EQ(c.data_dir, "/d");
  EXPECT_EQ(c.servers[0].election_port, 2);
}

TEST(ConfigTest, ValuesMayContainEqualsSigns) {
  const ServerConfig c = parse_ok("dataDir=/a=b/c\nclientPort=1\nclusterId=1\nserver.1=h:1:2\n");
  EXPECT_EQ(c.data_dir, "/a=b/c");
}

TEST(ConfigTest, EnumNames) {
  EXPECT_STREQ(to_string(Transport::uring), "uring");
  EXPECT_STREQ(to_string(Transport::dpdk), "dpdk");
  EXPECT_STREQ(to_string(PollMode::busy), "busy");
  EXPECT_STREQ(to_string(PollMode::adaptive), "adaptive");
  EXPECT_STREQ(to_string(PollMode::blocking), "blocking");
  EXPECT_STREQ(to_string(SyncMode::fdatasync), "fdatasync");
  EXPECT_STREQ(to_string(SyncMode::none), "none");
}

TEST(ConfigTest, ExampleFileParsesWithoutWarnings) {
  std::ifstream in(FASTZAB_EXAMPLE_ZOO_CFG);
  ASSERT_TRUE(in) << FASTZAB_EXAMPLE_ZOO_CFG;
  std::stringstream text;
  text << in.rdbuf();
  const ServerConfig c = parse_ok(text.str());
  EXPECT_TRUE(c.warnings.empty());
  ASSERT_EQ(c.servers.size(), 3u);
  for (const ServerEntry& s : c.servers) EXPECT_EQ(s.host, "127.0.0.1");
  EXPECT_FALSE(c.secret_file.empty());
}

// ---------------------------------------------------------------------------------------------
// Hierarchical quorums

TEST(ConfigTest, HierarchicalNineServersInThreeGroups) {
  std::string text =
      "dataDir=/d\nclientPort=2181\nclusterId=1\nsecretFile=/s\n"
      "group.1=1:2:3\n"
      "group.2=4:5:6\n"
      "group.3=7:8:9\n"
      "weight.9=0\n";
  for (int i = 1; i <= 10; ++i) {
    text += "server." + std::to_string(i) + "=h" + std::to_string(i) + ":2888:3888" +
            (i == 10 ? ":observer" : "") + "\n";
  }
  const ServerConfig c = parse_ok(text);
  const core::QuorumVerifier& v = c.cluster.verifier();
  EXPECT_EQ(v.kind(), core::QuorumVerifier::Kind::hierarchical);
  EXPECT_EQ(c.cluster.members()[0].group, 1);
  EXPECT_EQ(c.cluster.members()[8].weight, 0);
  EXPECT_EQ(c.cluster.members()[9].group, -1);
  // Two of three in two of three groups: four servers are a quorum.
  EXPECT_TRUE(v.is_quorum(set_of({0, 1, 3, 4})));
  EXPECT_FALSE(v.is_quorum(set_of({0, 1, 2, 3})));
  // Server 9 weighs nothing: 7 and 9 do not cover group 3, 7 and 8 do.
  EXPECT_FALSE(v.is_quorum(set_of({0, 1, 6, 8})));
  EXPECT_TRUE(v.is_quorum(set_of({0, 1, 6, 7})));
  EXPECT_FALSE(c.cluster.is_voter(ServerId{10}));
}

// ---------------------------------------------------------------------------------------------
// Errors, one per check. Each names source:line and the key.

struct LineError {
  const char* name;
  std::string extra;     // appended to kBase as line 8
  std::string message;   // the whole expected message
};

TEST(ConfigErrorTest, EachLineErrorHasItsExactMessage) {
  const std::string l = at_line(kNext);
  const LineError cases[] = {
      {"trailing junk", "tickTime=2000ms", l + "tickTime: '2000ms' is not a whole number"},
      {"comment after value", "tickTime=2000 # ms",
       l + "tickTime: '2000 # ms' is not a whole number (a '#' starts a comment only at the "
           "start of a line)"},
      {"sign", "initLimit=-1", l + "initLimit: '-1' is not a whole number"},
      {"plus sign", "initLimit=+1", l + "initLimit: '+1' is not a whole number"},
      {"tick zero", "tickTime=0", l + "tickTime: 0 is out of range 1..2147483647"},
      {"init zero", "initLimit=0", l + "initLimit: 0 is out of range 1..2147483647"},
      {"sync zero", "syncLimit=0", l + "syncLimit: 0 is out of range 1..2147483647"},
      {"overflow", "syncLimit=99999999999999999999999",
       l + "syncLimit: 99999999999999999999999 is out of range 1..2147483647"},
      {"empty value", "tickTime=", l + "tickTime: empty value"},
      {"duplicate key", "clientPort=2182", l + "clientPort: duplicate key (first set on line 2)"},
      {"duplicate server key", "server.3=h:1:2", l + "server.3: duplicate key (first set on line 7)"},
      {"duplicate server id", "server.03=h:1:2",
       l + "server.03: duplicate server id 3 (first on line 7)"},
      {"port out of range", "server.4=h:70000:3891",
       l + "server.4: port 70000 is out of range 1..65535"},
      {"election port zero", "server.4=h:2891:0", l + "server.4: port 0 is out of range 1..65535"},
      {"port not a number", "server.4=h:28x:3891", l + "server.4: '28x' is not a whole number"},
      {"same ports", "server.4=h:2891:2891",
       l + "server.4: the quorum port and the election port are both 2891"},
      {"duplicate address", "server.4=127.0.0.1:2888:3999",
       l + "server.4: address 127.0.0.1:2888 is already used by server.1 (line 5)"},
      {"duplicate election address", "server.4=127.0.0.1:3999:3890",
       l + "server.4: address 127.0.0.1:3890 is already used by server.3 (line 7)"},
      {"too few fields", "server.4=h:2891",
       l + "server.4: expected host:quorumPort:electionPort[:participant|:observer], got "
           "'h:2891'"},
      {"too many fields", "server.4=h:1:2:observer:x",
       l + "server.4: expected host:quorumPort:electionPort[:participant|:observer], got "
           "'h:1:2:observer:x'"},
      {"bad role", "server.4=h:1:2:voter",
       l + "server.4: role 'voter' is neither participant nor observer"},
      {"unbracketed ipv6", "server.4=::1:2891:3891",
       l + "server.4: the host is empty (write an IPv6 address in brackets: [::1])"},
      {"unclosed bracket", "server.4=[::1:2891:3891",
       l + "server.4: expected host:quorumPort:electionPort[:participant|:observer], got "
           "'[::1:2891:3891'"},
      {"client port suffix", "server.4=h:2891:3891;2181",
       l + "server.4: a client address after ';' (ZooKeeper's dynamic form) is not supported; "
           "use clientPort"},
      {"server id zero", "server.0=h:1:2",
       l + "server.0: server id 0 is out of range 1..9223372036854775807"},
      {"server id too big", "server.9223372036854775808=h:1:2",
       l + "server.9223372036854775808: server id 9223372036854775808 is out of range "
           "1..9223372036854775807"},
      {"server id not a number", "server.x=h:1:2", l + "server.x: 'x' is not a whole number"},
      {"transport", "transport=tcp", l + "transport: 'tcp' is not one of uring, dpdk"},
      {"poll", "poll=spin", l + "poll: 'spin' is not one of busy, adaptive, blocking"},
      {"sync", "sync=fsync", l + "sync: 'fsync' is not one of fdatasync, none"},
      {"trace yes", "trace=yes", l + "trace: 'yes' is not one of off, on"},
      {"trace upper case", "trace=ON", l + "trace: 'ON' is not one of off, on"},
      {"trace number", "trace=1", l + "trace: '1' is not one of off, on"},
      {"trace empty", "trace=", l + "trace: empty value"},
      {"trace comment after value", "trace=on # tracing",
       l + "trace: 'on # tracing' is not one of off, on"},
      {"groups zero", "groups=0", l + "groups: 0 is out of range 1..64"},
      {"groups too many", "groups=65", l + "groups: 65 is out of range 1..64"},
      {"snapCount zero", "snapCount=0", l + "snapCount: 0 is out of range 1..2147483647"},
      {"preAllocSize below a segment's minimum", "preAllocSize=64",
       l + "preAllocSize: 64 is out of range 2048..1073741824"},
      {"snapCount too big", "snapCount=2147483648",
       l + "snapCount: 2147483648 is out of range 1..2147483647"},
      {"snapCount negative", "snapCount=-1", l + "snapCount: '-1' is not a whole number"},
      {"snapCount exponent", "snapCount=1e5", l + "snapCount: '1e5' is not a whole number"},
      {"snapCount empty", "snapCount=", l + "snapCount: empty value"},
      {"no equals sign", "tickTime 2000", l + "tickTime 2000: expected key=value"},
      {"empty key", "=5", l + "'=5': expected key=value, the key is empty"},
      {"key with space", "tick Time=5", l + "'tick Time': a key cannot contain whitespace"},
      {"group member not a server", "group.1=1:2:3:9",
       l + "group.1: server 9 is not listed in a server.N line"},
      {"group member not a number", "group.1=1:2:x", l + "group.1: 'x' is not a whole number"},
      {"group member empty", "group.1=1::2", l + "group.1: empty server id in '1::2'"},
      {"group member twice", "group.1=1:2:1", l + "group.1: server 1 is listed twice"},
      {"group id not a number", "group.a=1:2:3", l + "group.a: 'a' is not a whole number"},
      {"weight not a server", "weight.9=1", l + "weight.9: server 9 is not listed in a server.N line"},
      {"weight negative", "weight.1=-1", l + "weight.1: '-1' is not a whole number"},
      {"weight without groups", "weight.1=2",
       l + "weight.1: weights apply to hierarchical quorums only, and there is no group.G line"},
  };
  for (const LineError& c : cases) {
    EXPECT_EQ(error_of(with(c.extra)), c.message) << c.name;
  }
}

TEST(ConfigErrorTest, TheExampleFromTheBrief) {
  EXPECT_EQ(error_of("dataDir=/d\nclientPort=1\nclusterId=1\nsecretFile=/s\n"
                     "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:70000:5\n"),
            "zoo.cfg:7: server.3: port 70000 is out of range 1..65535");
}

TEST(ConfigErrorTest, SnapCountTwiceAndMisspelt) {
  EXPECT_EQ(error_of(with("snapCount=10\nsnapCount=20")),
            "zoo.cfg:9: snapCount: duplicate key (first set on line 8)");
  const ServerConfig c = parse_ok(with("snapcount=10"));
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0], "zoo.cfg:8: snapcount: unknown key; ignored (did you mean snapCount?)");
  EXPECT_EQ(c.snap_count, 100000u);
}

TEST(ConfigErrorTest, ClusterIdZero) {
  EXPECT_EQ(error_of("clusterId=0\n"),
            "zoo.cfg:1: clusterId: 0 is out of range 1..18446744073709551615");
}

TEST(ConfigErrorTest, RequiredKeys) {
  EXPECT_EQ(error_of("clientPort=1\nclusterId=1\nserver.1=h:1:2\n"),
            "zoo.cfg: dataDir: required key is missing");
  EXPECT_EQ(error_of("dataDir=/d\nclusterId=1\nserver.1=h:1:2\n"),
            "zoo.cfg: clientPort: required key is missing");
  EXPECT_EQ(error_of("dataDir=/d\nclientPort=1\nserver.1=h:1:2\n"),
            "zoo.cfg: clusterId: required key is missing");
  EXPECT_EQ(error_of("dataDir=/d\nclientPort=1\nclusterId=1\nserver.1=h:1:2\nserver.2=h:3:4\n"),
            "zoo.cfg: secretFile: required when more than one server is listed (2 are)");
  // An observer counts: it connects to the others too.
  EXPECT_EQ(error_of("dataDir=/d\nclientPort=1\nclusterId=1\nserver.1=h:1:2\n"
                     "server.2=h:3:4:observer\n"),
            "zoo.cfg: secretFile: required when more than one server is listed (2 are)");
}

TEST(ConfigErrorTest, FewerThanOneVoter) {
  EXPECT_EQ(error_of("dataDir=/d\nclientPort=1\nclusterId=1\n"),
            "zoo.cfg: server.N: no server is listed; at least one participant is needed");
  EXPECT_EQ(error_of("dataDir=/d\nclientPort=1\nclusterId=1\nserver.1=h:1:2:observer\n"),
            "zoo.cfg: server.N: every server is an observer; at least one participant is "
            "needed");
}

TEST(ConfigErrorTest, HierarchyErrorsNameTheirLine) {
  // Groups may come before the servers they name; errors still cite the group's line.
  EXPECT_EQ(error_of("group.1=1:2\n" + with("server.4=h:1:2:observer\ngroup.2=3:4")),
            "zoo.cfg:10: group.2: server 4 is an observer; observers belong to no group");
  EXPECT_EQ(error_of(with("group.1=1:2\ngroup.2=2:3")),
            "zoo.cfg:9: group.2: server 2 is already in group.1 (line 8)");
  EXPECT_EQ(error_of(with("group.1=1:2\ngroup.01=3")),
            "zoo.cfg:9: group.01: duplicate group id 1 (first on line 8)");
  // Every participant in a group: reported at the server's line.
  EXPECT_EQ(error_of(with("group.1=1:2")),
            "zoo.cfg:7: server.3: participant 3 is in no group; with group.G lines every "
            "participant must be in one");
  EXPECT_EQ(error_of(with("server.4=h:1:2:observer\ngroup.1=1:2:3\nweight.4=1")),
            "zoo.cfg:10: weight.4: server 4 is an observer; observers carry no weight");
  EXPECT_EQ(error_of(with("group.1=1:2:3\nweight.2=1\nweight.02=1")),
            "zoo.cfg:10: weight.02: duplicate weight for server 2 (first on line 9)");
  // The core's own checks: every group weighs nothing, a group's weight overflows.
  EXPECT_EQ(error_of(with("group.1=1:2:3\nweight.1=0\nweight.2=0\nweight.3=0")),
            "zoo.cfg: group.G: configuration has no voting member that can form a quorum");
  EXPECT_EQ(error_of(with("group.1=1:2:3\nweight.1=9223372036854775807\n"
                          "weight.2=9223372036854775807")),
            "zoo.cfg: group.G: hierarchical configuration: a group's total weight overflows "
            "int64");
}

TEST(ConfigErrorTest, TooManyServers) {
  std::string text = "dataDir=/d\nclientPort=1\nclusterId=1\nsecretFile=/s\n";
  for (int i = 1; i <= 65; ++i) text += "server." + std::to_string(i) + "=h:" +
                                        std::to_string(2 * i) + ":" +
                                        std::to_string(2 * i + 1) + "\n";
  EXPECT_EQ(error_of(text), "zoo.cfg: server.N: configuration has more than 64 members");
}

// Whatever the check, a line error starts with "<source>:<line>: <key>: ".
TEST(ConfigErrorTest, LineErrorsCiteSourceLineAndKey) {
  const char* lines[] = {
      "tickTime=x", "initLimit=0", "syncLimit=1.5", "clientPort=2182", "server.4=h:1",
      "group.1=7", "weight.7=1", "transport=", "poll=x", "sync=x", "groups=x", "secretFile=",
      "dataDir=/again", "clusterId=x", "snapCount=x", "trace=x"};
  for (const char* extra : lines) {
    const std::string key(std::string_view(extra).substr(0, std::string_view(extra).find('=')));
    const std::string message = error_of(with(extra));
    EXPECT_EQ(message.rfind(at_line(kNext) + key + ": ", 0), 0u) << extra << " -> " << message;
  }
  // With another source name.
  auto c = parse_config("tickTime=x\n", "/etc/fastzab/zoo.cfg");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "/etc/fastzab/zoo.cfg:1: tickTime: 'x' is not a whole number");
}

// ---------------------------------------------------------------------------------------------
// Warnings

TEST(ConfigTest, ClientPortLimitsParseWithTheirDefaultsAndBounds) {
  const ServerConfig d = parse_ok(with(""));
  EXPECT_EQ(d.max_client_cnxns, 60u);
  EXPECT_EQ(d.max_cnxns, 0u);
  EXPECT_EQ(d.client_output_limit_bytes, 1u << 20);
  EXPECT_EQ(d.client_outstanding_limit, 1024u);
  EXPECT_EQ(d.client_input_budget_bytes, 64u << 20);
  EXPECT_EQ(d.client_timeout_ms, 10000u);
  const ServerConfig c = parse_ok(with(
      "maxClientCnxns=0\nmaxCnxns=500\nclientOutputLimitBytes=65536\n"
      "clientOutstandingLimit=1\nclientInputBudgetBytes=2097152\nclientTimeoutMs=250"));
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_EQ(c.max_client_cnxns, 0u);
  EXPECT_EQ(c.max_cnxns, 500u);
  EXPECT_EQ(c.client_output_limit_bytes, 65536u);
  EXPECT_EQ(c.client_outstanding_limit, 1u);
  EXPECT_EQ(c.client_input_budget_bytes, 2097152u);
  EXPECT_EQ(c.client_timeout_ms, 250u);
  for (const char* bad : {"clientOutputLimitBytes=65535", "clientInputBudgetBytes=1048576",
                          "clientOutstandingLimit=0", "clientTimeoutMs=0", "maxCnxns=-1"}) {
    EXPECT_FALSE(parse_config(with(bad), "zoo.cfg").has_value()) << bad;
  }
}

TEST(ConfigWarningTest, UnknownKeysAreIgnoredWithAWarning) {
  const ServerConfig c = parse_ok(with(
      "fancyFeature=on\n"              // 8
      "tickTim=100\n"                  // 9
      "ticktime=100\n"                 // 10
      "sever.4=h:1:2\n"                // 11
      "minSessionTimeout=60\n"         // 12
      "dataLogDir=/logs\n"             // 13
      "secretfile=/x\n"                // 14
      "fancyFeature=off"));            // 15: unknown keys may repeat
  ASSERT_EQ(c.warnings.size(), 8u);
  EXPECT_EQ(c.warnings[0], "zoo.cfg:8: fancyFeature: unknown key; ignored");
  EXPECT_EQ(c.warnings[1], "zoo.cfg:9: tickTim: unknown key; ignored (did you mean tickTime?)");
  EXPECT_EQ(c.warnings[2], "zoo.cfg:10: ticktime: unknown key; ignored (did you mean tickTime?)");
  EXPECT_EQ(c.warnings[3], "zoo.cfg:11: sever.4: unknown key; ignored (did you mean server.4?)");
  EXPECT_EQ(c.warnings[4],
            "zoo.cfg:12: minSessionTimeout: a ZooKeeper setting fastzab does not use; ignored");
  EXPECT_EQ(c.warnings[5], "zoo.cfg:13: dataLogDir: a ZooKeeper setting fastzab does not use; "
                           "ignored (fastzab keeps its log in dataDir)");
  EXPECT_EQ(c.warnings[6],
            "zoo.cfg:14: secretfile: unknown key; ignored (did you mean secretFile?)");
  EXPECT_EQ(c.warnings[7], "zoo.cfg:15: fancyFeature: unknown key; ignored");
  EXPECT_EQ(c.tick_time_ms, 2000u);  // the misspelt tickTime changed nothing
  EXPECT_EQ(c.servers.size(), 3u);
}

// The suggestion's edit distance: swapped neighbours count as one edit, long names (8 letters
// or more) allow two, and a key past that gets no suggestion even where a prefix of the table
// matched well (the distance is cut short once every path is past the limit).
TEST(ConfigWarningTest, SuggestionsFollowTheTypoDistance) {
  const ServerConfig c = parse_ok(with(
      "tickTiem=100\n"        // 8: a transposition
      "TICKTIME=100\n"        // 9: case only
      "snpCout=5\n"           // 10: two deletions in a long name
      "snapCXXXt=5\n"         // 11: three substitutions: too far
      "iintLimit=5\n"         // 12: an insertion at the front
      "initLimitXYZ=5\n"      // 13: three insertions at the end
      "wieght.1=2"));          // 14: a transposition in a prefix
  ASSERT_EQ(c.warnings.size(), 7u);
  EXPECT_EQ(c.warnings[0], "zoo.cfg:8: tickTiem: unknown key; ignored (did you mean tickTime?)");
  EXPECT_EQ(c.warnings[1], "zoo.cfg:9: TICKTIME: unknown key; ignored (did you mean tickTime?)");
  EXPECT_EQ(c.warnings[2], "zoo.cfg:10: snpCout: unknown key; ignored (did you mean snapCount?)");
  EXPECT_EQ(c.warnings[3], "zoo.cfg:11: snapCXXXt: unknown key; ignored");
  EXPECT_EQ(c.warnings[4], "zoo.cfg:12: iintLimit: unknown key; ignored (did you mean initLimit?)");
  EXPECT_EQ(c.warnings[5], "zoo.cfg:13: initLimitXYZ: unknown key; ignored");
  EXPECT_EQ(c.warnings[6], "zoo.cfg:14: wieght.1: unknown key; ignored (did you mean weight.1?)");
}

// ---------------------------------------------------------------------------------------------
// validate_for

TEST(ConfigTest, ValidateForFindsTheServer) {
  const ServerConfig c = parse_ok(with("server.10=h:1:2:observer"));
  auto i = validate_for(c, ServerId{3});
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(*i, 2u);
  EXPECT_EQ(validate_for(c, ServerId{10}).value(), 3u);
  auto missing = validate_for(c, ServerId{9});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message,
            "zoo.cfg: --id 9 is not in the server list (ids: 1, 2, 3, 10)");
}

// ---------------------------------------------------------------------------------------------
// load_config: files

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastzab_config_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_) std::remove(f.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), mode);
    files_.push_back(path);
    return path;
  }
  std::string config_with_secret(const std::string& secret_path) {
    return write("zoo.cfg", "dataDir=/d\nclientPort=1\nclusterId=1\n"
                            "server.1=h:1:2\nserver.2=h:3:4\nsecretFile=" + secret_path + "\n");
  }

  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(LoadConfigTest, ReadsTheSecretTrimmed) {
  const std::string key(40, 'k');
  const std::string cfg = config_with_secret(write("secret", "\n  " + key + "\n"));
  auto c = load_config(cfg);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->secret, key);
  EXPECT_EQ(c->source, cfg);
  EXPECT_TRUE(c->warnings.empty());
}

TEST_F(LoadConfigTest, ShortSecretIsAnErrorAtItsLine) {
  const std::string secret = write("secret", std::string(31, 'k') + "\n\n");
  const std::string cfg = config_with_secret(secret);
  auto c = load_config(cfg);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, cfg + ":6: secretFile: " + secret +
                                   " holds 31 bytes (whitespace trimmed); at least 32 are needed");
}

TEST_F(LoadConfigTest, MissingSecretFile) {
  const std::string cfg = config_with_secret(dir_ + "/nope");
  auto c = load_config(cfg);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message,
            cfg + ":6: secretFile: cannot read " + dir_ + "/nope: No such file or directory");
}

TEST_F(LoadConfigTest, SecretReadableByOthersIsAWarning) {
  const std::string secret = write("secret", std::string(32, 'k'), 0644);
  const std::string cfg = config_with_secret(secret);
  auto c = load_config(cfg);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_EQ(c->warnings[0], cfg + ":6: secretFile: " + secret +
                                " is readable or writable by other users (chmod 600 it)");
}

TEST_F(LoadConfigTest, MissingConfigFile) {
  auto c = load_config(dir_ + "/absent.cfg");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "cannot read " + dir_ + "/absent.cfg: No such file or directory");
}

TEST_F(LoadConfigTest, ParseErrorsNameTheFile) {
  const std::string cfg = write("zoo.cfg", "tickTime=fast\n");
  auto c = load_config(cfg);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, cfg + ":1: tickTime: 'fast' is not a whole number");
}

}  // namespace
}  // namespace fastzab::runtime
