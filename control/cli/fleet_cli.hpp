// SPDX-License-Identifier: Apache-2.0
// sluicectl's fleet parts (docs/fleet.md): the [fleet] --fleet works with,
// who asks, and a fleet member's lines of `status`.
#pragma once

#include <optional>
#include <string>

#include "control/cli/cli_common.hpp"
#include "control/config/config.hpp"

namespace sluice::cli {

// The [fleet] of the local config `config`, or nullopt with the reason printed.
std::optional<FleetConfig> fleet_of(const std::string& config);

// Who asks, recorded with a fleet change (the local path has the socket's
// peer credentials instead): transport, uid, pid, host.
json fleet_origin();

// After an applied fleet change *r: waits up to wait_ms for every edge to
// run its generation or refuse it; adds reached_every_edge, edges_behind,
// edges_refused (node -> the edge's error) and wait_ms. False unless every
// live edge runs it.
bool wait_for_edges(const FleetConfig& fleet, int wait_ms, json* r);
// What wait_for_edges found (stderr for each edge that refused or is behind).
void print_edges_reached(const json& r, int wait_ms);

// A fleet member's lines of `status`: which fleet, its sync, its shares of
// the fleet-wide budgets (the rates `status` shows are the fleet's).
void print_fleet(const json& fleet);

}  // namespace sluice::cli
