// SPDX-License-Identifier: Apache-2.0
#include "control/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include <cerrno>
#include <ctime>
#include <string>

#include "control/api_server.hpp"
#include "control/audit.hpp"
#include "control/compile.hpp"
#include "control/config_loader.hpp"
#include "control/control_state.hpp"
#include "control/log.hpp"
#include "control/metrics.hpp"
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

// Takes an exclusive lock named after the pin path (held until exit).
// Returns the lock's fd, or -1 with *error.
int lock_instance(const std::string& pin_path, std::string* error) {
  std::string name = pin_path;
  for (char& c : name)
    if (c == '/') c = '-';
  const std::string dir = "/run/sluice";
  ::mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/instance" + name + ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    *error = "another sluiced is running with dataplane.pin_path " + pin_path + " (" + path +
             " is locked)";
    ::close(fd);
    return -1;
  }
  return fd;
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
  s.flow_table_size = cfg.admission.flow_table_size;
  s.dpdk_args = cfg.dataplane.dpdk_args;
  s.dpdk_workers = cfg.dataplane.dpdk_workers;
  s.dpdk_mbufs = cfg.dataplane.dpdk_mbufs;
  s.dpdk_queue_size = cfg.dataplane.dpdk_queue_size;
  s.dpdk_idle_sleep_us = cfg.dataplane.dpdk_idle_sleep_us;
  s.dpdk_capture_clock = cfg.dataplane.dpdk_clock == DpdkClock::capture;
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
  // One sluiced per pinned state: a second one (a mistake, or a restart
  // racing the old process) must not adopt and then tear down the first's.
  const int lock_fd = lock_instance(cfg.dataplane.pin_path, &error);
  if (lock_fd < 0) {
    log_event(LogLevel::error, "not starting", {{"error", error}});
    return 1;
  }

  // The control plane comes up before the dataplane is touched, so that a
  // bad socket, audit log or metrics address stops sluiced without changing
  // what is enforcing traffic. Requests that arrive before the dataplane
  // runs are answered "starting".
  AuditLog audit;
  std::atomic<ControlState*> control{nullptr};
  std::unique_ptr<ControlState> control_owner;
  std::unique_ptr<ApiServer> api;
  std::unique_ptr<MetricsExporter> metrics;
  if (audit.open(cfg.control.audit_log, &error)) {
    ApiOptions api_options{cfg.control.socket, cfg.control.socket_mode, cfg.control.socket_group,
                           cfg.control.http_listen, cfg.control.http_token_file};
    api = ApiServer::start(
        api_options,
        [&control](const nlohmann::json& request, const Origin& origin) -> nlohmann::json {
          ControlState* c = control.load();
          if (c == nullptr) return {{"ok", false}, {"error", "sluiced is starting; try again"}};
          return c->handle(request, origin);
        },
        &error);
    if (api) {
      metrics = MetricsExporter::start(
          cfg.metrics.listen,
          [&control] {
            ControlState* c = control.load();
            return c != nullptr ? c->stats() : DataplaneStats{};
          },
          [&control] {
            ControlState* c = control.load();
            return c != nullptr ? c->figures() : ControlFigures{};
          },
          &error);
    }
  }
  if (!metrics) {
    log_event(LogLevel::error, "control plane did not start; the dataplane was not touched",
              {{"error", error}});
    return 1;
  }

  std::unique_ptr<Dataplane> dp =
      start_dataplane(dataplane_settings(cfg), compile_profile(cfg), 1, &log, &error);
  if (!log.empty()) log_event(LogLevel::info, "dataplane selection", {{"detail", log}});
  if (!dp) {
    log_event(LogLevel::error, "dataplane did not start", {{"error", error}});
    return 1;
  }
  const uint64_t generation = dp->stats().generation;
  control_owner =
      std::make_unique<ControlState>(*dp, options.config_path, loaded, generation, &audit);
  control = control_owner.get();
  log_event(LogLevel::info, "started",
            {{"mode", dp->kind()},
             {"attach", dp->stats().attach},
             {"outside", cfg.dataplane.outside},
             {"inside", cfg.dataplane.inside.empty() ? "(host mode)" : cfg.dataplane.inside},
             {"generation", std::to_string(generation)},
             {"adopted", dp->adopted_state() ? "true" : "false"},
             {"config", options.config_path}});
  log_event(LogLevel::info, "control plane ready",
            {{"socket", cfg.control.socket},
             {"http", cfg.control.http_listen.empty() ? "off" : cfg.control.http_listen},
             {"metrics", cfg.metrics.listen},
             {"audit_log", cfg.control.audit_log}});

  for (;;) {
    timespec timeout{static_cast<time_t>(options.log_interval_sec), 0};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig < 0) {
      if (errno == EAGAIN) log_counters(dp->stats());
      continue;
    }
    if (sig == SIGHUP) {
      const nlohmann::json r = control_owner->reload_file(Origin{"signal"});
      if (!r.value("ok", false)) {
        if (r.contains("errors")) {
          for (const auto& e : r["errors"])
            log_event(LogLevel::error, "config error", {{"error", e.value("text", "")}});
        }
        log_event(LogLevel::warn, "reload rejected, keeping the running config",
                  {{"generation", std::to_string(control_owner->generation())},
                   {"error", r.value("error", "")}});
      } else {
        log_event(LogLevel::info, "reloaded",
                  {{"generation", std::to_string(control_owner->generation())},
                   {"changes", std::to_string(r["diff"].size())}});
      }
      continue;
    }
    log_event(LogLevel::info, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    log_counters(dp->stats());
    metrics.reset();
    api.reset();
    control = nullptr;
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
