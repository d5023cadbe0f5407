// SPDX-License-Identifier: Apache-2.0
#include "control/cli/edge_requests.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "control/api/api_client.hpp"
#include "control/api/change_json.hpp"
#include "control/cli/cli_common.hpp"
#include "control/cli/fleet_cli.hpp"
#include "control/cli/status_view.hpp"
#include "control/fleet/fleet_policy.hpp"

namespace sluice::cli {
namespace {

std::string text_or_dash(const json& v) { return v.is_null() ? "-" : v.get<std::string>(); }

void print_change(const json& r) {
  const json& diff = r["diff"];
  const json base = r.value("base_diff", json::array());
  const bool dry = r.value("dry_run", false);
  if (diff.empty() && !base.empty()) {
    // The base config changed (a key the active profile sets, or another
    // profile that sets the same values): the settings in effect did not.
    for (const json& d : base)
      std::cout << "  base " << d["key"].get<std::string>() << ": " << text_or_dash(d["old"])
                << " -> " << text_or_dash(d["new"]) << "\n";
    if (dry) {
      std::cout << "dry run: valid, " << base.size()
                << " change(s) to the base config, none to the settings in effect (the active "
                   "profile sets them); nothing applied\n";
    } else {
      std::cout << "applied to the base config as generation " << r["generation"]
                << "; the settings in effect did not change (the active profile sets them)\n";
    }
  } else if (diff.empty()) {
    std::cout << "no change (generation " << r["generation"] << ")\n";
  } else {
    for (const json& d : diff)
      std::cout << "  " << d["key"].get<std::string>() << ": " << text_or_dash(d["old"]) << " -> "
                << text_or_dash(d["new"]) << "\n";
    if (dry) {
      std::cout << "dry run: valid, " << diff.size() << " change(s), nothing applied\n";
    } else {
      std::cout << "applied as generation " << r["generation"] << "\n";
    }
  }
  if (r.contains("notes"))
    for (const json& n : r["notes"]) std::cout << "note: " << n.get<std::string>() << "\n";
}

// True when sluiced answers `status` in charge, its dataplane enforcing
// (quietly: nothing printed).
bool answers_status(const Globals& g) {
  std::string error;
  auto client = sluice::ApiClient::connect(g.socket, &error);
  if (!client) return false;
  auto r = client->call({{"op", "status"}}, &error);
  return r && r->value("ok", false) && r->value("healthy", true);
}

}  // namespace

// Sends one request; prints errors; returns the exit code and the response.
int call(const Globals& g, const json& request, json* response) {
  std::string error;
  std::optional<json> r;
  if (g.fleet) {
    const std::optional<sluice::FleetConfig> fleet = fleet_of(g.config);
    if (!fleet) return kRejected;
    r = sluice::fleet_request(*fleet, request, fleet_origin());
    if (r->value("unreachable", false)) {
      std::cerr << "sluicectl --fleet: " << r->value("error", "etcd did not answer") << "\n";
      return kUnreachable;
    }
  } else {
    auto client = sluice::ApiClient::connect(g.socket, &error);
    if (!client) {
      std::cerr << "sluicectl: " << error << "\n";
      return kUnreachable;
    }
    r = client->call(request, &error);
    if (!r) {
      std::cerr << "sluicectl: " << error << "\n";
      return kUnreachable;
    }
  }
  *response = *r;
  if (!r->value("ok", false) && (r->value("starting", false) || r->value("busy", false))) {
    // Not an answer yet (starting, or all its control connections taken):
    // like a daemon that cannot be reached, try again.
    if (g.json_out) std::cout << r->dump(2) << "\n";
    std::cerr << "sluicectl: " << r->value("error", "sluiced is starting") << "\n";
    return kUnreachable;
  }
  if (!r->value("ok", false)) {
    if (g.json_out) {
      std::cout << r->dump(2) << "\n";
    } else {
      if (r->contains("errors") && (*r)["errors"].is_array() && !(*r)["errors"].empty()) {
        for (const json& e : (*r)["errors"]) std::cerr << e.value("text", e.dump()) << "\n";
      } else {
        std::cerr << "sluicectl: " << r->value("error", "refused") << "\n";
      }
    }
    return kRejected;
  }
  return kOk;
}

int change(const Globals& g, const json& request) {
  json r;
  const int rc = call(g, request, &r);
  if (rc != kOk) return rc;
  // A fleet change is applied by each edge as it sees it: wait for them.
  // Written, but refused by an edge or not running on it in time: exit 1.
  bool everywhere = true;
  if (g.fleet && !r.value("dry_run", false) && !r["diff"].empty() && g.fleet_wait_ms > 0) {
    // Read again: the file may have changed since the request went out
    // (fleet_of says why it cannot be used; the change is written).
    const std::optional<sluice::FleetConfig> fleet = fleet_of(g.config);
    everywhere = fleet && wait_for_edges(*fleet, g.fleet_wait_ms, &r);
  }
  if (g.json_out) {
    std::cout << r.dump(2) << "\n";
  } else {
    print_change(r);
    print_edges_reached(r, g.fleet_wait_ms);
  }
  return everywhere ? kOk : kRejected;
}

// Exit 0 only while sluiced enforces its config: in charge and its dataplane
// healthy (an unhealthy one, e.g. after `sluiced --detach`, exits 1 after
// saying why), so that scripts can wait on it.
int status(const Globals& g, double wait_sec) {
  // --wait: poll until sluiced answers in charge and healthy, or the time
  // is up; then report what it says either way.
  if (wait_sec > 0) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(wait_sec * 1000));
    while (!answers_status(g) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  json r;
  const int rc = call(g, {{"op", "status"}}, &r);
  if (rc != kOk) {
    // A sluiced that is not in charge says what the edge runs itself (from
    // its own pin_path); one that cannot be reached leaves the pinned record.
    if (g.json_out) {
      // call() printed an answer (not in charge, starting); with none, the
      // pinned record speaks.
      if (r.is_null()) print_pinned_edge(g.pin_path, g.json_out);
      return rc;
    }
    if (r.is_object() && r.contains("in_charge") && r.contains("edge") && r["edge"].is_object()) {
      const json& e = r["edge"];
      const std::string state = e.value("state", std::string());
      std::cout << "edge: " << (state.empty() ? "nothing of sluice's attached" : state)
                << ", generation " << e.value("generation", uint64_t{0}) << "\n";
    } else {
      print_pinned_edge(g.pin_path, g.json_out);
    }
    return rc;
  }
  const int enforcing = r.value("healthy", true) ? kOk : kRejected;
  if (g.json_out) {
    std::cout << r.dump(2) << "\n";
    return enforcing;
  }
  print_status(r);
  return enforcing;
}

}  // namespace sluice::cli
