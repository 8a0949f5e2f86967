// fastzab-kv-example --config FILE --id N: the embedding example of README.md. One server of a
// cluster that replicates a key-value map. Commands on stdin, one per line:
//   set KEY VALUE    replicate; prints the commit zxid once this server applied it
//   get KEY          the local value (after every write this server saw committed)
//   status           role, leader, epoch
// Start one per server.N line of the config (each with its own clientPort and dataDir).
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include <fastzab/fastzab.h>

#include "kv_map.h"

int main(int argc, char** argv) {
  if (argc != 5 || std::string(argv[1]) != "--config" || std::string(argv[3]) != "--id") {
    std::fprintf(stderr, "usage: fastzab-kv-example --config FILE --id N\n");
    return 2;
  }
  kv_example::KvMap kv;
  fastzab::NodeOptions options;
  options.config_file = argv[2];
  options.id = std::stoull(argv[4]);
  auto node = fastzab::Node::start(options, kv);
  if (!node) {
    std::fprintf(stderr, "fastzab-kv-example: %s\n", node.error().message.c_str());
    return node.error().kind == fastzab::StartError::Kind::configuration ? 2 : 1;
  }
  std::uint64_t tag = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, key, value;
    in >> cmd >> key;
    std::getline(in >> std::ws, value);
    if (cmd == "set") {
      const std::uint64_t mine = ++tag;
      if (!(*node)->propose(mine, kv_example::encode_set(key, value))) {
        std::printf("busy\n");
        continue;
      }
      bool done = false;
      while (!done && (*node)->wait(std::chrono::seconds(10))) {
        (*node)->poll([&](const fastzab::Event& e) {
          if (e.kind == fastzab::Event::Kind::role_changed || e.tag != mine) return;
          done = true;
          if (e.kind == fastzab::Event::Kind::write_committed) {
            std::printf("committed 0x%016" PRIx64 "\n", e.zxid);
          } else {
            std::printf("failed %s\n", fastzab::to_string(e.outcome));
          }
        });
      }
      if (!done) std::printf("no answer in 10 s\n");
    } else if (cmd == "get") {
      // The map belongs to the group thread; this read is for a quiet example only.
      auto it = kv.map.find(key);
      std::printf("%s\n", it == kv.map.end() ? "(none)" : it->second.c_str());
    } else if (cmd == "status") {
      const fastzab::NodeStatus s = (*node)->status();
      std::printf("%s leader %" PRIu64 " epoch %" PRId64 " applied %" PRIu64 "\n",
                  fastzab::to_string(s.role), s.leader, s.epoch, s.applied);
    } else if (!cmd.empty()) {
      std::printf("unknown command %s\n", cmd.c_str());
    }
    std::fflush(stdout);
  }
  (*node)->stop();
  return 0;
}
