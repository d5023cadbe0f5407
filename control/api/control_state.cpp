// SPDX-License-Identifier: Apache-2.0
#include "control/api/control_state.hpp"

#include "control/config/schema.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "control/adaptive/adaptive_rate.hpp"
#include "control/api/change_json.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_notes.hpp"
#include "control/log.hpp"
#include "control/seed_store.hpp"
#include "dataplane/common/labels.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Keys a profile sets, as "class.NAME.KEY" / "section.key".
std::set<std::string> profile_keys(const Config& cfg, const std::string& profile) {
  std::set<std::string> keys;
  auto it = cfg.profiles.find(profile);
  if (it == cfg.profiles.end()) return keys;
  for (const auto& [k, v] : it->second.settings) keys.insert(k);
  return keys;
}

}  // namespace

json Origin::to_json() const {
  json o = {{"transport", transport}};
  if (uid >= 0) o["uid"] = uid;
  if (pid >= 0) o["pid"] = pid;
  if (!token_id.empty()) o["token_id"] = token_id;
  return o;
}

ControlState::ControlState(Dataplane& dataplane, std::string config_path, const LoadResult& initial,
                           uint64_t generation, AuditLog* audit)
    : dataplane_(dataplane),
      config_path_(std::move(config_path)),
      audit_(audit),
      history_limit_(initial.config ? initial.config->control.history : 32),
      base_text_(initial.text),
      base_source_(config_path_),
      effective_(initial),
      generation_(generation) {
  history_.push_back({generation, base_text_, base_source_, "", utc_timestamp(),
                      Origin{"startup"}.to_json(), "start"});
  last_change_unix_ = unix_now();
}

void ControlState::audit_start(uint64_t old_generation, bool adopted,
                               const std::string& kept_path) {
  std::lock_guard<std::mutex> lock(mutex_);
  kept_path_ = kept_path;
  std::string before;
  bool known = false;
  if (std::ifstream in(kept_path); in) {
    std::stringstream text;
    text << in.rdbuf();
    before = text.str();
    known = true;
  }
  json line = {{"time", utc_timestamp()},
               {"origin", Origin{"startup"}.to_json()},
               {"op", "start"},
               {"old_generation", old_generation},
               {"new_generation", generation_},
               {"adopted", adopted},
               {"source", config_path_}};
  // Without the last run's config (a first start, another state
  // directory), what it changed is not known: null, not an empty diff.
  line["diff"] = known ? diff_json(config_diff(before, effective_.text)) : json(nullptr);
  if (audit_ != nullptr && !audit_->append(line)) audit_failures_++;
  keep_config();
}

void ControlState::keep_config() {
  if (kept_path_.empty()) return;
  std::string error;
  if (!keep_file(kept_path_, effective_.text, &error))
    log_event(LogLevel::warn, "the config in force was not kept for the next start's audit line",
              {{"error", error}});
}

uint64_t ControlState::generation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return generation_;
}

json ControlState::refuse(const std::string& error, json errors) {
  if (quiet_refusals_) {
    json r = {{"ok", false}, {"error", error}};
    if (!errors.is_null()) r["errors"] = std::move(errors);
    return r;
  }
  rejected_++;
  // In the log too (SluiceConfigRejected's runbook line): each config error
  // as at a start or reload, or why the request was refused.
  bool logged = false;
  if (errors.is_array()) {
    for (const json& e : errors) {
      if (!e.is_object() || !e.contains("text") || !e["text"].is_string()) continue;
      log_event(LogLevel::error, "config error", {{"error", e["text"].get<std::string>()}});
      logged = true;
    }
  }
  if (!logged) log_event(LogLevel::warn, "change refused", {{"error", error}});
  json r = {{"ok", false}, {"error", error}};
  if (!errors.is_null()) r["errors"] = std::move(errors);
  return r;
}

std::string ControlState::source_of(const std::string& base, const WrittenConfig& written) const {
  if (base == base_text_) return base_source_;
  if (!written.text.empty() && base == written.text) return written.name;
  return std::string(kRunningSource);
}

