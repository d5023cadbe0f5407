// SPDX-License-Identifier: Apache-2.0
// How `sluicectl status` prints what it learned: sluiced's answer, or, when
// no sluiced answers, the edge record pinned next to the XDP program.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace sluice::cli {

// "2026-12-02T13:04:05Z", or "-" for 0.
std::string utc_text(double unix_sec);

// When sluiced cannot answer (stopped, or not in charge): what the pinned
// edge record under `pin_path` says the edge runs; with `json_out` as one
// object. Without XDP there is no such record and nothing is printed.
void print_pinned_edge(const std::string& pin_path, bool json_out);

// A `status` answer as text: the dataplane, boundary, classes, flows,
// queues and ports.
void print_status(const nlohmann::json& status);

}  // namespace sluice::cli
