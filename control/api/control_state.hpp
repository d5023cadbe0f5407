// SPDX-License-Identifier: Apache-2.0
// The control plane's state and the operations of the control API (see
// docs/control-api.md): the base config, the active profile, the generations
// kept for rollback, and every change, validated in full and applied
// all-or-nothing to the dataplane, then audited. Thread-safe: API
// connections, signals and the metrics exporter call in concurrently; one
// mutex serialises changes (never touched by the fast path).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/api/audit.hpp"
#include "control/config/config.hpp"
#include "control/config/config_diff.hpp"
#include "control/config/config_loader.hpp"
#include "control/fleet/shares.hpp"
#include "control/metrics.hpp"
#include "dataplane/dataplane.hpp"

namespace sluice {

// Who asked for a change, for the audit log.
struct Origin {
  std::string transport;  // "unix", "http", "signal", "startup"
  int uid = -1;
  int pid = -1;
  std::string token_id;  // http: a non-reversible id of the token used
  nlohmann::json to_json() const;
};

class ControlState {
 public:
  // `initial` is the validated startup config (text included); the dataplane
  // is already running it as generation `generation`.
  ControlState(Dataplane& dataplane, std::string config_path, const LoadResult& initial,
               uint64_t generation, AuditLog* audit);

  // One API request -> one response object (never throws).
  nlohmann::json handle(const nlohmann::json& request, const Origin& origin);

  // The audit line of sluiced's start (op "start", origin startup): the
  // generation the edge enforced before it (`old_generation`, 0: none) and
  // the one it runs now, whether it adopted the state it found, and the diff
  // from the config the last run had in force at its end, kept at
  // `kept_path` (then this run's; every applied change keeps its config
  // there too). A restart is a change like any other.
  void audit_start(uint64_t old_generation, bool adopted, const std::string& kept_path);

  // SIGHUP: re-read the config file as the new base (a fleet member: its
  // local tables only, with the fleet config it runs).
  nlohmann::json reload_file(const Origin& origin);

  // --- fleet membership (control/fleet/fleet_agent.hpp drives these) ---
  // From now on this edge is `node`, a member of the fleet under `prefix`:
  // its fleet tables come from `fleet_text` (already part of the initial
  // config), and the local ops that would change them are refused.
  void join_fleet(const std::string& prefix, const std::string& node,
                  const std::string& fleet_text);
  // A new fleet config (the TOML of the fleet tables, as etcd holds it at
  // `revision`), validated with this edge's local tables and applied as
  // generation `revision`, audited with who changed it in the fleet.
  // `retry`: this edge refused the revision before; a refusal again is not
  // logged or counted again (the agent says once per revision and reason).
  // `shares`: this edge's shares to run with it, of its budgets already (a
  // start's, fleet_join); null: the shares in force, scaled to its budgets.
  nlohmann::json apply_fleet_config(const std::string& fleet_text, const std::string& profile,
                                    uint64_t revision, const nlohmann::json& fleet_origin,
                                    const std::string& fleet_op, bool retry = false,
                                    const EdgeShares* shares = nullptr);
  // This edge's shares of the fleet budgets: the running config again with
  // its budgets replaced by them. Not a config change (same generation, no
  // history, no audit line). False + *error when the dataplane refused.
  bool set_shares(const EdgeShares& shares, std::string* error);
  // What `status` reports under "fleet" (the agent's own view).
  void set_fleet_status(std::function<nlohmann::json()> status);

  // --- adaptive boundary (control/adaptive/adaptive_agent.hpp drives these) ---
  // What the controller works between: whether boundary.adaptive is on, the
  // ceiling (boundary.lookups_per_sec, or this edge's fleet share of it) and
  // the floor (scaled like the ceiling).
  struct AdaptiveBounds {
    bool on = false;
    double ceiling = 0;
    double floor = 0;
  };
  AdaptiveBounds adaptive_bounds() const;
  // The same of a config (and this edge's fleet shares, if a member)
  // before any ControlState runs it: sluiced's first profile.
  static AdaptiveBounds adaptive_bounds_of(const Config& cfg, const EdgeShares* shares);
  // The learned boundary lookup rate (nullopt: the ceiling). Reaches the
  // dataplane through the same swap as a retune, but is not a config change:
  // same generation, no history, no audit line. False + *error when the
  // dataplane refused (the rate before stays).
  bool set_adaptive_rate(std::optional<double> rate, std::string* error);
  // The learned rate the dataplane's first profile already runs (sluiced's
  // start, start_at_learned_rate): kept, not applied again; what applies
  // next (a fleet's first shares) runs it too. Ignored with adaptive off.
  void seed_adaptive_rate(double rate);
  std::optional<double> adaptive_rate() const;
  // A fleet member's fair part of the sum of the edges' learned rates (the
  // fleet agent's re-split by demand); taken once by the adaptive agent.
  void set_adaptive_fair(double rate);
  std::optional<double> take_adaptive_fair();
  // What `status` reports under "adaptive" (the agent's own view).
  void set_adaptive_status(std::function<nlohmann::json()> status);
  // The config in force, budgets fleet-wide (shares not applied).
  Config config() const;

