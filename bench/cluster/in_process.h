// --in-process: N fastzab::Nodes in this process, driven through the embedding API
// (engine/include/fastzab/fastzab.h) from one thread, closed loop, so that the engine's cost shows
// without the client port and its sockets.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/cluster/histogram.h"
#include "bench/cluster/process_cluster.h"

namespace fastzab::bench {

struct InProcessRun {
  Histogram latency;
  std::uint64_t commits = 0, errors = 0;
  double measured_s = 0;
  ResourceSample used;  // this whole process (the Nodes' threads and the driver) over the run
  // Heap allocations in this process over the run (heap_count.h); nullopt when not counted.
  std::optional<std::uint64_t> allocations;
};

class InProcessCluster {
 public:
  // Writes a zoo.cfg like ProcessCluster's into options.root and starts the Nodes.
  static std::expected<std::unique_ptr<InProcessCluster>, std::string> start(const ClusterOptions& options);
  ~InProcessCluster();
  // The index of the node that leads once a write through it commits.
  std::expected<unsigned, std::string> wait_leader(std::uint64_t timeout_ns);
  InProcessRun run(unsigned target, unsigned window, std::size_t value_bytes, double warmup_s, double measured_s);
  unsigned size() const noexcept;

  struct Impl;

 private:
  explicit InProcessCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fastzab::bench
