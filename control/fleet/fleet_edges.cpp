// SPDX-License-Identifier: Apache-2.0
// The other edges' records, as one sync of a fleet member reads them
// (docs/fleet.md, PREFIX/edges/NODE): who is live and by what demand, and
// who is counted at shares instead.
#include <algorithm>

#include "control/api/json_parse.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_agent.hpp"
#include "control/log.hpp"

namespace sluice {

using json = nlohmann::json;

FleetAgent::EdgesRead FleetAgent::read_edges(const std::vector<EtcdKv>& kvs, double ref_ms,
                                             const EdgeShares& even) {
  EdgesRead out;
  // The floor every edge splits by: the largest any live edge asks for
  // (fleet.floor_pct is an edge's own key, and edges that split by
  // different floors would hand out more than the budget between them).
  out.floor_pct = fleet_.floor_pct;
  for (const EtcdKv& kv : kvs) {
    const std::string node = kv.key.substr(fleet_edges_prefix(fleet_).size());
    // Records live under their edges' leases; one written without (by
    // hand) is no edge: it would count forever.
    if (node == fleet_.node || kv.lease == 0) continue;
    const json r = parse_json(kv.value);
    // A record no edge of this build writes (another version, or by hand):
    // said once per edge, until its record is one again.
    const bool bad_rate = r.is_object() && r.contains("adaptive_rate") &&
                          (!r["adaptive_rate"].is_number() || !(r["adaptive_rate"] >= 0.0));
    if (!r.is_object() || bad_rate) {
      if (bad_records_.insert(node).second)
        log_event(LogLevel::warn, "fleet: an edge's record is not one this edge reads",
                  {{"node", node},
                   {"why", !r.is_object() ? "not a JSON object"
                                          : "adaptive_rate is not a rate (a number >= 0)"},
                   {"effect", !r.is_object() ? "the edge is not counted in the split"
                                             : "its learned rate is not counted"}});
      if (!r.is_object()) continue;
    } else {
      bad_records_.erase(node);
    }
    if (!bad_rate && r.contains("adaptive_rate"))
      out.learned_rates[node] = r["adaptive_rate"].get<double>();
    out.seen[node] = true;
    if (r.contains("floor_pct") && r["floor_pct"].is_number_unsigned())
      out.floor_pct =
          std::max<uint32_t>(out.floor_pct, std::min<uint32_t>(50, r["floor_pct"].get<uint32_t>()));
    EdgeDemand d = record_demand_at(r, ref_ms);
    d.node = node;
    std::optional<EdgeShares> said;
    if (r.contains("shares")) said = shares_from_json(r["shares"]);
    if (kv.mod_revision < back_revision_) {  // not heard since this edge came back
      out.unheard[node] = higher_of(said ? *said : EdgeShares{}, even);
      continue;
    }
    if (r.contains("warming") && r["warming"] == true) {  // at what it enforces, for a sync
      out.warming[node] = said ? *said : even;
      continue;
    }
    out.live.push_back(d);
  }
  return out;
}

}  // namespace sluice
