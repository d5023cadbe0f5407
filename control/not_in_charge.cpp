// SPDX-License-Identifier: Apache-2.0
// sluiced not in charge (its config rejected, its dataplane not started, a
// fleet not joined): the edge keeps what it runs (or gets its when_stopped
// program), and the control socket, /metrics and systemd's STATUS= say why
// until it starts again.
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <ctime>
#include <memory>
#include <string>

#include "control/api/api_server.hpp"
#include "control/config/config_loader.hpp"
#include "control/daemon_detail.hpp"
#include "control/log.hpp"
#include "control/metrics.hpp"

namespace sluice {

void notify(const std::string& state) { sd_notify(0, state.c_str()); }

namespace {

std::string edge_text(const DataplaneStats& s) {
  if (s.edge_state.empty()) return "nothing of sluice's is attached";
  std::string text = s.edge_state;
  if (s.edge_state == "enforcing")
    text +=
        " generation " + std::to_string(s.generation) + " (the program an earlier sluiced left)";
  else if (s.edge_state == "passthrough")
    text += " (every frame forwarded unfiltered)";
  else if (s.edge_state == "blocked")
    text += " (every frame dropped)";
  return text;
}

}  // namespace

int wait_not_in_charge(const DaemonOptions& options, const std::string& why, bool config_error,
                       bool unjoined, const sigset_t& signals, unsigned retry_sec,
                       StartFailures* failures, InstanceLocks* locks) {
  (config_error ? failures->config : failures->dataplane)++;
  std::string error;
  // A first start that failed must not leave an inline edge dark: unless a
  // sluice program enforces already, the when_stopped program goes in.
  auto keep_the_edge = [&](const Config& local) {
    if (!locks->take(local.dataplane.pin_path, &error)) {
      log_event(LogLevel::error, "not starting", {{"error", error}});
      return false;
    }
    const DataplaneSettings settings = dataplane_settings(local);
    if (config_error) record_failed_start(settings, why);
    std::string report;
    if (!local.dataplane.outside.empty() && !install_passthrough_dataplane(settings, &report))
      log_event(LogLevel::error, "pass-through not installed", {{"detail", report}});
    return true;
  };
  std::vector<ConfigError> local_errors;
  const Config local = load_local_sections(options.config_path, &local_errors);
  if (!local_errors.empty()) {
    // Its own tables are broken too: defaults in their place would be
    // another edge's (the pin path, lock, socket and metrics address of the
    // main sluiced), so it serves nothing and exits. The edge still gets its
    // when_stopped program if [dataplane] alone can be read.
    for (const ConfigError& e : local_errors)
      log_event(LogLevel::error, "config not usable", {{"error", e.to_string()}});
    std::vector<ConfigError> dataplane_errors;
    const Config own = load_sections(options.config_path, {"dataplane"}, &dataplane_errors);
    if (dataplane_errors.empty()) keep_the_edge(own);
    notify("STATUS=not starting: " + options.config_path +
           ": its [dataplane], [control], [metrics] or [fleet] table is not valid: " +
           local_errors.front().to_string());
    log_event(LogLevel::error, "not starting",
              {{"error", "the tables that say which edge this is are not valid; fix " +
                             options.config_path + " and start sluiced again"}});
    return 1;
  }
  if (!keep_the_edge(local)) return 1;
  const DataplaneSettings settings = dataplane_settings(local);
  const DataplaneStats edge = unattended_stats(settings);
  const std::string retrying = "retrying every " + std::to_string(retry_sec) + " s";
  // DPDK starts once per process: with mode "dpdk" a retry could only fail
  // again (counted and logged each time), so none is made on a timer; a
  // SIGHUP still reloads (a config switched to XDP can start). Mode "auto"
  // retries: its XDP fallback may start (an interface that came up late).
  const bool timer =
      unjoined || !dataplane_needs_new_process() || local.dataplane.mode != DataplaneKind::dpdk;
  const std::string message =
      unjoined
          ? "the fleet could not be joined: " + why + "; the edge: " + edge_text(edge) + "; " +
                retrying + " (SIGHUP: at once)"
          : std::string(config_error ? "the config was rejected" : "the dataplane did not start") +
                ": " + why + "; the edge: " + edge_text(edge) + ". Fix " + options.config_path +
                (!timer ? " and restart sluiced (DPDK starts once per "
                          "process: no retry here; a reload starts only "
                          "a config without DPDK)"
                        : " and reload (SIGHUP); " + retrying);
  // No READY=1 (nothing of this config enforces); STATUS says why.
  notify("STATUS=not in charge: " + message);
  log_event(LogLevel::error, "not in charge",
            {{"reason", config_error ? "config" : "dataplane"},
             {"error", why},
             {"edge", edge.edge_state.empty() ? "none" : edge.edge_state},
             {"generation", std::to_string(edge.generation)},
             {"retry_sec", timer ? std::to_string(retry_sec) : "none"}});

  ApiOptions api_options{local.control.socket, local.control.socket_mode,
                         local.control.socket_group, local.control.http_listen,
                         local.control.http_token_file};
  std::unique_ptr<ApiServer> api = ApiServer::start(
      api_options,
      [&message, &settings](const nlohmann::json&, const Origin&) -> nlohmann::json {
        const DataplaneStats s = unattended_stats(settings);
        return {{"ok", false},
                {"error", "sluiced is not in charge: " + message},
                {"in_charge", false},
                {"edge", {{"state", s.edge_state}, {"generation", s.generation}}}};
      },
      &error);
  if (!api) log_event(LogLevel::warn, "control socket not served", {{"error", error}});
  std::unique_ptr<MetricsExporter> metrics = MetricsExporter::start(
      local.metrics.listen,
      [&settings] {
        // sluice_edge_state is an inline edge's (host mode has no
        // pass-through, and its alert would fire for a host-mode box);
        // status and the log still say what an earlier run left enforcing.
        DataplaneStats s = unattended_stats(settings);
        if (settings.inside.empty()) s.edge_state.clear();
        return s;
      },
      [failures] {
        ControlFigures f;
        f.in_charge = false;
        f.dataplane_healthy = false;
        f.start_failures_config = failures->config;
        f.start_failures_dataplane = failures->dataplane;
        return f;
      },
      &error);
  if (!metrics) log_event(LogLevel::warn, "metrics not served", {{"error", error}});

  timespec timeout{static_cast<time_t>(retry_sec), 0};
  timespec* wait = timer ? &timeout : nullptr;
  for (;;) {
    const int sig = sigtimedwait(&signals, nullptr, wait);
    if (sig < 0 && errno == EINTR) continue;
    if (sig == SIGUSR1) continue;  // no audit log is open while not in charge
    if (sig == SIGTERM || sig == SIGINT) {
      log_event(LogLevel::info, "stopping while not in charge; the edge keeps what it runs",
                {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      return 0;
    }
    return kStartAgain;  // SIGHUP, or the retry timer
  }
}

}  // namespace sluice
