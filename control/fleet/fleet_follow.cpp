// SPDX-License-Identifier: Apache-2.0
// A fleet member's agent following the fleet config (fleet_agent.hpp): each
// new revision applied (or refused, and tried again), and a config etcd lost
// written back from the one this edge runs.
#include <chrono>

#include "control/api/control_state.hpp"
#include "control/api/json_parse.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_agent.hpp"
#include "control/log.hpp"

namespace sluice {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// etcd lost the fleet's config (restored empty, the key deleted) while this
// edge ran: it writes back the config it runs and the fleet's rank seed, as
// an edge that started then would from its kept copy (fleet_join), so that
// the fleet's edges keep one config and one seed. Before, running edges
// wrote back nothing: the next edge to start seeded its own rank seed, which
// the running ones never read, and status said in sync.
void FleetAgent::reseed(EtcdClient& etcd) {
  if (kept_record_.config.find_first_not_of(" \t\r\n") == std::string::npos) return;
  FleetRecord seed;
  seed.config = kept_record_.config;
  seed.profile = kept_record_.profile;
  seed.origin = {{"node", fleet_.node}};
  seed.op = "seed";
  bool swapped = false;
  int64_t revision = 0;
  std::string note, error;
  if (rank_seed_)
    etcd.put_if(fleet_seed_key(fleet_), std::to_string(*rank_seed_), 0, &swapped, nullptr, &error);
  if (!write_fleet_record(etcd, fleet_, seed, 0, &swapped, &revision, &note)) return;
  write_back_holds(etcd);
  if (swapped) reseeded_revision_ = revision;  // not a restore when it comes back (follow_config)
  if (swapped)
    log_event(LogLevel::warn,
              "fleet: etcd had no config for this fleet; seeded it again from the config this "
              "edge runs",
              {{"key", fleet_config_key(fleet_)},
               {"was_revision", std::to_string(kept_record_.revision)},
               {"revision", std::to_string(revision)}});
}

void FleetAgent::follow_config(EtcdClient& etcd) {
  std::vector<EtcdKv> kvs;
  std::string error;
  if (!etcd.range(fleet_config_key(fleet_), false, &kvs, nullptr, &error)) return;
  if (kvs.empty()) {
    reseed(etcd);
    return;
  }
  const EtcdKv& kv = kvs[0];
  if (kv.mod_revision == applied_revision_) return;
  const auto now = Clock::now();
  if (kv.mod_revision == rejected_revision_ && now < retry_at_) return;
  std::optional<FleetRecord> r = parse_fleet_record(kv.value, &error);
  // An older revision than the one this edge runs, not one it wrote back
  // itself: etcd's revisions went back, i.e. it was restored from a snapshot
  // or backup, and holds the fleet config of then. Followed (whoever
  // restored it meant the fleet to run it), and said: its audit line's op is
  // "fleet restore", not the old record's op (before, a silent "fleet set"
  // by whoever set the old value).
  const bool restored =
      kv.mod_revision < applied_revision_ && kv.mod_revision != reseeded_revision_;
  json result;
  if (r) {
    r->revision = kv.mod_revision;
    if (restored) r->op = "restore";
    result =
        control_.apply_fleet_config(r->config, r->profile, static_cast<uint64_t>(kv.mod_revision),
                                    r->origin, r->op, kv.mod_revision == rejected_revision_);
  } else {
    result = {{"ok", false}, {"error", error}};
  }
  if (result.value("ok", false)) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      refused_config_.clear();
    }
    if (kv.mod_revision == rejected_revision_)
      log_event(LogLevel::info, "fleet: config refused before now applied on this edge",
                {{"generation", std::to_string(kv.mod_revision)}});
    if (restored)
      log_event(LogLevel::warn,
                "fleet: etcd's fleet config is older than the one this edge ran (etcd restored "
                "from a snapshot?); this edge runs it",
                {{"generation", std::to_string(kv.mod_revision)},
                 {"was_generation", std::to_string(applied_revision_)}});
    applied_revision_ = kv.mod_revision;
    shares_stale_ = true;  // ControlState rescaled them to the new budgets
    keep_cache(*r, last_edges_);
    log_event(LogLevel::info, "fleet: config applied",
              {{"generation", std::to_string(kv.mod_revision)},
               {"op", r->op},
               {"origin", r->origin.dump()},
               {"changes", std::to_string(result.value("diff", json::array()).size())}});
  } else {
    // Refused here (e.g. a class this edge's dataplane cannot hold): this
    // edge keeps the config it runs, says so once per revision and reason,
    // and tries again later (a dataplane that was not enforcing may be).
    const std::string why = result.value("error", std::string("refused"));
    const bool news = kv.mod_revision != rejected_revision_ || why != rejected_error_;
    retry_after_ =
        kv.mod_revision != rejected_revision_
            ? std::chrono::milliseconds(1000)
            : std::min<std::chrono::milliseconds>(retry_after_ * 2, std::chrono::seconds(30));
    retry_at_ = now + retry_after_;
    rejected_revision_ = kv.mod_revision;
    rejected_error_ = why;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      refused_config_ = "this edge refuses the fleet config of generation " +
                        std::to_string(kv.mod_revision) + " and runs generation " +
                        std::to_string(applied_revision_) + ": " + why;
    }
    if (news)
      log_event(LogLevel::error, "fleet: config refused on this edge; keeping the running one",
                {{"revision", std::to_string(kv.mod_revision)}, {"error", why}});
  }
}

}  // namespace sluice
