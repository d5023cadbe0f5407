// SPDX-License-Identifier: Apache-2.0
// The JSON forms of a change's outcome that the control API answers with,
// locally (control_state.cpp) and for a fleet (fleet/fleet_policy.cpp).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/config_diff.hpp"
#include "control/config/config_loader.hpp"

namespace sluice {

// [{"key", "message", "text": "FILE:LINE:COL: key: message"}]
nlohmann::json errors_json(const std::vector<ConfigError>& errors);
// [{"key", "old", "new"}], null for a key added or removed
nlohmann::json diff_json(const std::vector<DiffEntry>& diff);

}  // namespace sluice
