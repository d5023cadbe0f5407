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
  // The fields of each op, besides "op" and "dry_run" (local and fleet
  // alike). dry_run is taken by every op, a client may send it with each
  // request; true is refused where nothing could be tried (log_level,
  // capture: below). Reading ops change nothing either way.
  static const std::map<std::string, std::vector<std::string>> fields = {
      {"status", {}},
      {"get", {}},
      {"history", {}},
      {"set", {"settings"}},
      {"apply", {"config", "source"}},
      {"profile", {"name"}},
      {"shadow", {"on"}},
      {"rollback", {"generation"}},
      {"log_level", {"level"}},
      {"capture", {"verdict", "count", "seconds", "sample", "snaplen", "class", "reason"}}};
  const std::string& op = request["op"].get_ref<const std::string&>();
  const auto it = fields.find(op);
  if (it == fields.end()) return "";
  if ((op == "log_level" || op == "capture") && request.contains("dry_run") &&
      request["dry_run"] != false)
    return "dry_run: " + op + " has no dry run (it cannot be tried without doing it)";
  for (const auto& [key, value] : request.items()) {
    if (key == "op" || key == "dry_run" ||
        std::find(it->second.begin(), it->second.end(), key) != it->second.end())
      continue;
    std::string takes;
    for (const std::string& f : it->second) takes += ", " + f;
    return key + ": not a field of " + op + "; it takes op" + takes + " and dry_run";
  }
  return "";
}

}  // namespace sluice
