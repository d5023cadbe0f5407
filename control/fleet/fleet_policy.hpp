// SPDX-License-Identifier: Apache-2.0
// Policy in etcd: the control API's change ops for a whole fleet
// (`sluicectl --fleet set|apply|profile|shadow|rollback|get|history`). Each
// change is validated in full exactly as a local one is (the same loader,
// the same restart-only refusal), then written to PREFIX/config with a
// compare-and-swap on the revision it was computed from, so two operators
// cannot overwrite each other's change unseen. Every edge watches that key
// and applies the new config with the same atomic swap as a local change;
// its generation is the key's mod_revision. Kept generations for rollback
// live in PREFIX/history/REVISION (etcd's own history is compacted).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "control/config/config.hpp"

namespace sluice {

// Generations kept in PREFIX/history.
inline constexpr std::size_t kFleetHistory = 32;

// One request in the control API's shape ({"op": "set", "settings": [...],
// "dry_run": false}, ...) -> one response in the same shape as the local
// answer ({"ok", "generation", "diff", "notes"} or {"ok": false, "error",
// "errors"}); "unreachable": true when etcd did not answer. `origin` is
// recorded with the change (who, from where). Never throws.
nlohmann::json fleet_request(const FleetConfig& fleet, const nlohmann::json& request,
                             const nlohmann::json& origin);

// Where a change stands on the edges that publish a record.
struct FleetReach {
  std::vector<std::string> behind;             // run an older generation still
  std::map<std::string, std::string> refused;  // refused it: node -> its error
};

// After a change: waits up to `timeout_ms` until every edge that publishes
// a record runs generation `generation` or later, or has refused it (a
// config its dataplane cannot run keeps the one it runs; docs/fleet.md).
FleetReach fleet_wait(const FleetConfig& fleet, int64_t generation, int timeout_ms,
                      std::string* error);

}  // namespace sluice
