// SPDX-License-Identifier: Apache-2.0
#include "control/daemon.hpp"

#include <signal.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include <cerrno>
#include <ctime>
#include <string>

#include "control/adaptive/adaptive_agent.hpp"
#include "control/api/api_server.hpp"
#include "control/api/audit.hpp"
#include "control/api/control_state.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"
#include "control/config/config_notes.hpp"
#include "control/daemon_detail.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_agent.hpp"
#include "control/instance_lock.hpp"
#include "control/log.hpp"
#include "control/metrics.hpp"
#include "control/seed_store.hpp"
#include "dataplane/common/labels.hpp"

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
  DataplaneSettings s = cfg.dataplane;
  s.source_table_size = cfg.admission.source_table_size;
  s.flow_table_size = cfg.admission.flow_table_size;
  s.dpdk_flow_file = state_directory() + "/dpdk-flows";
  // Not admission.seed: a config may be shared or published; the kept one
  // is this host's (or its fleet's) secret.
  s.dpdk_rss_seed = default_seed();
  return s;
}

namespace {

std::string status_line(const std::string& kind, uint64_t generation) {
  return "STATUS=enforcing: " + kind + ", generation " + std::to_string(generation);
}

// systemctl status's line for a running sluiced: what the dataplane
// enforces, or why it enforces nothing (after sluiced --detach, say).
std::string status_line(const std::string& kind, uint64_t generation, const DataplaneStats& s) {
  if (!s.healthy) return "STATUS=not enforcing: " + s.unhealthy;
  return status_line(kind, generation);
}

// Half the watchdog interval systemd asked for (WatchdogSec=), or 0.
uint64_t watchdog_half_usec() {
  uint64_t usec = 0;
  return sd_watchdog_enabled(0, &usec) > 0 ? usec / 2 : 0;
}

// In charge: the control plane and the dataplane run the valid config until
// SIGTERM. *why is set (and kStartAgain returned) when the dataplane cannot
// start; 1 when the control plane cannot (nothing was touched).
// `fleet`: this edge is a fleet member starting with what fleet_join found
// (`loaded` is then the local tables with the fleet config).
int run_in_charge(const DaemonOptions& options, const LoadResult& loaded, const FleetStart* fleet,
                  const sigset_t& signals, const StartFailures& failures, InstanceLocks* locks,
                  std::string* why) {
  const Config& cfg = *loaded.config;
  std::string error;
  if (!locks->take(cfg.dataplane.pin_path, &error)) {
    log_event(LogLevel::error, "not starting", {{"error", error}});
    return 1;
  }

  // The control plane comes up before the dataplane is touched, so that a
  // bad socket, audit log or metrics address stops sluiced without changing
  // what is enforcing traffic. Requests that arrive before the dataplane
  // runs are answered "starting".
  AuditLog audit;
  std::atomic<ControlState*> control{nullptr};
  std::atomic<bool> fallback{false};  // mode auto: DPDK could not start, XDP runs
  std::atomic<FleetAgent*> agent{nullptr};
  std::atomic<AdaptiveAgent*> adaptive{nullptr};
  std::unique_ptr<ControlState> control_owner;
  std::unique_ptr<FleetAgent> agent_owner;        // stops before control_owner goes
  std::unique_ptr<AdaptiveAgent> adaptive_owner;  // so does this
  std::unique_ptr<ApiServer> api;
  std::unique_ptr<MetricsExporter> metrics;
  if (audit.open(cfg.control.audit_log, &error)) {
    ApiOptions api_options{cfg.control.socket, cfg.control.socket_mode, cfg.control.socket_group,
                           cfg.control.http_listen, cfg.control.http_token_file};
    api_options.stream_ops = {"capture"};
    api_options.stream = [&control](const nlohmann::json& request, const Origin& origin,
                                    const std::function<bool(const nlohmann::json&)>& emit) {
      ControlState* c = control.load();
      if (c == nullptr) {
        emit({{"ok", false}, {"starting", true}, {"error", "sluiced is starting; try again"}});
        return;
      }
      c->capture(request, origin, emit);
    };
    api = ApiServer::start(
        api_options,
        [&control](const nlohmann::json& request, const Origin& origin) -> nlohmann::json {
          ControlState* c = control.load();
          if (log_level() == LogLevel::debug)
            log_event(
                LogLevel::debug, "control request",
                {{"op", request.is_object() && request.contains("op") && request["op"].is_string()
                            ? request["op"].get<std::string>()
                            : "?"},
                 {"origin", origin.to_json().dump()}});
          if (c == nullptr)
            return {{"ok", false}, {"starting", true}, {"error", "sluiced is starting; try again"}};
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
          [&control, &failures, &fallback, &agent, &adaptive] {
            ControlState* c = control.load();
            ControlFigures f = c != nullptr ? c->figures() : ControlFigures{};
            if (c == nullptr) {  // starting: no dataplane runs yet, none decides
              f.in_charge = false;
              f.dataplane_healthy = false;
            }
            f.start_failures_config = failures.config;
            f.start_failures_dataplane = failures.dataplane;
            f.dataplane_fallback = fallback.load();
            if (FleetAgent* a = agent.load()) f.fleet = a->figures();
            if (AdaptiveAgent* a = adaptive.load()) f.adaptive = a->figures();
            return f;
          },
          &error);
    }
  }
  if (!metrics) {
    log_event(LogLevel::error, "control plane did not start; the dataplane was not touched",
              {{"error", error}});
    audit.discard_if_unused();
    return 1;
  }

  // A fleet member enforces its shares of the fleet's budgets, as the fleet
  // config's revision.
  const uint64_t first_generation =
      fleet != nullptr ? static_cast<uint64_t>(fleet->record.revision) : 1;
  const Config first_config = fleet != nullptr ? apply_shares(cfg, fleet->shares) : cfg;
  CompiledProfile first_profile = compile_profile(first_config);
  const std::optional<double> learned =
      start_at_learned_rate(cfg, fleet != nullptr ? &fleet->shares : nullptr,
                            state_directory() + "/adaptive.json", &first_profile);
  // What the edge enforced before this start (0: nothing pinned), for the
  // start's audit line.
  const uint64_t before_generation = unattended_stats(dataplane_settings(cfg)).generation;
  DataplaneSelection selection;
  std::unique_ptr<Dataplane> dp =
      start_dataplane(dataplane_settings(cfg), first_profile, first_generation, &selection, &error);
  fallback = dp && selection.dpdk_fell_back;
  if (!selection.log.empty())  // a warning when mode auto fell back from DPDK to XDP
    log_event(fallback ? LogLevel::warn : LogLevel::info, "dataplane selection",
              {{"detail", selection.log}});
  if (!dp) {
    *why = error;
    audit.discard_if_unused();
    return kStartAgain;
  }
  // A fleet member's generation is the fleet config's revision, also when
  // it adopted the state its last run left (an adopting start numbers on
  // from that: a local config's restart is a new generation).
  if (fleet != nullptr && dp->stats().generation != first_generation &&
      !dp->apply(first_profile, first_generation, &error))
    log_event(LogLevel::error, "fleet: the fleet's generation was refused",
              {{"generation", std::to_string(first_generation)}, {"error", error}});
  const uint64_t generation = dp->stats().generation;
  control_owner =
      std::make_unique<ControlState>(*dp, options.config_path, loaded, generation, &audit);
  control_owner->audit_start(before_generation, dp->adopted_state(),
                             state_directory() + "/config-in-force.toml");
  // The first profile runs the learned rate already: kept, not applied again
  // (applied here, before a fleet's shares, it ran a moment with the
  // tables' budgets instead of this edge's shares).
  if (learned) control_owner->seed_adaptive_rate(*learned);
  if (fleet != nullptr) {
    control_owner->join_fleet(cfg.fleet->prefix, cfg.fleet->node, fleet->record.config);
    if (!control_owner->set_shares(fleet->shares, &error))
      log_event(LogLevel::error, "fleet: first shares refused", {{"error", error}});
    if (!fleet->record.profile.empty()) {
      // fleet->shares are of the profile's budgets (fleet_join): not
      // scaled to them again.
      const nlohmann::json r = control_owner->apply_fleet_config(
          fleet->record.config, fleet->record.profile, first_generation, fleet->record.origin,
          fleet->record.op, false, &fleet->shares);
      if (!r.value("ok", false))
        log_event(LogLevel::error, "fleet: the fleet's profile was refused",
                  {{"profile", fleet->record.profile}, {"error", r.value("error", "")}});
    }
    agent_owner = std::make_unique<FleetAgent>(*cfg.fleet, *control_owner, *fleet);
    agent = agent_owner.get();
    log_event(LogLevel::info, "fleet: joined",
              {{"prefix", cfg.fleet->prefix},
               {"node", cfg.fleet->node},
               {"edges", std::to_string(fleet->edges)},
               {"detail", fleet->log}});
  }
  // Inline edges see the return path: the adaptive boundary's thread runs
  // (idle until boundary.adaptive is on, which a retune may turn on).
  if (!cfg.dataplane.inside.empty()) {
    adaptive_owner =
        std::make_unique<AdaptiveAgent>(*control_owner, state_directory() + "/adaptive.json");
    adaptive = adaptive_owner.get();
  }
  control = control_owner.get();
  log_event(LogLevel::info, "started",
            {{"mode", dp->kind()},
             {"attach", dp->stats().attach},
             {"outside", cfg.dataplane.outside},
             {"inside", cfg.dataplane.inside.empty() ? "(host mode)" : cfg.dataplane.inside},
             {"generation", std::to_string(generation)},
             {"adopted", dp->adopted_state() ? "true" : "false"},
             {"config", options.config_path}});
  if (const DataplaneStats st = dp->stats(); !st.kept_flows.empty())
    log_event(st.kept_flows_refused ? LogLevel::warn : LogLevel::info,
              "the flow table the last stop kept", {{"flows", st.kept_flows}});
  for (const std::string& note : config_notes(cfg))
    log_event(LogLevel::warn, "config note", {{"note", note}});
  log_event(LogLevel::info, "control plane ready",
            {{"socket", cfg.control.socket},
             {"http", cfg.control.http_listen.empty() ? "off" : cfg.control.http_listen},
             {"metrics", cfg.metrics.listen},
             {"audit_log", cfg.control.audit_log}});
  // Ready only now: the dataplane enforces the first profile and the control
  // plane answers.
  notify("READY=1\n" + status_line(dp->kind(), generation));

  // The watchdog is fed only while the dataplane says it runs and enforces
  // (the program on the link, DPDK's workers running), not merely because
  // this loop turns.
  const uint64_t watchdog_usec = watchdog_half_usec();
  bool withheld = false;  // the last turn found the dataplane unhealthy
  const auto log_every = std::chrono::seconds(options.log_interval_sec);
  auto next_log = std::chrono::steady_clock::now() + log_every;
  // STATUS= follows the generation (a change through the API) within 1 s.
  uint64_t status_generation = generation;
  auto next_watchdog = std::chrono::steady_clock::now();
  for (;;) {
    auto wait = std::chrono::duration_cast<std::chrono::microseconds>(
        next_log - std::chrono::steady_clock::now());
    if (watchdog_usec != 0)
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::microseconds>(
                                next_watchdog - std::chrono::steady_clock::now()));
    if (wait > std::chrono::seconds(1)) wait = std::chrono::seconds(1);
    if (wait < std::chrono::microseconds(0)) wait = std::chrono::microseconds(0);
    const timespec timeout{static_cast<time_t>(wait.count() / 1000000),
                           static_cast<long>(wait.count() % 1000000 * 1000)};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    // Health every turn (at most a second): STATUS= and the log follow it
    // with or without a watchdog (without one, `systemctl status` said
    // "enforcing" after a --detach until the next change).
    const DataplaneStats health = dp->stats();
    if (watchdog_usec != 0 && std::chrono::steady_clock::now() >= next_watchdog) {
      next_watchdog = std::chrono::steady_clock::now() + std::chrono::microseconds(watchdog_usec);
      if (health.healthy) notify("WATCHDOG=1");
    }
    if (withheld == health.healthy) {  // health changed: so do the log and STATUS=
      if (health.healthy)
        log_event(LogLevel::info,
                  watchdog_usec != 0 ? "dataplane healthy again; watchdog fed"
                                     : "dataplane healthy again",
                  {});
      else
        log_event(
            LogLevel::error,
            watchdog_usec != 0 ? "dataplane unhealthy; watchdog not fed" : "dataplane unhealthy",
            {{"why", health.unhealthy}});
      notify(status_line(dp->kind(), control_owner->generation(), health));
      withheld = !health.healthy;
    }
    if (std::chrono::steady_clock::now() >= next_log) {
      log_counters(dp->stats());
      next_log += log_every;
    }
    if (const uint64_t now_generation = control_owner->generation();
        now_generation != status_generation) {
      notify(status_line(dp->kind(), now_generation, health));
      status_generation = now_generation;
    }
    if (sig < 0) continue;
    if (sig == SIGUSR1) {  // logrotate moved the audit log
      std::string reopen_error;
      if (audit.reopen(&reopen_error)) {
        log_event(LogLevel::info, "audit log reopened", {{"path", cfg.control.audit_log}});
      } else {
        log_event(LogLevel::error, "audit log not reopened", {{"error", reopen_error}});
      }
      continue;
    }
    if (sig == SIGHUP) {
      notify("RELOADING=1");
      const nlohmann::json r = control_owner->reload_file(Origin{"signal"});
      if (!r.value("ok", false)) {
        // Each config error is logged by the refusal (ControlState::refuse).
        log_event(LogLevel::warn, "reload rejected, keeping the running config",
                  {{"generation", std::to_string(control_owner->generation())},
                   {"error", r.value("error", "")}});
      } else {
        log_event(LogLevel::info, "reloaded",
                  {{"generation", std::to_string(control_owner->generation())},
                   {"changes", std::to_string(r["diff"].size())}});
        // What the reload did besides its diff (e.g. dropped the profile
        // in force): an engineer watching the journal must see it.
        for (const auto& note : r.value("notes", nlohmann::json::array()))
          if (note.is_string()) log_event(LogLevel::warn, "reload note", {{"note", note}});
      }
      status_generation = control_owner->generation();
      notify("READY=1\n" + status_line(dp->kind(), status_generation, dp->stats()));
      continue;
    }
    log_event(LogLevel::info, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    const DataplaneStats last = dp->stats();
    // XDP outlives the process; DPDK stops with it (its XDP standby, if it
    // has one, decides once DPDK's heartbeat is 250 ms old).
    const bool outlives = std::string_view(dp->kind()) == "xdp";
    const std::string after = !last.healthy ? "the dataplane was not enforcing"
                              : outlives    ? "the dataplane keeps enforcing unattended"
                                            : "DPDK stops with sluiced: its XDP standby, if "
                                              "it has one, takes over; else nothing forwards";
    notify("STOPPING=1\nSTATUS=stopping; " + after);
    log_counters(last);
    metrics.reset();
    api.reset();
    control = nullptr;
    agent = nullptr;
    agent_owner.reset();
    adaptive = nullptr;
    adaptive_owner.reset();  // the dataplane keeps the last adaptive rate
    dp->stop();
    if (const Dataplane::StopNote kept = dp->stop_note(); !kept.text.empty())
      log_event(kept.failed ? LogLevel::warn : LogLevel::info, "the flow table",
                {{"flows", kept.text}});
    if (last.healthy && outlives)
      log_event(
          LogLevel::info, "stopped; " + after,
          {{"mode", dp->kind()},
           {"generation", std::to_string(last.generation)},
           {"detach", "sluiced --detach hands an inline edge to the when_stopped pass-through"}});
    else if (last.healthy)
      log_event(LogLevel::info, "stopped; " + after,
                {{"mode", dp->kind()}, {"generation", std::to_string(last.generation)}});
    else
      log_event(LogLevel::info, "stopped; " + after,
                {{"mode", dp->kind()}, {"why", last.unhealthy}});
    return 0;
  }
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
  // Block the signals we serve before anything else can start a thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Configs without admission.seed rank sources with sluiced's own seed,
  // random at the first start and kept; without it, a random one for this
  // run (ranks then change at the next start).
  const std::string seed_path = seed_file_path();
  std::string seed_error;
  if (const std::optional<uint64_t> seed = load_or_create_seed(seed_path, &seed_error)) {
    set_default_seed(*seed);
  } else {
    uint64_t fresh = 0;
    if (::getrandom(&fresh, sizeof(fresh), 0) != static_cast<ssize_t>(sizeof(fresh)))
      fresh = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    set_default_seed(fresh);
    log_event(LogLevel::warn, "sticky seed not kept: a random one for this run",
              {{"error", seed_error}});
  }

  InstanceLocks locks;
  StartFailures failures;
  unsigned retry_sec = 5;  // doubles up to a minute while not in charge
  for (;;) {
    LoadResult loaded = load_config_file(options.config_path);
    std::string why;
    bool config_error = true, unjoined = false;
    if (!loaded.ok()) {
      log_errors(loaded);
      why = loaded.errors.empty() ? "invalid" : loaded.errors.front().to_string();
      if (loaded.errors.size() > 1)
        why += " (and " + std::to_string(loaded.errors.size() - 1) + " more)";
    } else if (loaded.config->dataplane.outside.empty()) {
      why = "dataplane.outside is required to run";
    } else if (loaded.config->fleet) {
      // A fleet member: its budgets and classes are the fleet's, in etcd.
      FleetStart start;
      std::string error, key;
      if (!check_etcd_access(loaded.config->fleet->access, &key, &error)) {
        why = error_at_key(loaded.text, options.config_path, key, error).to_string();
      } else if (!fleet_join(*loaded.config->fleet, options.config_path, loaded.text, &start,
                             &error)) {
        why = "fleet: " + error;
        unjoined = true;
      } else {
        // Every edge ranks sources with the fleet's seed (a config's own
        // admission.seed still wins).
        if (start.rank_seed) set_default_seed(*start.rank_seed);
        const int rc =
            run_in_charge(options, start.loaded, &start, signals, failures, &locks, &why);
        if (rc != kStartAgain) return rc;
        config_error = false;
      }
    } else {
      const int rc = run_in_charge(options, loaded, nullptr, signals, failures, &locks, &why);
      if (rc != kStartAgain) return rc;
      config_error = false;
    }
    const int rc = wait_not_in_charge(options, why, config_error, unjoined, signals, retry_sec,
                                      &failures, &locks);
    if (rc != kStartAgain) return rc;
    retry_sec = std::min(retry_sec * 2, 60U);
  }
}

}  // namespace sluice
