// SPDX-License-Identifier: Apache-2.0
// Prometheus exporter (prometheus-cpp's serializer, cpp-httplib) on metrics.listen.
// Figures are read at scrape time from the dataplane and the control plane
// through the callbacks, so nothing runs between scrapes and the fast path
// is never touched by the exporter.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/dataplane.hpp"

namespace sluice {

// Control-plane figures the exporter reports next to the dataplane's.
// A fleet member's view of its fleet (control/fleet/fleet_agent.hpp).
struct FleetFigures {
  bool etcd_up = false;          // sluice_fleet_etcd_up: the last sync reached etcd
  double last_sync_age_sec = 0;  // sluice_fleet_last_sync_age_seconds
  bool static_shares = false;    // sluice_fleet_static: etcd away, last (then even) shares
  uint64_t edges_live = 0;       // sluice_fleet_edges{state="live"}, this one included
  uint64_t edges_held = 0;       // sluice_fleet_edges{state="held"}: gone, share still counted
  // Status only: out of sync at even shares, its hold says them and its
  // record is withdrawn (stood aside), or etcd has taken no such hold yet.
  bool stood_aside = false;
  bool hold_pending = false;
  struct Share {
    std::string budget;      // "boundary_lookups", "boundary_packets", "class"
    std::string class_name;  // budget "class" only
    uint64_t rate = 0;
    uint64_t burst = 0;
  };
  std::vector<Share> shares;  // sluice_fleet_share_per_sec / _burst
  // sluice_fleet_demand_lookups_per_sec: lookups offered to each class, all edges
  std::vector<std::pair<std::string, double>> fleet_lookups;
};

// The adaptive boundary's view (control/adaptive/adaptive_agent.hpp).
struct AdaptiveFigures {
  double rate = 0;                        // sluice_adaptive_rate: the boundary lookup rate it set
  double ceiling = 0;                     // sluice_adaptive_ceiling
  double floor = 0;                       // sluice_adaptive_floor
  double latency_sec = 0;                 // sluice_adaptive_latency_seconds: the signal (median)
  double baseline_sec = 0;                // sluice_adaptive_baseline_seconds
  double target_sec = 0;                  // sluice_adaptive_target_seconds
  double delivered = 0;                   // sluice_adaptive_delivered_per_second: answers/s
  std::string reason;                     // why the last step moved (or held) the rate
  std::map<std::string, uint64_t> steps;  // sluice_adaptive_steps_total{reason}
};

struct ControlFigures {
  uint64_t generation = 0;
  uint64_t changes_applied = 0;   // sluice_config_changes_total{result="applied"}
  uint64_t changes_rejected = 0;  // sluice_config_changes_total{result="rejected"}
  uint64_t reloads_applied = 0;   // SIGHUP reloads, sluice_config_reloads_total{result}
  uint64_t reloads_rejected = 0;
  double last_change_unix_sec = 0;
  uint64_t audit_write_failures =
      0;  // sluice_audit_write_failures_total  // sluice_config_last_change_timestamp_seconds
  bool dataplane_healthy = true;  // sluice_dataplane_up
  // sluice_in_charge: 0 while sluiced waits for a config it can validate or a
  // dataplane that starts (the edge runs what sluice_edge_state says).
  bool in_charge = true;
  uint64_t start_failures_config = 0;     // sluice_start_failures_total{reason="config"}
  uint64_t start_failures_dataplane = 0;  // sluice_start_failures_total{reason="dataplane"}
  // Configured budgets, for "use" panels (0 = unlimited).
  uint64_t boundary_lookups_per_sec = 0;
  uint64_t boundary_packets_per_sec = 0;
  std::vector<std::pair<std::string, uint64_t>> class_rate_per_sec;  // class -> rate (0 = none)
  // What this edge enforces of them (its fleet share, the adaptive rate;
  // the configured budgets otherwise), for "in use" panels.
  uint64_t boundary_lookups_enforced = 0;
  uint64_t boundary_packets_enforced = 0;
  std::vector<std::pair<std::string, uint64_t>> class_rate_enforced;
  std::vector<std::pair<std::string, uint32_t>> class_priority;  // class -> priority (0 = top)
  // sluice_dataplane_fallback: mode "auto" asked for DPDK, which could not
  // start, so XDP runs instead.
  bool dataplane_fallback = false;
  std::optional<FleetFigures> fleet;        // a fleet member only
  std::optional<AdaptiveFigures> adaptive;  // boundary.adaptive on only
};

class MetricsExporter {
 public:
  // Starts serving /metrics on `listen` ("127.0.0.1:9109" or "[::1]:9109").
  // Null + *error when the address cannot be bound.
  static std::unique_ptr<MetricsExporter> start(const std::string& listen,
                                                std::function<DataplaneStats()> dataplane,
                                                std::function<ControlFigures()> control,
                                                std::string* error);
  ~MetricsExporter();

 private:
  MetricsExporter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
