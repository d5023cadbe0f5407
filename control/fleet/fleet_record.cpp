// SPDX-License-Identifier: Apache-2.0
#include "control/fleet/fleet_record.hpp"
#include "control/api/json_parse.hpp"

#include <cstdio>
#include <vector>

#include "control/api/audit.hpp"  // utc_timestamp
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_policy.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;

// History keys sort by revision: zero-padded.
std::string history_key(const FleetConfig& f, int64_t revision) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020lld", static_cast<long long>(revision));
  return fleet_history_prefix(f) + digits;
}

}  // namespace

std::string fleet_config_key(const FleetConfig& f) { return f.prefix + "/config"; }
std::string fleet_edges_prefix(const FleetConfig& f) { return f.prefix + "/edges/"; }
std::string fleet_history_prefix(const FleetConfig& f) { return f.prefix + "/history/"; }
std::string fleet_held_prefix(const FleetConfig& f) { return f.prefix + "/held/"; }
std::string fleet_seed_key(const FleetConfig& f) { return f.prefix + "/rank_seed"; }

std::string fleet_record_json(const FleetRecord& r) {
  return json{{"config", r.config},
              {"profile", r.profile},
              {"origin", r.origin.is_null() ? json::object() : r.origin},
              {"op", r.op},
              {"time", r.time}}
      .dump();
}

std::optional<FleetRecord> parse_fleet_record(const std::string& text, std::string* error) {
  const json j = parse_json(text);
  if (!j.is_object() || !j.contains("config") || !j["config"].is_string()) {
    *error = "the fleet config record is not {\"config\": TOML text, ...}";
    return std::nullopt;
  }
  FleetRecord r;
  r.config = j["config"];
  if (j.contains("profile") && !j["profile"].is_null()) {
    if (!j["profile"].is_string()) {  // taken for "no profile" before
      *error = "the fleet config record's \"profile\" is not a name (a string) or null";
      return std::nullopt;
    }
    r.profile = j["profile"];
  }
  if (j.contains("origin")) r.origin = j["origin"];
  if (j.contains("op") && j["op"].is_string()) r.op = j["op"];
  if (j.contains("time") && j["time"].is_string()) r.time = j["time"];
  return r;
}

bool read_fleet_record(EtcdClient& etcd, const FleetConfig& f, FleetRecord* out, bool* exists,
                       std::string* error) {
  std::vector<EtcdKv> kvs;
  if (!etcd.range(fleet_config_key(f), false, &kvs, nullptr, error)) return false;
  *exists = !kvs.empty();
  if (kvs.empty()) return true;
  std::optional<FleetRecord> r = parse_fleet_record(kvs[0].value, error);
  if (!r) return false;
  *out = *r;
  out->revision = kvs[0].mod_revision;
  return true;
}

bool read_fleet_history(EtcdClient& etcd, const FleetConfig& f, std::vector<FleetRecord>* out,
                        std::string* error) {
  std::vector<EtcdKv> kvs;
  if (!etcd.range(fleet_history_prefix(f), true, &kvs, nullptr, error)) return false;
  out->clear();
  for (const EtcdKv& kv : kvs) {  // etcd returns keys in order: oldest first
    std::string ignored;
    std::optional<FleetRecord> r = parse_fleet_record(kv.value, &ignored);
    if (!r) continue;
    try {
      r->revision = std::stoll(kv.key.substr(fleet_history_prefix(f).size()));
    } catch (...) {
      continue;
    }
    out->push_back(*r);
  }
  return true;
}

bool write_fleet_record(EtcdClient& etcd, const FleetConfig& f, FleetRecord record,
                        int64_t expected, bool* swapped, int64_t* revision, std::string* note) {
  record.time = utc_timestamp();
  const std::string text = fleet_record_json(record);
  std::string error;
  bool answered = etcd.put_if(fleet_config_key(f), text, expected, swapped, revision, &error);
  if (!answered || !*swapped) {
    // A write that timed out at one etcd member may have committed there
    // before the client tried the next, whose compare then failed (etcd
    // says so of its timeouts): it is ours when the key holds exactly what
    // was sent (its time and origin are this write's). Else the operator
    // was told "refused" while every edge applied the change, and the
    // change was kept out of the history.
    std::vector<EtcdKv> kvs;
    std::string ignored;
    if (etcd.range(fleet_config_key(f), false, &kvs, nullptr, &ignored) && !kvs.empty() &&
        kvs[0].value == text) {
      answered = *swapped = true;
      *revision = kvs[0].mod_revision;
    }
  }
  if (!answered) {
    *note = error;
    return false;
  }
  note->clear();
  if (!*swapped) return true;
  if (!etcd.put(history_key(f, *revision), fleet_record_json(record), 0, nullptr, &error)) {
    *note = "generation " + std::to_string(*revision) +
            " applies, but is not kept for rollback: " + error;
    return true;
  }
  std::vector<EtcdKv> kept;
  if (etcd.range(fleet_history_prefix(f), true, &kept, nullptr, &error)) {
    for (std::size_t i = 0; i + kFleetHistory < kept.size(); i++)
      etcd.remove(kept[i].key, false, &error);
  }
  return true;
}

}  // namespace sluice