  ControlFigures figures() const;
  DataplaneStats stats() const;
  uint64_t generation() const;

  // op "capture" (a stream, the Unix socket only): samples decided frames
  // ({class, verdict, reason, count, seconds, sample, snaplen}) and emits one
  // line per frame ({frame (hex), unix_ns, wire_len, class, verdict,
  // reason}), then {ok, done, captured, lost, ended}. A refused request is
  // one {ok: false, error} line. Holds no lock while frames flow.
  void capture(const nlohmann::json& request, const Origin& origin,
               const std::function<bool(const nlohmann::json&)>& emit);

 private:
  nlohmann::json handle_locked(const nlohmann::json& request, const Origin& origin);
  nlohmann::json log_level_op(const nlohmann::json& request, const Origin& origin);
  struct Generation {
    uint64_t number = 0;
    std::string base_text;
    std::string base_source;  // whose text base_text is (base_source_)
    std::string profile;      // "" = none
    std::string time;
    nlohmann::json origin;
    std::string op;
  };

  // Writes the config in force to kept_path_ (caller holds mutex_).
  void keep_config();
  // Validates {base, profile}; on success fills *effective.
  bool evaluate(const std::string& base, const std::string& source, const std::string& profile,
                LoadResult* effective, nlohmann::json* refusal) const;
  // The name errors in `base` give as their file: the written file's when
  // base is its text, base_source_ when base is the running base, else
  // kRunningSource (a text toml++ wrote: its lines are no file's).
  std::string source_of(const std::string& base, const WrittenConfig& written) const;
  // The common path of every change. Caller holds mutex_.
  // `generation`: the one the change gets (a fleet's revision); 0 = the next.
  nlohmann::json change(const std::string& op, const std::string& base,
                        const WrittenConfig& written, const std::string& profile, bool dry_run,
                        const Origin& origin, std::vector<std::string> notes = {},
                        uint64_t generation = 0, const nlohmann::json& fleet = nullptr);
  // The profile the dataplane runs for a config: its budgets replaced by
  // this edge's fleet shares, when it has them, and the boundary lookup rate
  // by the adaptive rate, when it learned one.
  CompiledProfile compile(const Config& cfg) const;
  // The profile set_adaptive_rate patches: the running config's, compiled
  // once per change of the config or of the fleet shares. Caller holds mutex_.
  const CompiledProfile& adaptive_base();
  // boundary.adaptive in the running config (mutex_ held).
  bool adaptive_on_locked() const {
    return effective_.config && effective_.config->boundary.adaptive;
  }
  // A change that turns boundary.adaptive off without naming a new ceiling
  // freezes what the controller found: the base with lookups_per_sec set to
  // the learned rate. Empty when there is nothing to freeze.
  std::string freeze_adaptive(const Config& next, const std::string& base,
                              std::vector<std::string>* notes, uint64_t* learned) const;
  nlohmann::json status() const;
  nlohmann::json refuse(const std::string& error, nlohmann::json errors = nullptr);

  Dataplane& dataplane_;
  const std::string config_path_;  // read without mutex_ (reload_file)
  AuditLog* audit_;
  std::string kept_path_;  // the config in force, for the next start's diff ("": not kept)
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  const uint32_t history_limit_;

  mutable std::mutex mutex_;
  std::string base_text_;
  // Whose text base_text_ is: the config file, an applied file, or
  // kRunningSource once a set or shadow (toml++'s rewrite of the text) or a
  // frozen adaptive rate changed it. Errors in it name this file, so that
  // their lines are that text's (`sluicectl get --base` prints it).
  std::string base_source_;
  std::string profile_;
  LoadResult effective_;
  uint64_t generation_;
  std::deque<Generation> history_;
  uint64_t applied_ = 0;
  uint64_t rejected_ = 0;
  bool quiet_refusals_ = false;  // a fleet revision tried again: refuse() neither logs nor counts
  uint64_t reloads_applied_ = 0;
  uint64_t reloads_rejected_ = 0;
  double last_change_unix_ = 0;
  uint64_t audit_failures_ = 0;

  std::string fleet_prefix_;  // "" = not in a fleet
  std::string fleet_node_;
  std::string fleet_text_;  // the fleet tables in force
  std::optional<EdgeShares> shares_;
  std::function<nlohmann::json()> fleet_status_;
  std::optional<double> adaptive_rate_;
  uint64_t effective_epoch_ = 0;  // counts the changes of effective_
  struct AdaptiveBase {
    uint64_t epoch = 0;  // of effective_
    std::optional<EdgeShares> shares;
    BoundaryConfig boundary;  // the running config's, before any adaptive rate
    CompiledProfile profile;
  };
  std::optional<AdaptiveBase> adaptive_base_;
  std::optional<double> adaptive_fair_;
  std::function<nlohmann::json()> adaptive_status_;
};

}  // namespace sluice
