// SPDX-License-Identifier: Apache-2.0
// sluicectl's requests to one sluiced (or, with --fleet, to the fleet's
// etcd): the call and its errors, a change and its diff, and status.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "control/config/config.hpp"

namespace sluice::cli {

// The options every command takes.
struct Globals {
  std::string socket = sluice::ControlConfig{}.socket;
  std::string pin_path = sluice::DataplaneConfig{}.pin_path;
  bool json_out = false;
  // --fleet: changes go to the fleet's etcd (the [fleet] of `config`), for
  // every edge, instead of to this edge's sluiced.
  bool fleet = false;
  std::string config = "/etc/sluice/sluice.toml";
  int fleet_wait_ms = 5000;
};

// Sends one request; prints errors; returns the exit code and the response.
int call(const Globals& g, const nlohmann::json& request, nlohmann::json* response);

// A change (set, apply, profile, shadow, rollback): sent, its diff and notes
// printed (with --fleet, after the edges took it, up to fleet_wait_ms).
int change(const Globals& g, const nlohmann::json& request);

// `sluicectl status`: the edge's status, or the pinned record when sluiced
// does not answer; wait_sec > 0 polls until it answers in charge and
// healthy. Exit 0 enforcing, 1 not, 2 unreachable.
int status(const Globals& g, double wait_sec);

}  // namespace sluice::cli
