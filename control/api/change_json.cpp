// SPDX-License-Identifier: Apache-2.0
#include "control/api/change_json.hpp"

#include <algorithm>
#include <map>

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

bool apply_source(const nlohmann::json& request, std::string* source, std::string* why) {
  if (!request.contains("source")) return true;
  const json& s = request["source"];
  bool named = s.is_string() && !s.get_ref<const std::string&>().empty() &&
               s.get_ref<const std::string&>().size() <= 4096;
  if (named)
    for (const unsigned char c : s.get_ref<const std::string&>())
      named = named && c >= 0x20 && c != 0x7f;
  if (!named) {
    *why =
        "source: expected the name of the file the config was read from (1 to 4096 bytes, no "
        "control characters)";
    return false;
  }
  *source = s.get<std::string>();
  return true;
}

std::string unknown_field(const json& request) {
  // The fields of each op, besides "op" (local and fleet alike).
  static const std::map<std::string, std::vector<std::string>> fields = {
      {"status", {}},
      {"get", {}},
      {"history", {}},
      {"set", {"settings", "dry_run"}},
      {"apply", {"config", "source", "dry_run"}},
      {"profile", {"name", "dry_run"}},
      {"shadow", {"on", "dry_run"}},
      {"rollback", {"generation", "dry_run"}},
      {"log_level", {"level"}},
      {"capture", {"verdict", "count", "seconds", "sample", "snaplen", "class", "reason"}}};
  const std::string& op = request["op"].get_ref<const std::string&>();
  const auto it = fields.find(op);
  if (it == fields.end()) return "";
  for (const auto& [key, value] : request.items()) {
    if (key == "op" || std::find(it->second.begin(), it->second.end(), key) != it->second.end())
      continue;
    std::string takes;
    for (const std::string& f : it->second) takes += (takes.empty() ? "" : ", ") + f;
    return key + ": not a field of " + op + "; it takes " +
           (takes.empty() ? std::string("none but op") : takes);
  }
  return "";
}

}  // namespace sluice
