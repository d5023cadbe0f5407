// SPDX-License-Identifier: Apache-2.0
// A fleet member's join (docs/fleet.md): the fleet config from etcd, seeded
// from this edge's file when the fleet has none, or the copy kept at the
// last start; the fleet's rank seed; this edge's first, even shares.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "control/api/json_parse.hpp"
#include "control/config/compile.hpp"  // default_seed
#include "control/config/config_loader.hpp"
#include "control/fleet/agent_detail.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_agent.hpp"
#include "control/log.hpp"

namespace sluice {

using json = nlohmann::json;
using fleet_detail::cache_path;
using fleet_detail::etcd_timeout;
using fleet_detail::instance_of;

namespace {

// What a clean stop kept besides (FleetAgent::keep_cache): the shares in
// force and when the edge last synced.
struct KeptStop {
  EdgeShares shares;
  double last_sync_unix_ms = 0;
};

// The fleet config this edge kept at its last start (in $STATE_DIRECTORY):
// its record, the edges it knew, the fleet's rank seed, and what its last
// clean stop kept (`stop`). False when there is none, it is not one, or it
// is another fleet's (another prefix: the edge moved; copies from before the
// prefix was kept pass).
bool read_kept(const FleetConfig& fleet, FleetRecord* record, std::size_t* edges,
               std::optional<uint64_t>* rank_seed, std::optional<KeptStop>* stop = nullptr) {
  std::ifstream in(cache_path(fleet));
  std::stringstream text;
  text << in.rdbuf();
  const json cached = parse_json(text.str());
  std::string why;
  std::optional<FleetRecord> r;
  if (in && cached.is_object() && cached.contains("record") && cached["record"].is_string())
    r = parse_fleet_record(cached["record"], &why);
  if (!r) return false;
  if (cached.contains("prefix") && cached["prefix"] != fleet.prefix) return false;
  *record = *r;
  record->revision = json_field<int64_t>(cached, "revision", 0);
  *edges = static_cast<std::size_t>(
      std::clamp<int64_t>(json_field<int64_t>(cached, "edges", 1), 1, 1000000));
  if (cached.contains("rank_seed") && cached["rank_seed"].is_number_unsigned())
    *rank_seed = cached["rank_seed"].get<uint64_t>();
  if (stop != nullptr && cached.contains("stopped") && cached["stopped"].is_object()) {
    const json& s = cached["stopped"];
    const std::optional<EdgeShares> shares =
        s.contains("shares") ? shares_from_json(s["shares"]) : std::nullopt;
    if (shares && s.contains("last_sync_unix_ms") && s["last_sync_unix_ms"].is_number())
      *stop = KeptStop{*shares, s["last_sync_unix_ms"].get<double>()};
  }
  return true;
}

// start->loaded: this edge's tables with start->record's fleet config. ""
// when it validates here, else why not.
std::string composed(const FleetConfig& fleet, const std::string& config_path,
                     const std::string& local_text, FleetStart* start) {
  start->loaded = compose_fleet_config(local_tables_text(local_text), config_path,
                                       start->record.config, "etcd:" + fleet_config_key(fleet));
  if (!start->loaded.ok())
    return "the fleet config does not validate here: " +
           (start->loaded.errors.empty() ? std::string("invalid")
                                         : start->loaded.errors[0].to_string());
  if (!start->record.profile.empty() &&
      start->loaded.config->profiles.count(start->record.profile) == 0)
    return "the fleet config does not define its active profile " + start->record.profile;
  return "";
}

}  // namespace

std::string fleet_instance(const std::string& config_path) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::error_code ec;
  const std::filesystem::path path = std::filesystem::absolute(config_path, ec);
  std::string instance = std::string(host) + ":" + (ec ? config_path : path.string());
  // The kernel's boot ID, new at every boot: a clone of this machine (same
  // host name, same file) is another instance, while a restart of sluiced
  // is the same one. A reboot outlasts the record's lease (lease_ttl_sec).
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (std::getline(boot, id) && id.size() >= 8) instance += " (boot " + id.substr(0, 8) + ")";
  return instance;
}

