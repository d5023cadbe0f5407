// SPDX-License-Identifier: Apache-2.0
#include "control/daemon.hpp"

#include <signal.h>

#include <cerrno>
#include <ctime>
#include <string>

#include "control/compile.hpp"
#include "control/config_loader.hpp"
#include "control/log.hpp"
#include "control/replay.hpp"

namespace sluice {
namespace {

void log_errors(const LoadResult& r) {
  for (const ConfigError& e : r.errors)
    log_event(LogLevel::error, "config error", {{"error", e.to_string()}});
}

void log_counters(const DataplaneStats& s) {
  for (const ClassStats& c : s.classes) {
    uint64_t offered = 0, admitted = 0, packets = 0, packets_shed = 0;
    std::string shed;
    for (int r = 0; r < SL_REASON_COUNT; r++) {
      offered += c.lookups[SL_VERDICT_ADMITTED][r] + c.lookups[SL_VERDICT_SHED][r];
      admitted += c.lookups[SL_VERDICT_ADMITTED][r];
      packets += c.packets[SL_VERDICT_ADMITTED][r] + c.packets[SL_VERDICT_SHED][r];
      packets_shed += c.packets[SL_VERDICT_SHED][r];
      if (c.packets[SL_VERDICT_SHED][r] != 0) {
        if (!shed.empty()) shed += ",";
        shed += std::string(reason_label(static_cast<uint32_t>(r))) + ":" +
                std::to_string(c.packets[SL_VERDICT_SHED][r]);
      }
    }
    log_event(LogLevel::info, "class counters",
              {{"class", c.name},
               {"generation", std::to_string(s.generation)},
               {"lookups", std::to_string(offered)},
               {"admitted", std::to_string(admitted)},
               {"packets", std::to_string(packets)},
               {"packets_shed", std::to_string(packets_shed)},
               {"shed_by_reason", shed.empty() ? "-" : shed},
               {"bucket_tokens", std::to_string(c.bucket_tokens)}});
  }
}

}  // namespace

DataplaneSettings dataplane_settings(const Config& cfg) {
  DataplaneSettings s;
  s.kind = cfg.dataplane.mode == DataplaneMode::dpdk  ? DataplaneKind::dpdk
           : cfg.dataplane.mode == DataplaneMode::xdp ? DataplaneKind::xdp
                                                      : DataplaneKind::automatic;
  s.outside = cfg.dataplane.outside;
  s.inside = cfg.dataplane.inside;
  s.xdp_generic = cfg.dataplane.xdp_attach == XdpAttach::generic;
  s.pin_path = cfg.dataplane.pin_path;
  s.source_table_size = cfg.admission.source_table_size;
  s.dpdk_args = cfg.dataplane.dpdk_args;
  return s;
}

int run_daemon(const DaemonOptions& options) {
  LoadResult loaded = load_config_file(options.config_path);
  if (!loaded.ok()) {
    log_errors(loaded);
    log_event(LogLevel::error, "config not valid, not starting", {{"file", options.config_path}});
    return 1;
  }
  Config cfg = *loaded.config;
  if (cfg.dataplane.outside.empty()) {
    log_event(LogLevel::error, "dataplane.outside is required to run",
              {{"file", options.config_path}});
    return 1;
  }

  // Block the signals we serve before anything else can start a thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string log, error;
  std::unique_ptr<Dataplane> dp = make_dataplane(dataplane_settings(cfg), &log, &error);
  if (!log.empty()) log_event(LogLevel::info, "dataplane selection", {{"detail", log}});
  if (!dp) {
    log_event(LogLevel::error, "no dataplane", {{"error", error}});
    return 1;
  }
  if (!dp->start(compile_profile(cfg), 1, &error)) {
    log_event(LogLevel::error, "dataplane did not start", {{"mode", dp->kind()}, {"error", error}});
    return 1;
  }
  uint64_t generation = dp->stats().generation;
  log_event(LogLevel::info, "started",
            {{"mode", dp->kind()},
             {"attach", dp->stats().attach},
             {"outside", cfg.dataplane.outside},
             {"inside", cfg.dataplane.inside.empty() ? "(host mode)" : cfg.dataplane.inside},
             {"generation", std::to_string(generation)},
             {"adopted", dp->adopted_state() ? "true" : "false"},
             {"config", options.config_path}});

  for (;;) {
    timespec timeout{static_cast<time_t>(options.log_interval_sec), 0};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig < 0) {
      if (errno == EAGAIN) log_counters(dp->stats());
      continue;
    }
    if (sig == SIGHUP) {
      LoadResult next = load_config_file(options.config_path);
      if (!next.ok()) {
        log_errors(next);
        log_event(LogLevel::warn, "reload rejected, keeping the running config",
                  {{"generation", std::to_string(generation)}});
        continue;
      }
      const DataplaneSettings before = dataplane_settings(cfg);
      const DataplaneSettings after = dataplane_settings(*next.config);
      if (before.outside != after.outside || before.inside != after.inside ||
          before.kind != after.kind || before.xdp_generic != after.xdp_generic ||
          before.pin_path != after.pin_path ||
          before.source_table_size != after.source_table_size) {
        log_event(
            LogLevel::warn,
            "reload changes restart-only settings (dataplane.*, admission.source_table_size); "
            "they apply at the next restart");
      }
      if (!dp->apply(compile_profile(*next.config), generation + 1, &error)) {
        log_event(LogLevel::error, "reload failed, keeping the running config", {{"error", error}});
        continue;
      }
      generation++;
      cfg = *next.config;
      log_event(LogLevel::info, "reloaded", {{"generation", std::to_string(generation)}});
      continue;
    }
    log_event(LogLevel::info, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    log_counters(dp->stats());
    dp->stop();
    log_event(LogLevel::info, "detached and stopped");
    return 0;
  }
}

int detach(const std::string& config_path) {
  LoadResult loaded = load_config_file(config_path);
  if (!loaded.ok()) {
    log_errors(loaded);
    return 1;
  }
  std::string report;
  const bool ok = detach_dataplane(dataplane_settings(*loaded.config), &report);
  log_event(ok ? LogLevel::info : LogLevel::error, ok ? "detached" : "detach incomplete",
            {{"detail", report}});
  return ok ? 0 : 1;
}

}  // namespace sluice
