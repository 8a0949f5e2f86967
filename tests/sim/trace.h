// Human-readable descriptions of the core's inputs, outputs and frames for --verbose traces.
#pragma once

#include <string>

#include "engine/core/io.h"

namespace fastzab::sim {

std::string describe_frame(core::Bytes frame);
std::string describe_input(const core::Input& in);
std::string describe_output(const core::Outputs& outs, const core::Output& o);

}  // namespace fastzab::sim
