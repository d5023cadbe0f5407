// SPDX-License-Identifier: Apache-2.0
#include "control/fleet/fleet_policy.hpp"
#include "control/api/json_parse.hpp"

#include <chrono>
#include <cstdio>
#include <thread>

#include "control/adaptive/adaptive_rate.hpp"
#include "control/api/change_json.hpp"
#include "control/config/config_diff.hpp"
#include "control/config/config_loader.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_record.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;

json refused(const std::string& error, json errors = nullptr) {
  json r = {{"ok", false}, {"error", error}};
  if (!errors.is_null()) r["errors"] = std::move(errors);
  return r;
}

json rejected(const LoadResult& r) {
  return refused(
      "rejected: " + (r.errors.empty() ? std::string("invalid") : r.errors[0].to_string()),
      errors_json(r.errors));
}

// The effective config of a fleet config and its active profile.
LoadResult effective(const std::string& text, const std::string& profile,
                     const std::string& source) {
  return profile.empty() ? load_config_string(text, source) : apply_profile(text, source, profile);
}

// A fleet set that turns boundary.adaptive off without naming a ceiling
// freezes what the edges learned: lookups_per_sec becomes the sum of the
// live edges' learned rates (their records' adaptive_rate), as a local set
// does with the edge's own (docs/adaptive.md). Only when every live edge has
// one: an edge that refused the adaptive boundary (host mode) or has not
// stepped yet enforces its share of the ceiling, and a sum without it would
// cut the fleet's budget to what the others learned. Then the ceiling stays.
// The rate frozen, 0 when none.
uint64_t freeze_adaptive(EtcdClient& etcd, const FleetConfig& fleet, const std::string& before_text,
                         const LoadResult& after, const std::string& source, std::string* config,
                         std::vector<std::string>* notes) {
  const LoadResult before = load_config_string(before_text, source);
  if (!before.ok() || !after.ok()) return 0;
  const BoundaryConfig& was = before.config->boundary;
  const BoundaryConfig& now = after.config->boundary;
  if (!was.adaptive || now.adaptive || !now.lookups_per_sec ||
      now.lookups_per_sec != was.lookups_per_sec)
    return 0;
  std::vector<EtcdKv> kvs;
  std::string error;
  if (!etcd.range(fleet_edges_prefix(fleet), true, &kvs, nullptr, &error)) return 0;
  double sum = 0;
  std::string without;  // live edges that have not published a learned rate
  for (const EtcdKv& kv : kvs) {
    const json r = parse_json(kv.value);
    if (r.is_object() && r.contains("adaptive_rate") && r["adaptive_rate"].is_number()) {
      sum += r["adaptive_rate"].get<double>();
    } else {
      without += (without.empty() ? "" : ", ") + kv.key.substr(fleet_edges_prefix(fleet).size());
    }
  }
  if (!without.empty() && sum >= 1) {
    notes->push_back("boundary.adaptive turned off: boundary.lookups_per_sec stays the ceiling " +
                     std::to_string(*was.lookups_per_sec) + ": edge(s) " + without +
                     " have no learned rate (refused the adaptive boundary or not stepped yet)");
    return 0;
  }
  if (sum < 1) return 0;
  const uint64_t learned = std::min<uint64_t>(*was.lookups_per_sec, std::llround(sum));
  LoadResult frozen =
      apply_overrides(*config, source, {{"boundary.lookups_per_sec", std::to_string(learned)}});
  if (!frozen.ok()) return 0;
  *config = frozen.text;
  notes->push_back(
      "boundary.adaptive turned off: boundary.lookups_per_sec set to the edges' "
      "learned rates, " +
      std::to_string(learned) + " in all (was the ceiling " + std::to_string(*was.lookups_per_sec) +
      ")");
  return learned;
}

}  // namespace

