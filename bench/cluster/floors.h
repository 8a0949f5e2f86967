// What the hardware allows, measured in the same run as the cluster so that every result can be
// printed as a ratio to it:
//  * a round trip of one small frame between two processes over the cluster's own transport
//    (net::Transport, io_uring TCP on 127.0.0.1) in the cluster's poll mode;
//  * append + fdatasync of one batch of a given size to a file in the cluster's directory (the
//    same file system as the logs), at the batch sizes the leader's log was seen to write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>

#include "bench/cluster/histogram.h"

namespace fastzab::bench {

std::expected<Histogram, std::string> measure_round_trip(const std::string& poll_mode, unsigned samples);
std::expected<Histogram, std::string> measure_fdatasync(const std::string& directory, std::size_t batch_bytes,
                                                        unsigned samples);

}  // namespace fastzab::bench
