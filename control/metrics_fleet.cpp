// SPDX-License-Identifier: Apache-2.0

#include "control/metrics_detail.hpp"

namespace sluice::metrics_detail {

void fleet_families(const FleetFigures& f, std::vector<MetricFamily>* out) {
  add_gauges(
      {{"sluice_fleet_etcd_up", "1 when this edge's last fleet sync reached etcd",
        f.etcd_up ? 1.0 : 0.0},
       {"sluice_fleet_last_sync_age_seconds",
        "Seconds since this edge last synced with the fleet through etcd", f.last_sync_age_sec},
       {"sluice_fleet_static",
        "1 while etcd cannot be reached: the edge keeps its last shares, and after "
        "fleet.static_sec an even 1/N share",
        f.static_shares ? 1.0 : 0.0}},
      out);
  MetricFamily edges = family("sluice_fleet_edges",
                              "Edges of the fleet: live (publishing, this one included) and held "
                              "(gone less than static_sec ago; their shares still counted)",
                              MetricType::Gauge);
  add(edges, static_cast<double>(f.edges_live), {{"state", "live"}});
  add(edges, static_cast<double>(f.edges_held), {{"state", "held"}});
  out->push_back(std::move(edges));
  MetricFamily rate =
      family("sluice_fleet_share_per_sec", "This edge's share of each fleet budget, per second",
             MetricType::Gauge);
  MetricFamily burst = family("sluice_fleet_share_burst",
                              "This edge's share of each fleet budget's burst", MetricType::Gauge);
  for (const FleetFigures::Share& s : f.shares) {
    Labels labels = {{"budget", s.budget}};
    if (!s.class_name.empty()) labels.push_back({"class", s.class_name});
    add(rate, static_cast<double>(s.rate), labels);
    add(burst, static_cast<double>(s.burst), labels);
  }
  out->push_back(std::move(rate));
  out->push_back(std::move(burst));
  MetricFamily demand = family("sluice_fleet_demand_lookups_per_sec",
                               "Lookups per second offered to each class across the fleet's live "
                               "edges, over about the last second",
                               MetricType::Gauge);
  for (const auto& [name, rate_per_sec] : f.fleet_lookups)
    add(demand, rate_per_sec, {{"class", name}});
  out->push_back(std::move(demand));
}

}  // namespace sluice::metrics_detail