bool fleet_join(const FleetConfig& fleet, const std::string& config_path,
                const std::string& local_text, FleetStart* start, std::string* error) {
  EtcdClient etcd(fleet.etcd, etcd_timeout(fleet), fleet.access);
  std::string etcd_error;
  bool exists = false;
  bool reached = read_fleet_record(etcd, fleet, &start->record, &exists, &etcd_error);
  if (!reached && exists) {  // etcd answered with something that is not a record
    *error = etcd_error;
    return false;
  }
  if (reached && !exists) {
    // No fleet config. A new fleet: its config is this file's fleet tables
    // (the first edge's). A fleet whose config was lost (etcd restored
    // empty, the key deleted) to an edge that kept a copy: that copy, the
    // fleet's config as this edge last ran it (the file's tables are not
    // read once the fleet runs, and may be stale or gone).
    FleetRecord seed, kept;
    std::size_t ignored = 0;
    std::optional<uint64_t> kept_seed;
    const bool again = read_kept(fleet, &kept, &ignored, &kept_seed);
    std::string from = config_path + "'s fleet tables";
    if (again) {
      seed.config = kept.config;
      seed.profile = kept.profile;
      from = "the copy kept in " + cache_path(fleet) + " (revision " +
             std::to_string(kept.revision) + ")";
    } else {
      seed.config = fleet_tables_text(local_text);
      if (seed.config.find_first_not_of(" \t\r\n") == std::string::npos) {
        *error = "the fleet has no config in etcd (" + fleet_config_key(fleet) + ") and " +
                 config_path +
                 " has no fleet tables to seed it with: write one (sluicectl --fleet --config FILE "
                 "apply POLICY.toml)";
        return false;
      }
    }
    seed.origin = {{"node", fleet.node}};
    seed.op = "seed";
    bool swapped = false;
    int64_t revision = 0;
    std::string note;
    reached = write_fleet_record(etcd, fleet, seed, 0, &swapped, &revision, &note) &&
              read_fleet_record(etcd, fleet, &start->record, &exists, &etcd_error) && exists;
    if (!note.empty()) etcd_error = note;
    if (reached && swapped) {
      start->log = "the fleet had no config: seeded it from " + from + "; ";
      if (again)
        log_event(LogLevel::warn,
                  "fleet: the fleet had no config; seeded it again from this "
                  "edge's kept copy",
                  {{"key", fleet_config_key(fleet)}, {"revision", std::to_string(kept.revision)}});
    }
  }
  std::size_t edges = 1;
  std::optional<KeptStop> stop;        // without etcd: what the last clean stop kept
  std::optional<EdgeShares> own_hold;  // with etcd: this node's hold, if it lives
  start->instance = fleet_instance(config_path);
  // The edges, live or held: an edge that cannot count them cannot take
  // 1/N of each budget (counting itself alone, it would take all of it).
  std::vector<EtcdKv> members, holds;
  if (reached)
    reached = etcd.range(fleet_held_prefix(fleet), true, &holds, nullptr, &etcd_error) &&
              etcd.range(fleet_edges_prefix(fleet), true, &members, nullptr, &etcd_error);
  if (reached) {
    // Records and holds live under leases; one written without (by hand,
    // or by a hostile writer) is no edge: it would count forever.
    std::set<std::string> nodes;  // other edges, live or held
    for (const EtcdKv& kv : holds) {
      if (kv.lease == 0) continue;
      const std::string node = kv.key.substr(fleet_held_prefix(fleet).size());
      nodes.insert(node);
      if (node != fleet.node) continue;
      // This node's hold, from before a restart (a clean stop leaves it for
      // static_sec): the shares the others count for it until they read its
      // record again, so the shares it may take until its first sync.
      // Taken with what is left of it (in whole seconds, at least one):
      // the others free its shares when it ends.
      const json h = parse_json(kv.value);
      int64_t ttl = -1;
      std::string why;
      if (h.is_object() && h.contains("shares") && etcd.lease_ttl(kv.lease, &ttl, &why) &&
          ttl >= 1) {
        own_hold = shares_from_json(h["shares"]);
        start->hold_ttl_sec = ttl;
      }
    }
    for (const EtcdKv& kv : members) {
      if (kv.lease == 0) continue;
      if (kv.key != fleet_edges_prefix(fleet) + fleet.node) {
        nodes.insert(kv.key.substr(fleet_edges_prefix(fleet).size()));
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
    nodes.erase(fleet.node);
    edges += nodes.size();
    // The fleet's rank seed: the first edge proposes its own, or, when the
    // key was lost, the fleet's as this edge kept it (the running edges
    // still rank by it).
    std::optional<uint64_t> kept_seed;
    {
      FleetRecord ignored_record;
      std::size_t ignored_edges = 0;
      read_kept(fleet, &ignored_record, &ignored_edges, &kept_seed);
    }
    std::vector<EtcdKv> seed;
    bool swapped = false;
    if (etcd.put_if(fleet_seed_key(fleet), std::to_string(kept_seed.value_or(default_seed())), 0,
                    &swapped, nullptr, &etcd_error) &&
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
    if (!read_kept(fleet, &start->record, &edges, &start->rank_seed, &stop)) {
      *error = "etcd cannot be reached (" + etcd_error + ") and no fleet config is kept in " +
               cache_path(fleet);
      return false;
    }
    start->from_cache = true;
    // Within static_sec of its last sync (kept at a clean stop, and when
    // etcd went away: a crash in the outage): that sync's shares, for the
    // rest of static_sec, as the others keep theirs (an even share at once
    // raised a cold edge's while the others kept theirs: the fleet over its
    // budget by 1/N less its share for up to static_sec).
    const double now_ms = std::chrono::duration<double, std::milli>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    const auto silent = std::chrono::milliseconds(
        static_cast<int64_t>(stop ? now_ms - stop->last_sync_unix_ms : 0));
    if (stop && silent.count() >= 0 && silent < std::chrono::seconds(fleet.static_sec))
      start->kept_sync = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::duration<double, std::milli>(stop->last_sync_unix_ms)));
    start->log =
        "etcd cannot be reached (" + etcd_error + "): the fleet config kept in " +
        cache_path(fleet) + " (revision " + std::to_string(start->record.revision) + ")" +
        (start->kept_sync
             ? " with the shares of this edge's last sync, " + std::to_string(silent.count()) +
                   " ms ago, until static_sec has passed since (then an even share)"
             : " with an even share");
  }
  std::string invalid = composed(fleet, config_path, local_text, start);
  if (!invalid.empty() && !start->from_cache) {
    // etcd's config does not validate here (written past sluicectl's
    // checks, or this edge's own tables changed): as a running edge keeps
    // what it runs, a restarting one runs the copy it kept, and its agent
    // reports the refusal in its record.
    FleetRecord kept;
    std::size_t ignored = 0;
    std::optional<uint64_t> seed;
    if (read_kept(fleet, &kept, &ignored, &seed)) {
      const FleetRecord refused = start->record;
      start->record = kept;
      if (composed(fleet, config_path, local_text, start).empty()) {
        start->log = "the fleet config revision " + std::to_string(refused.revision) +
                     " does not validate here (" + invalid + "): the copy kept in " +
                     cache_path(fleet) + " (revision " + std::to_string(kept.revision) +
                     ") instead";
        invalid.clear();
      }
    }
  }
  if (!invalid.empty()) {
    *error = invalid;
    return false;
  }
  // Until this edge has published its demand: the shares the fleet counts
  // for it (its hold in etcd, or without etcd the ones it stopped with),
  // else an even share (what it takes from the others is theirs again
  // within a sync or two). A budget they lack (new since) at 1/edges. All
  // of the budgets the fleet runs, its profile applied, as every edge's
  // shares are (sluiced does not scale them to the profile again).
  start->edges = edges;
  start->held = !start->kept_sync && own_hold.has_value();
  if (start->held)
    start->log += "; the shares of this node's hold until its first sync (" +
                  std::to_string(start->hold_ttl_sec) + " s left of the hold)";
  const LoadResult running =
      start->record.profile.empty()
          ? start->loaded
          : apply_profile(start->loaded.text, config_path, start->record.profile);
  start->shares = start->kept_sync ? stop->shares
                  : start->held
                      ? *own_hold
                      : even_shares(*(running.ok() ? running : start->loaded).config, edges);
  start->shares.edges = edges;
  return true;
}

}  // namespace sluice
