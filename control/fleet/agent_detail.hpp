// SPDX-License-Identifier: Apache-2.0
// What the fleet's join (fleet_join.cpp) and its agent (fleet_agent.cpp)
// share: where an edge keeps its copy of the fleet config, how long an etcd
// call may take, and the instance an edge's record names.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "control/config/config.hpp"
#include "control/seed_store.hpp"

namespace sluice::fleet_detail {

inline std::string cache_path(const FleetConfig& f) {
  return state_directory() + "/fleet-" + f.node + ".json";
}

// The etcd calls of one sync must fit in it; a member that does not answer
// in time is skipped for the next.
inline std::chrono::milliseconds etcd_timeout(const FleetConfig& f) {
  return std::chrono::milliseconds(std::max<uint32_t>(200, f.sync_ms));
}

// The instance an edge's record names ("" when it names none, or the
// record is not one: another type is no exception).
inline std::string instance_of(const nlohmann::json& record) {
  return record.is_object() && record.contains("instance") && record["instance"].is_string()
             ? record["instance"].get<std::string>()
             : std::string();
}

}  // namespace sluice::fleet_detail
