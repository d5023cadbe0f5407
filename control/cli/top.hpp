// SPDX-License-Identifier: Apache-2.0
// `sluicectl top`: a live per-class table from two status readings a
// refresh apart (rates, shed by reason, bucket levels; queues and ports when
// the dataplane has them), redrawn in place on a terminal.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sluice::cli {

// status()["adaptive"] in one line (status and top).
std::string adaptive_line(const nlohmann::json& adaptive);

// Returns the exit code (kOk, or kUnreachable when sluiced stops answering).
int top(const std::string& socket, bool json_out, double interval, int count);

}  // namespace sluice::cli