bool ControlState::evaluate(const std::string& base, const std::string& source,
                            const std::string& profile, LoadResult* effective,
                            json* refusal) const {
  *effective =
      profile.empty() ? load_config_string(base, source) : apply_profile(base, source, profile);
  if (effective->ok()) return true;
  const std::string first =
      effective->errors.empty() ? "invalid" : effective->errors[0].to_string();
  *refusal = {{"error", "rejected: " + first}, {"errors", errors_json(effective->errors)}};
  return false;
}

json ControlState::change(const std::string& op, const std::string& requested,
                          const WrittenConfig& written, const std::string& profile, bool dry_run,
                          const Origin& origin, std::vector<std::string> notes, uint64_t generation,
                          const json& fleet) {
  LoadResult next;
  json refusal;
  std::string base = requested;
  if (!evaluate(base, source_of(base, written), profile, &next, &refusal)) {
    return refuse(refusal["error"], refusal["errors"]);
  }
  // Turning the adaptive boundary off keeps the rate it found (a fleet
  // change comes frozen already, with every edge's rates: fleet_policy.cpp).
  uint64_t learned = 0;
  if (std::string frozen =
          fleet.is_null() ? freeze_adaptive(*next.config, base, &notes, &learned) : std::string();
      !frozen.empty()) {
    base = std::move(frozen);
    if (!evaluate(base, source_of(base, written), profile, &next, &refusal))
      return refuse(refusal["error"], refusal["errors"]);
    const uint64_t runs = next.config->boundary.lookups_per_sec.value_or(0);
    if (runs > learned) return refuse(frozen_under_profile_error(profile, runs, learned));
  }
  std::vector<DiffEntry> diff = config_diff(effective_.text, next.text);
  if (const std::vector<ConfigError> restart_only = restart_only_errors(
          effective_.config ? without_restart_spellings(diff, *effective_.config, *next.config)
                            : diff,
          written, "restart sluiced to apply it");
      !restart_only.empty()) {
    return refuse("rejected: " + restart_only[0].to_string(), errors_json(restart_only));
  }
  // What the change newly gives a note (as sluiced --check-config says): a
  // class it leaves unreachable, valid but most likely put after one that
  // takes its packets.
  const std::vector<std::string> notes_before =
      effective_.config ? config_notes(*effective_.config) : std::vector<std::string>{};
  for (const std::string& n : config_notes(*next.config))
    if (std::find(notes_before.begin(), notes_before.end(), n) == notes_before.end())
      notes.push_back(n);
  json ok = {{"ok", true}, {"diff", diff_json(diff)}};
  // The base's own diff, in every audit line (docs/control-api.md): the
  // same as `diff` without a profile. A change the effective config does
  // not show (a key the active profile overrides) still changes the base:
  // it gets a generation and an audit line too, so that nothing changes
  // unrecorded.
  std::vector<DiffEntry> base_diff = config_diff(base_text_, base);
  auto profile_value = [](const std::string& name) {  // none: null, as the line's "profile"
    return name.empty() ? std::nullopt : std::optional<std::string>(name);
  };
  if (profile != profile_)
    base_diff.push_back({"profile", profile_value(profile_), profile_value(profile)});
  // The same settings written otherwise (a default written out, a key left
  // to its default) are no change, as the same text is: no generation.
  if (!diff.empty() || !base_diff.empty()) {
    bool same =
        profile == profile_ && effective_.config && same_settings(*effective_.config, *next.config);
    if (same && !profile.empty()) {  // and the base under the profile
      const LoadResult was = load_config_string(base_text_, base_source_);
      const LoadResult now = load_config_string(base, base_source_);
      same = was.ok() && now.ok() && same_settings(*was.config, *now.config);
    }
    if (same) {
      diff.clear();
      base_diff.clear();
      ok["diff"] = json::array();
    }
  }
  if (dry_run || (diff.empty() && base_diff.empty())) {
    ok["notes"] = notes;
    ok["generation"] = generation_;
    ok["dry_run"] = dry_run;
    // What the change would do to the base, as its real request says it
    // (a key the active profile sets: a new generation, nothing in effect).
    if (dry_run && !base_diff.empty()) ok["base_diff"] = diff_json(base_diff);
    if (!dry_run) {  // same settings, other text (comments, order): keep the new text
      base_source_ = source_of(base, written);
      base_text_ = base;
      profile_ = profile;
      // A fleet revision with the same settings: this edge runs it now.
      std::string error;
      if (generation != 0 && generation != generation_ &&
          dataplane_.apply(compile(*effective_.config), generation, &error))
        generation_ = generation;
      ok["generation"] = generation_;
    }
    return ok;
  }
  const uint64_t next_generation = generation != 0 ? generation : generation_ + 1;
  std::string error;
  // A change that would reach nothing is no change (after `sluiced
  // --detach`, say, the links hold the pass-through): said, not applied.
  // One the active profile hides too: it reaches the dataplane as the same
  // settings under its generation, so that the edge's record names the
  // generation in force and the next start numbers on from it (before, it
  // numbered on from the one before, and the audit log had two lines with
  // one new generation for two configs).
  if (const DataplaneStats health = dataplane_.stats(); !health.healthy)
    return refuse("the dataplane is not enforcing (" + health.unhealthy +
                  "): the change would reach no packet, so nothing changed; restart sluiced "
                  "to take the edge back");
  if (!dataplane_.apply(compile(*next.config), next_generation, &error)) {
    return refuse("the dataplane refused the change: " + error);
  }
  const uint64_t old_generation = generation_;
  generation_ = next_generation;
  base_source_ = source_of(base, written);
  base_text_ = base;
  profile_ = profile;
  effective_ = std::move(next);
  effective_epoch_++;
  if (!effective_.config->boundary.adaptive) adaptive_rate_.reset();
  history_.push_back(
      {generation_, base_text_, base_source_, profile_, utc_timestamp(), origin.to_json(), op});
  while (history_.size() > history_limit_) history_.pop_front();
  applied_++;
  last_change_unix_ = unix_now();
  json line = {{"time", utc_timestamp()},
               {"origin", origin.to_json()},
               {"op", op},
               {"old_generation", old_generation},
               {"new_generation", generation_},
               {"profile", profile_.empty() ? json(nullptr) : json(profile_)},
               {"diff", diff_json(diff)},
               {"base_diff", diff_json(base_diff)}};
  if (!written.text.empty()) line["source"] = written.name;  // the file applied or reloaded
  if (!fleet.is_null()) line["fleet"] = fleet;
  if (!notes.empty()) line["notes"] = notes;  // e.g. the rate a freeze of adaptive kept
  if (audit_ != nullptr && !audit_->append(line)) {
    // Applied, but unrecorded: say so loudly rather than fail a change that
    // is already live.
    notes.push_back("WARNING: the audit log could not be written (disk full?)");
    audit_failures_++;
  }
  keep_config();
  ok["generation"] = generation_;
  ok["notes"] = notes;
  if (!base_diff.empty()) ok["base_diff"] = diff_json(base_diff);
  return ok;
}

