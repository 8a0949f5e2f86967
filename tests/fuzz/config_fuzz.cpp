// libFuzzer target for the zoo.cfg parser (engine/runtime/config.*): parse_config() on arbitrary
// text (the from-string entry point that load_config() uses; no file system). Properties:
//   * it returns a configuration or one error, and is deterministic;
//   * errors and warnings are single lines naming the source ("fuzz.cfg...");
//   * an accepted configuration is self-consistent: servers ascending by id and the cluster's
//     members, the required keys set, every limit in its documented range;
//   * its timing, made into the core's by set_node_timing(), is accepted by core::Node for the
//     first and the last configured server (config.h: "parse_config's checks make the result acceptable to
//     core::Node"; the Node constructor throws std::invalid_argument otherwise);
//   * a cpus= list, formatted and parsed again, gives the same CPUs.
// The input is also given to parse_cpu_list() directly.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "engine/core/node.h"
#include "engine/runtime/config.h"

namespace {

using namespace fastzab;
using runtime::ServerConfig;

constexpr std::string_view kSource = "fuzz.cfg";

[[noreturn]] void broken(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "config_fuzz: property broken: %s%s%s\n", what, detail.empty() ? "" : ": ",
               detail.c_str());
  std::abort();
}
#define CONFIG_FUZZ_CHECK(cond, detail) \
  do {                                  \
    if (!(cond)) broken(#cond, detail); \
  } while (0)

void check_line(const std::string& line) {
  CONFIG_FUZZ_CHECK(std::string_view(line).starts_with(kSource), line);
  CONFIG_FUZZ_CHECK(line.find('\n') == std::string::npos, line);
}

void check_cpu_list(const std::vector<std::uint32_t>& cpus) {
  for (std::uint32_t c : cpus) CONFIG_FUZZ_CHECK(c < runtime::kMaxCpus, std::to_string(c));
  const std::string text = runtime::format_cpu_list(cpus);
  auto again = runtime::parse_cpu_list(text);
  if (cpus.empty()) {
    CONFIG_FUZZ_CHECK(text.empty(), text);
    return;
  }
  CONFIG_FUZZ_CHECK(again.has_value(), text + ": " + (again ? "" : again.error().message));
  std::vector<std::uint32_t> sorted = cpus;
  std::sort(sorted.begin(), sorted.end());
  CONFIG_FUZZ_CHECK(*again == sorted, text);
}

void check_config(const ServerConfig& c) {
  CONFIG_FUZZ_CHECK(c.source == kSource, c.source);
  for (const std::string& w : c.warnings) check_line(w);
  CONFIG_FUZZ_CHECK(c.cluster_id != 0, "clusterId");
  CONFIG_FUZZ_CHECK(c.servers.size() == c.cluster.members().size(), std::to_string(c.servers.size()));
  CONFIG_FUZZ_CHECK(c.secret.empty(), "parse_config reads no secret file");
  CONFIG_FUZZ_CHECK(c.groups >= 1 && c.groups <= runtime::kMaxGroups, std::to_string(c.groups));
  CONFIG_FUZZ_CHECK(c.prealloc_kb >= runtime::kMinPreAllocKb && c.prealloc_kb <= runtime::kMaxPreAllocKb,
                    std::to_string(c.prealloc_kb));
  CONFIG_FUZZ_CHECK(c.tick_resolution_ms >= 1, std::to_string(c.tick_resolution_ms));
  for (std::size_t i = 0; i < c.servers.size(); ++i) {
    CONFIG_FUZZ_CHECK(i == 0 || c.servers[i - 1].id.value < c.servers[i].id.value, std::to_string(i));
    CONFIG_FUZZ_CHECK(c.servers[i].quorum_port != 0 && c.servers[i].election_port != 0,
                      c.servers[i].host);
    CONFIG_FUZZ_CHECK(c.cluster.members()[i].id == c.servers[i].id, std::to_string(i));
  }
  check_cpu_list(c.cpus);
  if (c.servers.empty()) return;

  for (const runtime::ServerEntry& s : c.servers) {
    CONFIG_FUZZ_CHECK(runtime::validate_for(c, s.id).has_value(), std::to_string(s.id.value));
  }
  // core::Node for the first and the last server (a participant, and an observer when there is
  // one): constructing a Node costs far more than parsing.
  for (const runtime::ServerEntry* sp : {&c.servers.front(), &c.servers.back()}) {
    const runtime::ServerEntry& s = *sp;
    core::NodeConfig node;
    node.cluster = c.cluster;
    node.self = s.id;
    runtime::set_node_timing(c, node);
    try {
      core::Node n(node, core::DurableState{});
    } catch (const std::invalid_argument& e) {
      broken("core::Node refuses an accepted configuration", e.what());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = runtime::parse_config(text, kSource);
  if (!config) {
    check_line(config.error().message);
  } else {
    check_config(*config);
  }
  // Deterministic: the same text gives the same verdict and message.
  auto again = runtime::parse_config(text, kSource);
  CONFIG_FUZZ_CHECK(again.has_value() == config.has_value(), std::string(text.substr(0, 200)));
  if (!config) {
    CONFIG_FUZZ_CHECK(again.error().message == config.error().message, config.error().message);
  } else {
    CONFIG_FUZZ_CHECK(again->warnings == config->warnings, "warnings");
  }

  if (size <= 256) {
    auto cpus = runtime::parse_cpu_list(text);
    if (cpus) check_cpu_list(*cpus);
  }
  return 0;
}
