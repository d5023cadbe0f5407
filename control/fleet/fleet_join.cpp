// SPDX-License-Identifier: Apache-2.0
// A fleet member's join (docs/fleet.md): the fleet config from etcd, seeded
// from this edge's file when the fleet has none, or the copy kept at the
// last start; the fleet's rank seed; this edge's first, even shares.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "control/api/json_parse.hpp"
#include "control/config/compile.hpp"  // default_seed
#include "control/fleet/agent_detail.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_agent.hpp"
#include "control/log.hpp"

namespace sluice {

using json = nlohmann::json;
using fleet_detail::cache_path;
using fleet_detail::etcd_timeout;
using fleet_detail::instance_of;

bool fleet_join(const FleetConfig& fleet, const std::string& config_path,
                const std::string& local_text, FleetStart* start, std::string* error) {
  EtcdClient etcd(fleet.etcd, etcd_timeout(fleet));
  std::string etcd_error;
  bool exists = false;
  bool reached = read_fleet_record(etcd, fleet, &start->record, &exists, &etcd_error);
  if (!reached && exists) {  // etcd answered with something that is not a record
    *error = etcd_error;
    return false;
  }
  if (reached && !exists) {
    // A new fleet: its config is this file's fleet tables (the first edge's).
    FleetRecord seed;
    seed.config = fleet_tables_text(local_text);
    seed.origin = {{"node", fleet.node}};
    seed.op = "seed";
    bool swapped = false;
    int64_t revision = 0;
    std::string note;
    reached = write_fleet_record(etcd, fleet, seed, 0, &swapped, &revision, &note) &&
              read_fleet_record(etcd, fleet, &start->record, &exists, &etcd_error) && exists;
    if (!note.empty()) etcd_error = note;
    if (reached && swapped)
      start->log = "the fleet had no config: seeded it from " + config_path + "'s fleet tables; ";
  }
  std::size_t edges = 1;
  {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::error_code ec;
    const std::filesystem::path path = std::filesystem::absolute(config_path, ec);
    start->instance = std::string(host) + ":" + (ec ? config_path : path.string());
  }
  if (reached) {
    std::vector<EtcdKv> members;
    if (etcd.range(fleet_edges_prefix(fleet), true, &members, nullptr, &etcd_error)) {
      for (const EtcdKv& kv : members) {
        if (kv.key != fleet_edges_prefix(fleet) + fleet.node) {
          edges++;
          continue;
        }
        // This node's record, under a live lease: this edge before a
        // restart (the same instance), or another edge with the same name,
        // whose shares would add to this one's past the budget.
        const json other = parse_json(kv.value);
        const std::string theirs = instance_of(other);
        if (!theirs.empty() && theirs != start->instance) {
          *error = "fleet.node \"" + fleet.node + "\" is held by a live edge at " + theirs +
                   ": every edge needs a node name of its own";
          return false;
        }
      }
    }
    // The fleet's rank seed: the first edge proposes its own.
    std::vector<EtcdKv> seed;
    bool swapped = false;
    if (etcd.put_if(fleet_seed_key(fleet), std::to_string(default_seed()), 0, &swapped, nullptr,
                    &etcd_error) &&
        etcd.range(fleet_seed_key(fleet), false, &seed, nullptr, &etcd_error) && !seed.empty()) {
      try {
        start->rank_seed = std::stoull(seed[0].value);
      } catch (...) {
        log_event(LogLevel::warn, "fleet: the fleet's rank seed is not a number; this edge's own",
                  {{"key", fleet_seed_key(fleet)}});
      }
    }
    start->log += "fleet config revision " + std::to_string(start->record.revision) + " from " +
                  etcd.endpoint();
  } else {
    // etcd unreachable: the copy kept at the last start, if any.
    std::ifstream in(cache_path(fleet));
    std::stringstream text;
    text << in.rdbuf();
    const json cached = parse_json(text.str());
    std::string why;
    std::optional<FleetRecord> r;
    if (in && cached.is_object() && cached.contains("record") && cached["record"].is_string())
      r = parse_fleet_record(cached["record"], &why);
    if (!r) {
      *error = "etcd cannot be reached (" + etcd_error + ") and no fleet config is kept in " +
               cache_path(fleet);
      return false;
    }
    start->record = *r;
    start->record.revision = json_field<int64_t>(cached, "revision", 0);
    edges = static_cast<std::size_t>(
        std::clamp<int64_t>(json_field<int64_t>(cached, "edges", 1), 1, 1000000));
    if (cached.contains("rank_seed") && cached["rank_seed"].is_number_unsigned())
      start->rank_seed = cached["rank_seed"].get<uint64_t>();
    start->from_cache = true;
    start->log = "etcd cannot be reached (" + etcd_error + "): the fleet config kept in " +
                 cache_path(fleet) + " (revision " + std::to_string(start->record.revision) +
                 ") with an even share";
  }
  start->loaded = compose_fleet_config(local_tables_text(local_text), config_path,
                                       start->record.config, "etcd:" + fleet_config_key(fleet));
  if (!start->loaded.ok()) {
    *error = "the fleet config does not validate here: " +
             (start->loaded.errors.empty() ? std::string("invalid")
                                           : start->loaded.errors[0].to_string());
    return false;
  }
  if (!start->record.profile.empty() &&
      start->loaded.config->profiles.count(start->record.profile) == 0) {
    *error = "the fleet config does not define its active profile " + start->record.profile;
    return false;
  }
  // Until this edge has published its demand, an even share: what it
  // takes from the others is theirs again within a sync or two.
  start->edges = edges;
  start->shares = even_shares(*start->loaded.config, edges);
  return true;
}

}  // namespace sluice