// sluice_config_changes_total{result="rejected"} (and SluiceConfigRejected)
// counts the change requests refused, and requests too malformed to say
// what they are: not a dry run's answer, nor a refused status, get,
// history or log_level (which change no config).
json ControlState::handle(const json& request, const Origin& origin) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t rejected = rejected_;
  json response = handle_locked(request, origin);
  if (request.is_object()) {
    const json* op = request.contains("op") ? &request["op"] : nullptr;
    const json* dry = request.contains("dry_run") ? &request["dry_run"] : nullptr;
    const bool reads = op != nullptr && op->is_string() &&
                       (*op == "status" || *op == "get" || *op == "history" || *op == "log_level" ||
                        *op == "capture");
    if (reads || (dry != nullptr && dry->is_boolean() && dry->get<bool>())) rejected_ = rejected;
  }
  return response;
}

json ControlState::handle_locked(const json& request, const Origin& origin) {
  try {
    if (!request.is_object() || !request.contains("op") || !request["op"].is_string())
      return refuse("a request is a JSON object with an \"op\" string");
    const std::string op = request["op"];
    if (const std::string why = unknown_field(request); !why.empty()) return refuse(why);
    // Checked before reading it: json::value() throws on a non-bool, which
    // would refuse the request without naming dry_run.
    if (request.contains("dry_run") && !request["dry_run"].is_boolean())
      return refuse("dry_run: expected true or false");
    const bool dry_run = request.value("dry_run", false);

    if (op == "status") return status();
    if (!fleet_prefix_.empty() &&
        (op == "set" || op == "apply" || op == "profile" || op == "shadow" || op == "rollback"))
      return refuse("refused: this edge is a member of the fleet " + fleet_prefix_ +
                    "; its [boundary], [[class]], [admission] and [profiles] are the fleet's, "
                    "in etcd: change them for every edge with `sluicectl --fleet " +
                    op + "` (a local change would differ from the other edges)");
    if (op == "get") {
      return {{"ok", true},
              {"generation", generation_},
              {"profile", profile_.empty() ? json(nullptr) : json(profile_)},
              {"config", effective_.text},
              {"base", base_text_},
              {"base_source", base_source_}};
    }
    if (op == "history") {
      json list = json::array();
      for (const Generation& g : history_) {
        list.push_back({{"generation", g.number},
                        {"time", g.time},
                        {"origin", g.origin},
                        {"op", g.op},
                        {"profile", g.profile.empty() ? json(nullptr) : json(g.profile)}});
      }
      return {{"ok", true}, {"generation", generation_}, {"generations", list}};
    }
    if (op == "set") {
      const json& s = request.value("settings", json());
      std::vector<std::pair<std::string, std::string>> settings;
      bool well_formed = s.is_array() && !s.empty();
      if (well_formed) {
        for (const json& kv : s) {
          if (!kv.is_array() || kv.size() != 2 || !kv[0].is_string() || !kv[1].is_string()) {
            well_formed = false;
            break;
          }
          settings.emplace_back(kv[0], kv[1]);
        }
      }
      if (!well_formed)
        return refuse("settings: expected a non-empty list of [key, value] string pairs");
      LoadResult r = apply_overrides(base_text_, base_source_, settings);
      if (!r.ok()) {
        return refuse(
            "rejected: " + (r.errors.empty() ? std::string("invalid") : r.errors[0].to_string()),
            errors_json(r.errors));
      }
      std::vector<std::string> notes;
      if (!profile_.empty() && effective_.config) {
        const std::set<std::string> overlaid = profile_keys(*effective_.config, profile_);
        for (const auto& [k, v] : settings) {
          if (overlaid.count(k) != 0)
            notes.push_back(k + " is also set by the active profile " + profile_ +
                            ", whose value stays in effect");
        }
      }
      WrittenConfig written{"<override>", ""};
      for (const auto& [k, v] : settings) written.override_keys.push_back(k);
      return change("set", r.text, written, profile_, dry_run, origin, notes);
    }
    if (op == "apply") {
      if (!request.contains("config") || !request["config"].is_string())
        return refuse("config: expected the TOML text of a whole config file");
      const std::string text = request["config"];
      std::string source = "<apply>";
      if (std::string why; !apply_source(request, &source, &why)) return refuse(why);
      LoadResult r = load_config_string(text, source);
      if (!r.ok()) {
        return refuse(
            "rejected: " + (r.errors.empty() ? std::string("invalid") : r.errors[0].to_string()),
            errors_json(r.errors));
      }
      std::vector<std::string> notes;
      std::string profile = profile_;
      if (!profile.empty() && r.config->profiles.count(profile) == 0) {
        notes.push_back("the new config does not define profile " + profile + "; it is dropped");
        profile.clear();
      }
      return change("apply", text, {source, text}, profile, dry_run, origin, notes);
    }
    if (op == "profile") {
      if (!request.contains("name") || !request["name"].is_string() ||
          request["name"].get_ref<const std::string&>().empty())
        return refuse("name: expected a profile name, or \"none\" for the base config");
      const std::string name = request["name"];
      return change("profile", base_text_, {"profile " + name, ""}, name == "none" ? "" : name,
                    dry_run, origin);
    }
    if (op == "shadow") {
      if (!request.contains("on") || !request["on"].is_boolean())
        return refuse("on: expected true or false");
      LoadResult r =
          apply_overrides(base_text_, base_source_,
                          {{"admission.shadow", request["on"].get<bool>() ? "true" : "false"}});
      if (!r.ok()) return refuse("rejected", errors_json(r.errors));
      return change("shadow", r.text, {"<override>", ""}, profile_, dry_run, origin);
    }
    if (op == "rollback") {
      uint64_t target = 0;
      if (request.contains("generation")) {
        // Any non-negative integer: JSON built in C++ from an int is
        // number_integer, not number_unsigned, and is just as valid a number.
        const json& g = request["generation"];
        if (!g.is_number_integer() || (!g.is_number_unsigned() && g.get<int64_t>() < 0))
          return refuse("generation: expected a generation number");
        target = g.get<uint64_t>();
      } else if (history_.size() >= 2) {
        target = history_[history_.size() - 2].number;
      } else {
        return refuse("no earlier generation to roll back to");
      }
      for (const Generation& g : history_) {
        if (g.number == target)
          return change("rollback", g.base_text, {g.base_source, g.base_text}, g.profile, dry_run,
                        origin);
      }
      std::string kept;
      for (const Generation& g : history_)
        kept += (kept.empty() ? "" : ", ") + std::to_string(g.number);
      return refuse("generation " + std::to_string(target) + " is not kept; kept: " + kept);
    }
    if (op == "log_level") return log_level_op(request, origin);
    if (op == "capture")
      return refuse("capture streams frames: ask on the control socket (sluicectl capture)");
    return refuse("unknown op \"" + op +
                  "\"; ops are status, get, history, set, apply, profile, shadow, rollback, "
                  "log_level, capture");
  } catch (const std::exception& e) {
    return refuse(std::string("bad request: ") + e.what());
  }
}

