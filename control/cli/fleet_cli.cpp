// SPDX-License-Identifier: Apache-2.0
#include "control/cli/fleet_cli.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <vector>

#include "control/config/config_loader.hpp"
#include "control/fleet/fleet_policy.hpp"

namespace sluice::cli {

std::optional<FleetConfig> fleet_of(const std::string& config) {
  if (::access(config.c_str(), R_OK) != 0) {
    std::cerr << "sluicectl --fleet: cannot read " << config << ": " << std::strerror(errno)
              << "; give the edge's config file with --config\n";
    return std::nullopt;
  }
  std::vector<sluice::ConfigError> errors;
  const sluice::Config local = load_local_sections(config, &errors);
  for (const sluice::ConfigError& e : errors) std::cerr << e.to_string() << "\n";
  if (!local.fleet) {
    std::cerr << "sluicectl --fleet: " << config
              << (errors.empty() ? " has no [fleet] section (etcd, prefix, node)"
                                 : ": its local tables are not valid (above)")
              << "; give the edge's config file with --config\n";
    return std::nullopt;
  }
  return local.fleet;
}

json fleet_origin() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return {{"transport", "sluicectl --fleet"},
          {"uid", static_cast<int>(::getuid())},
          {"pid", static_cast<int>(::getpid())},
          {"host", host}};
}

void print_fleet(const json& f) {
  std::cout << "fleet " << f.value("prefix", std::string("?")) << " as "
            << f.value("node", std::string("?")) << ": " << f.value("edges_live", 0)
            << " edges live, " << f.value("edges_held", 0) << " held; etcd "
            << (f.value("etcd_up", false)
                    ? (f.value("static_shares", false) ? "up" : "in sync")
                    : "UNREACHABLE for " +
                          std::to_string(static_cast<int>(f.value("last_sync_age_sec", 0.0))) +
                          " s")
            << (f.value("static_shares", false) ? " (static shares)" : "") << "\n";
  if (f.contains("sync_error") && f["sync_error"].is_string())
    std::cout << "NOT IN SYNC: " << f["sync_error"].get<std::string>() << "\n";
  if (f.value("stood_aside", false))
    std::cout << "stood aside: its hold tells the fleet its even shares; its record is withdrawn "
                 "until it reads etcd\n";
  if (f.value("hold_pending", false))
    std::cout << "EVEN SHARES NOT TOLD: etcd took no hold of them yet (tried first every sync); "
                 "the fleet counts this edge by its last hold\n";
  std::string shares;
  const json& s = f.value("shares", json::object());
  for (const char* budget : {"boundary_lookups", "boundary_packets"})
    if (s.contains(budget))
      shares += std::string(shares.empty() ? "" : ", ") + budget + " " +
                std::to_string(s[budget].value("rate", 0)) + "/s";
  const json classes = s.value("classes", json::object());
  for (const auto& [name, b] : classes.items())
    shares += (shares.empty() ? "" : ", ") + name + " " + std::to_string(b.value("rate", 0)) + "/s";
  std::cout << "this edge's shares: " << (shares.empty() ? "-" : shares) << "\n";
}

bool wait_for_edges(const FleetConfig& fleet, int wait_ms, json* r) {
  const auto start = std::chrono::steady_clock::now();
  std::string error;
  const FleetReach reach = fleet_wait(fleet, (*r)["generation"].get<int64_t>(), wait_ms, &error);
  (*r)["reached_every_edge"] = reach.behind.empty() && reach.refused.empty();
  (*r)["edges_behind"] = reach.behind;
  (*r)["edges_refused"] = reach.refused;
  (*r)["wait_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  return (*r)["reached_every_edge"].get<bool>();
}

void print_edges_reached(const json& r, int wait_ms) {
  if (!r.contains("reached_every_edge")) return;
  if (r["reached_every_edge"]) {
    std::cout << "every live edge runs it (" << r["wait_ms"]
              << " ms); an edge that stopped keeps enforcing its last config until it rejoins\n";
    return;
  }
  const json refused = r.value("edges_refused", json::object());
  for (const auto& [node, why] : refused.items())
    std::cerr << "sluicectl --fleet: edge " << node
              << " refused it and keeps the config it runs, and its budgets (a budget this "
                 "change lowers is exceeded by that edge's share until it runs it): "
              << why.get<std::string>() << "\n";
  if (!r["edges_behind"].empty())
    std::cerr << "sluicectl --fleet: applied, but not yet running on: " << r["edges_behind"].dump()
              << " after " << wait_ms << " ms\n";
}

}  // namespace sluice::cli