json fleet_request(const FleetConfig& fleet, const json& request, const json& origin) {
  try {
    if (!request.is_object() || !request.contains("op") || !request["op"].is_string())
      return refused("a request is a JSON object with an \"op\" string");
    const std::string op = request["op"];
    if (const std::string why = unknown_field(request); !why.empty()) return refused(why);
    if (request.contains("dry_run") && !request["dry_run"].is_boolean())
      return refused("dry_run: expected true or false");
    const bool dry_run = request.value("dry_run", false);
    const std::string source = "etcd:" + fleet_config_key(fleet);

    EtcdClient etcd(fleet.etcd, std::chrono::milliseconds(2000), fleet.access);
    std::string error;
    FleetRecord current;
    bool exists = false;
    if (!read_fleet_record(etcd, fleet, &current, &exists, &error)) {
      if (exists)  // etcd answered, with something that is no fleet config record
        return refused("etcd's " + fleet_config_key(fleet) + " is not a fleet config: " + error +
                       " (remove it with etcdctl del, then sluicectl --fleet apply FILE)");
      json r = refused("the fleet's etcd did not answer: " + error);
      r["unreachable"] = true;
      return r;
    }
    if (!exists && op != "apply")
      return refused("the fleet " + fleet.prefix +
                     " has no config yet: start an edge (the first seeds it from its file) or "
                     "sluicectl --fleet apply FILE");

    if (op == "get")
      return {{"ok", true},
              {"generation", current.revision},
              {"profile", current.profile.empty() ? json(nullptr) : json(current.profile)},
              {"config", current.config}};
    if (op == "history") {
      std::vector<FleetRecord> kept;
      if (!read_fleet_history(etcd, fleet, &kept, &error)) {
        json r = refused("the fleet's etcd did not answer: " + error);
        r["unreachable"] = true;
        return r;
      }
      json list = json::array();
      for (const FleetRecord& g : kept)
        list.push_back({{"generation", g.revision},
                        {"time", g.time},
                        {"origin", g.origin},
                        {"op", g.op},
                        {"profile", g.profile.empty() ? json(nullptr) : json(g.profile)}});
      return {{"ok", true}, {"generation", current.revision}, {"generations", list}};
    }

    // The fleet config the op asks for.
    FleetRecord next = current;
    next.op = op;
    next.origin = origin;
    std::vector<std::string> notes;
    WrittenConfig written{"<override>", ""};  // for a refusal's positions
    if (op == "set") {
      const json& s = request.value("settings", json());
      std::vector<std::pair<std::string, std::string>> settings;
      bool well_formed = s.is_array() && !s.empty();
      for (std::size_t i = 0; well_formed && i < s.size(); i++) {
        const json& kv = s[i];
        well_formed = kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string();
        if (well_formed) settings.emplace_back(kv[0], kv[1]);
      }
      if (!well_formed)
        return refused("settings: expected a non-empty list of [key, value] string pairs");
      for (const auto& [key, value] : settings) {
        if (!is_fleet_owned_key(key))
          return refused("refused: " + key +
                         " is each edge's own ([dataplane], [control], [metrics] and [fleet] "
                         "live in its local file), not the fleet's");
      }
      LoadResult r = apply_overrides(current.config, source, settings);
      if (!r.ok()) return rejected(r);
      for (const auto& [key, value] : settings) written.override_keys.push_back(key);
      next.config = r.text;
      if (const uint64_t learned =
              freeze_adaptive(etcd, fleet, current.config, r, source, &next.config, &notes);
          learned != 0 && !next.profile.empty()) {
        const LoadResult runs = effective(next.config, next.profile, source);
        const uint64_t rate = runs.ok() ? runs.config->boundary.lookups_per_sec.value_or(0) : 0;
        if (rate > learned) return refused(frozen_under_profile_error(next.profile, rate, learned));
      }
    } else if (op == "apply") {
      if (!request.contains("config") || !request["config"].is_string())
        return refused("config: expected the TOML text of a config file");
      const std::string text = request["config"];
      std::string file = "<apply>";
      if (std::string why; !apply_source(request, &file, &why)) return refused(why);
      LoadResult r = load_config_string(text, file);
      if (!r.ok()) return rejected(r);
      written = {file, text};
      next.config = fleet_tables_text(text);
      if (r.config->fleet || !local_tables_text(text).empty())
        notes.push_back(
            "the file's [dataplane], [control], [metrics] and [fleet] are each edge's own: not "
            "applied to the fleet");
      if (!next.profile.empty() && r.config->profiles.count(next.profile) == 0) {
        notes.push_back("the new config does not define profile " + next.profile +
                        "; it is dropped");
        next.profile.clear();
      }
    } else if (op == "profile") {
      if (!request.contains("name") || !request["name"].is_string())
        return refused("name: expected a profile name, or \"none\" for the base config");
      next.profile = request["name"] == "none" ? "" : request["name"].get<std::string>();
      written.name = "profile " + request["name"].get<std::string>();
    } else if (op == "shadow") {
      if (!request.contains("on") || !request["on"].is_boolean())
        return refused("on: expected true or false");
      LoadResult r = apply_overrides(current.config, source,
                                     {{"admission.shadow", request["on"] ? "true" : "false"}});
      if (!r.ok()) return rejected(r);
      next.config = r.text;
    } else if (op == "rollback") {
      std::vector<FleetRecord> kept;
      if (!read_fleet_history(etcd, fleet, &kept, &error)) {
        json r = refused("the fleet's etcd did not answer: " + error);
        r["unreachable"] = true;
        return r;
      }
      int64_t target = 0;
      if (request.contains("generation")) {
        const json& g = request["generation"];
        if (!g.is_number_integer() || g.get<int64_t>() <= 0)
          return refused("generation: expected a generation number");
        target = g.get<int64_t>();
      } else if (kept.size() >= 2) {
        target = kept[kept.size() - 2].revision;
      } else {
        return refused("no earlier generation to roll back to");
      }
      const FleetRecord* found = nullptr;
      for (const FleetRecord& g : kept)
        if (g.revision == target) found = &g;
      if (found == nullptr) {
        std::string list;
        for (const FleetRecord& g : kept)
          list += (list.empty() ? "" : ", ") + std::to_string(g.revision);
        return refused("generation " + std::to_string(target) + " is not kept; kept: " + list);
      }
      next.config = found->config;
      next.profile = found->profile;
      written.name = "generation " + std::to_string(target);
    } else {
      return refused("unknown fleet op \"" + op +
                     "\"; fleet ops are get, history, set, apply, profile, shadow, rollback");
    }

    // Validated in full, as a local change is.
    const LoadResult after = effective(next.config, next.profile, source);
    if (!after.ok()) return rejected(after);
    const LoadResult before =
        exists ? effective(current.config, current.profile, source) : LoadResult{};
    const std::vector<DiffEntry> diff =
        config_diff(before.ok() ? before.text : std::string(), after.text);
    if (const std::vector<ConfigError> restart_only =
            exists ? restart_only_errors(before.ok() ? without_restart_spellings(
                                                           diff, *before.config, *after.config)
                                                     : diff,
                                         written, "restart every edge")
                   : std::vector<ConfigError>{};
        !restart_only.empty())
      return refused("rejected: " + restart_only[0].to_string(), errors_json(restart_only));
    json ok = {{"ok", true}, {"diff", diff_json(diff)}, {"notes", notes}, {"dry_run", dry_run}};
    if (dry_run || (exists && next.config == current.config && next.profile == current.profile)) {
      ok["generation"] = current.revision;
      return ok;
    }
    bool swapped = false;
    int64_t revision = 0;
    if (!write_fleet_record(etcd, fleet, next, exists ? current.revision : 0, &swapped, &revision,
                            &error)) {
      json r = refused("the fleet's etcd did not answer: " + error);
      r["unreachable"] = true;
      return r;
    }
    if (!swapped)
      return refused("refused: the fleet config changed since it was read (generation " +
                     std::to_string(current.revision) + "); look again and retry");
    if (!error.empty()) ok["notes"].push_back(error);  // the history entry was not kept
    ok["generation"] = revision;
    return ok;
  } catch (const std::exception& e) {
    return refused(std::string("bad request: ") + e.what());
  }
}

