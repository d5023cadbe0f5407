// SPDX-License-Identifier: Apache-2.0
// The fleet's keys in etcd and the config record (docs/fleet.md, "Keys"):
//   PREFIX/config        the fleet config record; its mod_revision is the
//                        generation every edge runs
//   PREFIX/history/REV   the record of each kept generation, for rollback
//                        (etcd's own history is compacted)
//   PREFIX/edges/NODE    each edge's demand and shares, under its lease
//   PREFIX/held/NODE     the shares an edge enforces, under a lease that
//                        outlives its record's by static_sec: what a gone
//                        edge's pinned program may still admit, counted by
//                        every edge (one that joins later too) until it ends
//   PREFIX/rank_seed     the salt of sticky ranks every edge uses when the
//                        fleet config sets no admission.seed (a source ECMP
//                        spreads over edges ranks alike on each)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/config.hpp"

namespace sluice {

class EtcdClient;

struct FleetRecord {
  std::string config;     // TOML of the fleet tables
  std::string profile;    // active profile ("" = none)
  nlohmann::json origin;  // who changed it ({"node"} for a seed; uid, pid, host for sluicectl)
  std::string op;         // "seed", "set", "apply", "profile", "shadow", "rollback"
  std::string time;       // UTC, when it was written
  int64_t revision = 0;   // the key's mod_revision (not part of the JSON)
};

std::string fleet_config_key(const FleetConfig& f);
std::string fleet_edges_prefix(const FleetConfig& f);
std::string fleet_history_prefix(const FleetConfig& f);
std::string fleet_held_prefix(const FleetConfig& f);
std::string fleet_seed_key(const FleetConfig& f);

std::string fleet_record_json(const FleetRecord& r);
// nullopt + *error when `text` is not a record.
std::optional<FleetRecord> parse_fleet_record(const std::string& text, std::string* error);

// PREFIX/config: false + *error when etcd did not answer or the record is
// not one; *exists false when there is none yet.
bool read_fleet_record(EtcdClient& etcd, const FleetConfig& f, FleetRecord* out, bool* exists,
                       std::string* error);
// The kept generations, oldest first.
bool read_fleet_history(EtcdClient& etcd, const FleetConfig& f, std::vector<FleetRecord>* out,
                        std::string* error);
// Writes PREFIX/config while its mod_revision is `expected` (0: while there
// is none), then keeps it in the history (the oldest beyond kFleetHistory
// go). False + *error when etcd did not answer; *swapped false when the key
// had changed. A history entry that could not be written is a *note.
bool write_fleet_record(EtcdClient& etcd, const FleetConfig& f, FleetRecord record,
                        int64_t expected, bool* swapped, int64_t* revision, std::string* note);

}  // namespace sluice