// The runtime log level: reported without "level", set with it. Not a config
// change (no generation, no audit line): sluiced logs who changed it, at info,
// while either the old or the new level shows info.
json ControlState::log_level_op(const json& request, const Origin& origin) {
  const LogLevel before = log_level();
  if (!request.contains("level")) return {{"ok", true}, {"level", log_level_name(before)}};
  const json& l = request["level"];
  const std::optional<LogLevel> level =
      l.is_string() ? parse_log_level(l.get<std::string>()) : std::nullopt;
  if (!level)
    return refuse("level: " + l.dump() + " is not one of \"debug\", \"info\", \"warn\", \"error\"");
  auto note = [&] {
    log_event(LogLevel::info, "log level changed",
              {{"from", log_level_name(before)},
               {"to", log_level_name(*level)},
               {"origin", origin.to_json().dump()}});
  };
  if (*level > LogLevel::info) note();
  set_log_level(*level);
  if (*level <= LogLevel::info) note();
  return {{"ok", true}, {"level", log_level_name(*level)}, {"previous", log_level_name(before)}};
}

json ControlState::reload_file(const Origin& origin) {
  // Read and checked before the lock: a config file replaced by a pipe
  // nobody writes waits out its 5 s there, and status (and every other
  // request) waited with it.
  LoadResult r = load_config_file(config_path_);
  std::lock_guard<std::mutex> lock(mutex_);
  const WrittenConfig written{config_path_, r.text};
  if (r.ok() && !fleet_prefix_.empty())  // the local tables only
    r = compose_fleet_config(local_tables_text(r.text), config_path_, fleet_text_,
                             "etcd:" + fleet_prefix_ + "/config");
  if (!r.ok()) {
    reloads_rejected_++;
    return refuse(
        "reload rejected: " + (r.errors.empty() ? std::string("invalid") : r.errors[0].to_string()),
        errors_json(r.errors));
  }
  std::vector<std::string> notes;
  std::string profile = profile_;
  if (!profile.empty() && r.config->profiles.count(profile) == 0) {
    notes.push_back("the file no longer defines profile " + profile +
                    ": it is dropped, and the base config's values apply");
    profile.clear();
  }
  json result = change("reload", r.text, written, profile, false, origin, notes);
  if (result["ok"]) {
    reloads_applied_++;
  } else {
    reloads_rejected_++;
  }
  return result;
}

}  // namespace sluice
