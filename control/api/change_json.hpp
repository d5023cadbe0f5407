// SPDX-License-Identifier: Apache-2.0
// The JSON forms of a change's outcome that the control API answers with,
// locally (control_state.cpp) and for a fleet (fleet/fleet_policy.cpp).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/config_diff.hpp"
#include "control/config/config_loader.hpp"

namespace sluice {

// [{"key", "message", "text": "FILE:LINE:COL: key: message"}]
nlohmann::json errors_json(const std::vector<ConfigError>& errors);
// [{"key", "old", "new"}], null for a key added or removed
nlohmann::json diff_json(const std::vector<DiffEntry>& diff);

// An apply request's optional "source": the name of the file the text was
// read from (sluicectl apply FILE sends it), which errors and refusals name
// instead of "<apply>". False with *why for a value that is not a name: not
// a string, empty, over 4096 bytes, or with control characters.
bool apply_source(const nlohmann::json& request, std::string* source, std::string* why);

// Why `request` (an object with an "op" string) names a field its op does
// not take, e.g. "dryrun: not a field of set; it takes op, settings and
// dry_run", or dry_run true for an op that has no dry run;
// "" when it names none, or the op is unknown (refused as such). A misspelt
// dry_run must not apply a change for real.
std::string unknown_field(const nlohmann::json& request);

}  // namespace sluice
