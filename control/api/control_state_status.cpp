// SPDX-License-Identifier: Apache-2.0
// What `sluicectl status` and /metrics read of the control state: the
// dataplane's counters with the effective config's names, and the control
// plane's own figures.
#include "control/api/control_state.hpp"

#include <chrono>

#include "control/adaptive/adaptive_rate.hpp"
#include "control/config/schema.hpp"
#include "control/fleet/shares.hpp"
#include "dataplane/common/labels.hpp"

namespace sluice {

using json = nlohmann::json;

DataplaneStats ControlState::stats() const { return dataplane_.stats(); }

json ControlState::status() const {
  const DataplaneStats s = dataplane_.stats();
  const Config& cfg = *effective_.config;
  json classes = json::array();
  for (const ClassStats& c : s.classes) {
    const ClassConfig* cc = nullptr;
    for (const ClassConfig& k : cfg.classes)
      if (k.name == c.name) cc = &k;
    uint64_t lookups = 0, admitted = 0, packets = 0, packets_shed = 0;
    json shed_by_reason = json::object();
    for (int r = 0; r < SL_REASON_COUNT; r++) {
      lookups += c.lookups[0][r] + c.lookups[1][r];
      admitted += c.lookups[SL_VERDICT_ADMITTED][r];
      packets += c.packets[0][r] + c.packets[1][r];
      packets_shed += c.packets[SL_VERDICT_SHED][r];
      if (c.packets[SL_VERDICT_SHED][r] != 0)
        shed_by_reason[reason_label(static_cast<uint32_t>(r))] = c.packets[SL_VERDICT_SHED][r];
    }
    classes.push_back(
        {{"name", c.name},
         {"priority", cc ? cc->priority : 0},
         {"rate_per_sec", cc && cc->rate_per_sec ? json(*cc->rate_per_sec) : json(nullptr)},
         {"burst", cc ? cc->burst : 0},
         {"bucket_tokens", c.bucket_tokens},
         {"sticky_admitted_ratio", static_cast<double>(c.sticky_threshold) / SL_RANK_ONE},
         {"lookups", lookups},
         {"admitted", admitted},
         {"shed", lookups - admitted},
         {"packets", packets},
         {"packets_shed", packets_shed},
         {"shed_by_reason", shed_by_reason}});
  }
  // Empty lists when the dataplane neither queues nor owns its ports (XDP).
  json queues = json::array();
  for (const QueueStats& q : s.queues) {
    queues.push_back({{"priority", q.priority},
                      {"depth", q.depth},
                      {"dropped_full", q.dropped_full},
                      {"dropped_delay", q.dropped_delay}});
  }
  json ports = json::array();
  for (const PortStats& p : s.ports) {
    ports.push_back({{"name", p.name},
                     {"device", p.device},
                     {"rx_packets", p.rx_packets},
                     {"tx_packets", p.tx_packets},
                     {"rx_missed", p.rx_missed},
                     {"rx_nombuf", p.rx_nombuf},
                     {"tx_errors", p.tx_errors},
                     {"tx_dropped", p.tx_dropped}});
  }
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count();
  json flows = json::object();
  if (s.flow_table_capacity > 0) {
    json by_prio = json::array();
    uint64_t total = 0;
    for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
      json ev = json::object();
#define SL_FLOW_EVENT_JSON(name, num, label, doc) ev[label] = s.flow_events[p][num];
      SL_FLOW_EVENTS(SL_FLOW_EVENT_JSON)
#undef SL_FLOW_EVENT_JSON
      by_prio.push_back({{"priority", p}, {"entries", s.flow_entries[p]}, {"events", ev}});
      total += s.flow_entries[p];
    }
    flows = {
        {"capacity", s.flow_table_capacity},
        {"entries", total},
        // The schema's words, in UnverifiedAction's order.
        {"unverified", std::string(words_of(key_spec("admission", "unverified"))
                                       .at(static_cast<std::size_t>(cfg.admission.unverified)))},
        {"by_priority", by_prio}};
  }
  json out = {
      {"ok", true},
      {"mode", s.mode},
      {"attach", s.attach},
      {"healthy", s.healthy},
      {"unhealthy", s.unhealthy},
      {"standby", s.standby},
      {"outside", cfg.dataplane.outside},
      {"inside", cfg.dataplane.inside},
      {"generation", generation_},
      {"uptime_sec", uptime},
      {"config_file", config_path_},
      {"profile", profile_.empty() ? json(nullptr) : json(profile_)},
      {"shadow", cfg.admission.shadow},
      {"boundary",
       {{"lookups_per_sec",
         cfg.boundary.lookups_per_sec ? json(*cfg.boundary.lookups_per_sec) : json(nullptr)},
        {"lookup_tokens", s.boundary_lookup_tokens},
        {"packets_per_sec",
         cfg.boundary.packets_per_sec ? json(*cfg.boundary.packets_per_sec) : json(nullptr)},
        {"packet_tokens", s.boundary_packet_tokens}}},
      {"classes", classes},
      {"flows", flows},
      {"edge", s.edge_state.empty()
                   ? json::object()
                   : json{{"state", s.edge_state},
                          {"since_unix_sec", static_cast<double>(s.edge_since_unix_ns) / 1e9}}},
      {"queues", queues},
      {"ports", ports}};
  if (fleet_status_) out["fleet"] = fleet_status_();
  if (adaptive_status_ && cfg.boundary.adaptive) out["adaptive"] = adaptive_status_();
  return out;
}

ControlFigures ControlState::figures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  ControlFigures f;
  f.generation = generation_;
  f.changes_applied = applied_;
  f.changes_rejected = rejected_;
  f.reloads_applied = reloads_applied_;
  f.reloads_rejected = reloads_rejected_;
  f.last_change_unix_sec = last_change_unix_;
  f.audit_write_failures = audit_failures_;
  f.dataplane_healthy = dataplane_.stats().healthy;
  if (effective_.config) {
    const Config& cfg = *effective_.config;
    f.boundary_lookups_per_sec = cfg.boundary.lookups_per_sec.value_or(0);
    f.boundary_packets_per_sec = cfg.boundary.packets_per_sec.value_or(0);
    for (const ClassConfig& c : cfg.classes) {
      f.class_rate_per_sec.emplace_back(c.name, c.rate_per_sec.value_or(0));
      f.class_priority.emplace_back(c.name, c.priority);
    }
    // As compile() makes the profile the dataplane runs.
    const Config run = shares_ ? apply_shares(cfg, *shares_) : cfg;
    const BoundaryConfig b = adaptive_rate_ && run.boundary.adaptive
                                 ? with_adaptive_rate(run.boundary, *adaptive_rate_)
                                 : run.boundary;
    f.boundary_lookups_enforced = b.lookups_per_sec.value_or(0);
    f.boundary_packets_enforced = b.packets_per_sec.value_or(0);
    for (const ClassConfig& c : run.classes)
      f.class_rate_enforced.emplace_back(c.name, c.rate_per_sec.value_or(0));
  }
  return f;
}

}  // namespace sluice
