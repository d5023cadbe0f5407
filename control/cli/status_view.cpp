// SPDX-License-Identifier: Apache-2.0
#include "control/cli/status_view.hpp"

#include <signal.h>

#include <cstdio>
#include <ctime>
#include <iostream>

#include "control/cli/cli_common.hpp"
#include "control/cli/fleet_cli.hpp"
#include "control/cli/top.hpp"
#include "control/instance_lock.hpp"
#ifdef SLUICE_WITH_XDP
#include "dataplane/xdp/edge.hpp"
#endif

namespace sluice::cli {

std::string utc_text(double unix_sec) {
  if (unix_sec <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(unix_sec);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

void print_pinned_edge(const std::string& pin_path, bool json_out) {
#ifndef SLUICE_WITH_XDP
  (void)pin_path;  // without XDP nothing of sluice's outlives sluiced
  if (json_out) std::cout << json({{"ok", false}, {"pinned_edge", nullptr}}).dump(2) << "\n";
#else
  sluice::EdgeRecord r;
  std::string error;
  if (!sluice::read_edge_record(pin_path, &r, &error)) {
    // --json answers one object also then (the reason sluiced did not
    // answer is on stderr).
    if (json_out)
      std::cout
          << json({{"ok", false}, {"pinned_edge", nullptr}, {"pinned_edge_error", error}}).dump(2)
          << "\n";
    else
      std::cerr << "edge: " << error << "\n";
    return;
  }
  const sluice::EdgeState now = sluice::edge_link_state(pin_path);
  // Its instance lock says whether a sluiced runs it (a killed one's pid
  // can still answer kill(0) as a zombie, or be another process's now).
  const bool running =
      sluice::instance_lock_held(pin_path).value_or(r.pid > 0 && ::kill(r.pid, 0) == 0);
  if (json_out) {
    json e = {{"record", pin_path + "/sl_edge"},
              {"state", sluice::edge_state_name(now)},
              {"since_unix_sec", r.since_unix_ns / 1e9},
              {"generation", r.generation},
              {"unattended", now == sluice::EdgeState::enforcing && !(r.attended && running)}};
    if (!r.last_failure.empty())
      e["last_failed_start"] = {{"unix_sec", r.last_failure_unix_ns / 1e9},
                                {"error", r.last_failure}};
    std::cout << json({{"ok", false}, {"pinned_edge", e}}).dump(2) << "\n";
    return;
  }
  std::cout << "edge (pinned record " << pin_path << "/sl_edge): " << sluice::edge_state_name(now)
            << " since " << utc_text(r.since_unix_ns / 1e9) << ", generation " << r.generation
            << (now == sluice::EdgeState::enforcing && !(r.attended && running)
                    ? ", unattended (no sluiced runs it)"
                    : "")
            << "\n";
  if (!r.last_failure.empty())
    std::cout << "last failed start: " << utc_text(r.last_failure_unix_ns / 1e9) << ": "
              << r.last_failure << "\n";
#endif
}

void print_status(const json& r) {
  std::cout << "sluiced: " << r["mode"].get<std::string>() << " (" << r["attach"].get<std::string>()
            << ") outside " << r["outside"].get<std::string>() << ", inside "
            << (r["inside"].get<std::string>().empty() ? "(host mode)"
                                                       : r["inside"].get<std::string>())
            << "\ngeneration " << r["generation"] << ", up " << r["uptime_sec"] << " s, profile "
            << (r["profile"].is_null() ? "none" : r["profile"].get<std::string>())
            << (r["shadow"].get<bool>() ? ", SHADOW MODE (nothing is shed)" : "") << "\n";
  if (!r.value("healthy", true))
    std::cout << "DATAPLANE UNHEALTHY: " << r.value("unhealthy", std::string("(no reason given)"))
              << "\n";
  if (!r.value("standby", std::string()).empty())
    std::cout << "xdp standby: " << r["standby"].get<std::string>() << "\n";
  if (r.contains("edge") && r["edge"].contains("state"))
    std::cout << "edge: " << r["edge"]["state"].get<std::string>() << " since "
              << utc_text(r["edge"].value("since_unix_sec", 0.0)) << "\n";
  // Under the adaptive boundary the configured rate is its ceiling: the
  // rate the edge runs now is said next to it.
  const json* adaptive_rate = r.contains("adaptive") && r["adaptive"].is_object() &&
                                      r["adaptive"].contains("rate") &&
                                      r["adaptive"]["rate"].is_number()
                                  ? &r["adaptive"]["rate"]
                                  : nullptr;
  std::cout << "boundary: lookups " << fmt_rate(r["boundary"]["lookups_per_sec"])
            << (adaptive_rate ? " ceiling, " + fmt_rate(*adaptive_rate) + " now (adaptive)" : "")
            << " (" << r["boundary"]["lookup_tokens"] << " tokens), packets "
            << fmt_rate(r["boundary"]["packets_per_sec"]) << " (" << r["boundary"]["packet_tokens"]
            << " tokens)\n";
  if (r.contains("adaptive") && r["adaptive"].is_object())
    std::cout << sluice::cli::adaptive_line(r["adaptive"]) << "\n";
  if (r.contains("fleet") && r["fleet"].is_object()) print_fleet(r["fleet"]);
  std::cout << "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%-16s %3s %12s %10s %12s %12s %12s  %s\n", "class", "pri",
                "rate", "tokens", "lookups", "admitted", "shed", "shed by reason (packets)");
  std::cout << line;
  for (const json& c : r["classes"]) {
    std::string reasons;
    for (auto& [k, v] : c["shed_by_reason"].items())
      reasons += (reasons.empty() ? "" : " ") + k + "=" + std::to_string(v.get<uint64_t>());
    std::snprintf(line, sizeof(line), "%-16s %3d %12s %10llu %12llu %12llu %12llu  %s\n",
                  c["name"].get<std::string>().c_str(), c["priority"].get<int>(),
                  fmt_rate(c["rate_per_sec"]).c_str(),
                  static_cast<unsigned long long>(c["bucket_tokens"].get<uint64_t>()),
                  static_cast<unsigned long long>(c["lookups"].get<uint64_t>()),
                  static_cast<unsigned long long>(c["admitted"].get<uint64_t>()),
                  static_cast<unsigned long long>(c["shed"].get<uint64_t>()),
                  reasons.empty() ? "-" : reasons.c_str());
    std::cout << line;
  }
  if (r.contains("flows") && r["flows"].contains("capacity")) {
    const json& f = r["flows"];
    std::cout << "\nflows: " << f["entries"] << " of " << f["capacity"]
              << " entries, unverified packets: " << f["unverified"].get<std::string>() << "\n";
    std::snprintf(line, sizeof(line), "%-8s %10s %10s %10s %10s %10s %10s %10s\n", "priority",
                  "entries", "created", "expired", "evicted", "learned", "confirmed", "over_rate");
    std::cout << line;
    for (const json& p : f["by_priority"]) {
      const json& ev = p["events"];
      if (count_of(p, "entries") == 0 && count_of(ev, "created") == 0 &&
          count_of(ev, "learned") == 0 && count_of(ev, "over_rate") == 0)
        continue;  // an unused priority
      std::snprintf(line, sizeof(line), "%-8llu %10llu %10llu %10llu %10llu %10llu %10llu %10llu\n",
                    count_of(p, "priority"), count_of(p, "entries"), count_of(ev, "created"),
                    count_of(ev, "expired"), count_of(ev, "evicted"), count_of(ev, "learned"),
                    count_of(ev, "confirmed"), count_of(ev, "over_rate"));
      std::cout << line;
    }
  }
  const json& queues = list_of(r, "queues");
  if (!queues.empty()) {
    std::snprintf(line, sizeof(line), "\n%-8s %10s %14s %14s\n", "priority", "depth",
                  "dropped full", "dropped delay");
    std::cout << line;
    for (const json& q : queues) {
      std::snprintf(line, sizeof(line), "%-8llu %10llu %14llu %14llu\n", count_of(q, "priority"),
                    count_of(q, "depth"), count_of(q, "dropped_full"),
                    count_of(q, "dropped_delay"));
      std::cout << line;
    }
  }
  const json& ports = list_of(r, "ports");
  if (!ports.empty()) {
    std::snprintf(line, sizeof(line), "\n%-8s %-16s %14s %14s %11s %11s %11s %11s\n", "port",
                  "device", "rx", "tx", "rx missed", "rx nombuf", "tx errors", "tx dropped");
    std::cout << line;
    for (const json& p : ports) {
      std::snprintf(line, sizeof(line), "%-8s %-16s %14llu %14llu %11llu %11llu %11llu %11llu\n",
                    p.value("name", "-").c_str(), p.value("device", "-").c_str(),
                    count_of(p, "rx_packets"), count_of(p, "tx_packets"), count_of(p, "rx_missed"),
                    count_of(p, "rx_nombuf"), count_of(p, "tx_errors"), count_of(p, "tx_dropped"));
      std::cout << line;
    }
  }
}

}  // namespace sluice::cli
