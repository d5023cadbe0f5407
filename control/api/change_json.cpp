// SPDX-License-Identifier: Apache-2.0
#include "control/api/change_json.hpp"

namespace sluice {

using json = nlohmann::json;

json errors_json(const std::vector<ConfigError>& errors) {
  json out = json::array();
  for (const ConfigError& e : errors)
    out.push_back({{"key", e.key}, {"message", e.message}, {"text", e.to_string()}});
  return out;
}

json diff_json(const std::vector<DiffEntry>& diff) {
  json out = json::array();
  for (const DiffEntry& d : diff) {
    out.push_back({{"key", d.key},
                   {"old", d.old_value ? json(*d.old_value) : json(nullptr)},
                   {"new", d.new_value ? json(*d.new_value) : json(nullptr)}});
  }
  return out;
}

}  // namespace sluice