FleetReach fleet_wait(const FleetConfig& fleet, int64_t generation, int timeout_ms,
                      std::string* error) {
  EtcdClient etcd(fleet.etcd, std::chrono::milliseconds(1000), fleet.access);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  FleetReach reach;
  for (;;) {
    std::vector<EtcdKv> kvs;
    reach = {};
    if (etcd.range(fleet_edges_prefix(fleet), true, &kvs, nullptr, error)) {
      for (const EtcdKv& kv : kvs) {
        const std::string node = kv.key.substr(fleet_edges_prefix(fleet).size());
        // Records are read as they come: a field of another type (an older
        // or damaged record) counts as missing, never as an exception.
        const json r = parse_json(kv.value);
        auto number = [](const json& o, const char* key) {
          return o.is_object() && o.contains(key) && o[key].is_number_integer()
                     ? o[key].get<int64_t>()
                     : int64_t{0};
        };
        if (number(r, "generation") >= generation) continue;
        const json refused = r.is_object() && r.contains("refused") ? r["refused"] : json();
        if (number(refused, "generation") >= generation)
          reach.refused[node] = refused.contains("error") && refused["error"].is_string()
                                    ? refused["error"].get<std::string>()
                                    : std::string("refused");
        else
          reach.behind.push_back(node);
      }
      if (reach.behind.empty()) return reach;
    } else {
      reach.behind = {"(etcd did not answer)"};
    }
    if (std::chrono::steady_clock::now() >= deadline) return reach;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace sluice
