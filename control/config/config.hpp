// SPDX-License-Identifier: Apache-2.0
// Typed sluice configuration: what the user wrote, validated, in user units.
//
// Every field has a named default and its unit in its name. Whether a key
// can change live (through a retune) or needs a restart, its range and its
// meaning are in the key schema (schema.cpp), the one place that says so. The
// loader (config_loader.hpp) is the only way to obtain a Config, so a Config
// always satisfies every rule in config.md; compile.hpp turns it into the
// compiled profile the dataplanes consume.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/dataplane.hpp"  // DataplaneSettings

namespace sluice {

enum class ShedAction { drop, reset, mark };
enum class ShedOrder { sticky, random };
enum class MalformedAction { drop, pass };
enum class UnverifiedAction { charge, drop, pass };

inline constexpr const char* kDefaultClassName = "default";

// An address prefix in network order; IPv4 uses addr[0..3].
struct Prefix {
  uint8_t family = 4;  // 4 or 6
  std::array<uint8_t, 16> addr{};
  uint8_t len = 0;
  std::string text;  // as written, for messages and status
  bool operator==(const Prefix&) const = default;
};

struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 0;
  bool operator==(const PortRange&) const = default;
};

// [dataplane] is what the dataplanes take, as they take it.
using DataplaneConfig = DataplaneSettings;

inline constexpr std::array<uint32_t, SL_PRIORITIES> kDefaultLookupsReservePct = {0,  6,  12, 18,
                                                                                  25, 31, 37, 43};
inline constexpr std::array<uint32_t, SL_PRIORITIES> kDefaultPacketsReservePct = {6,  12, 18, 25,
                                                                                  31, 37, 43, 50};

struct BoundaryConfig {
  std::optional<uint64_t> lookups_per_sec;  // absent = no boundary lookup budget
  uint64_t lookups_burst = 0;               // default lookups_per_sec / 10 (at least 1)
  std::optional<uint64_t> packets_per_sec;  // absent = no packet budget
  uint64_t packets_burst = 0;               // default packets_per_sec / 10 (at least 1)
  uint64_t max_queue_delay_us = 5000;       // DPDK queues
  // Adaptive boundary (inline only): lookups_per_sec is the ceiling, and
  // sluice sets the lookup rate between it and the floor from the backend
  // signal (control/adaptive/).
  bool adaptive = false;
  uint64_t adaptive_min_per_sec = 0;  // 0: max(1, lookups_per_sec / 10)
  // The floor in force, never above the ceiling.
  uint64_t adaptive_floor() const {
    const uint64_t ceiling = lookups_per_sec.value_or(0);
    const uint64_t floor =
        adaptive_min_per_sec != 0 ? adaptive_min_per_sec : std::max<uint64_t>(1, ceiling / 10);
    return std::min(floor, ceiling);
  }
  // share of the burst that priority p may not take (non-decreasing in p, < 100)
  std::array<uint32_t, SL_PRIORITIES> lookups_reserve_pct = kDefaultLookupsReservePct;
  std::array<uint32_t, SL_PRIORITIES> packets_reserve_pct = kDefaultPacketsReservePct;
  bool operator==(const BoundaryConfig&) const = default;
};

struct AdmissionConfig {
  bool shadow = false;
  MalformedAction malformed = MalformedAction::drop;
  uint64_t sticky_epoch_sec = 60;
  uint64_t sticky_window_ms = 100;
  uint64_t source_table_size = SL_SOURCES_DEFAULT;  // sources the per-source table holds
  // Salt of the sticky ranks. Unset: sluiced's own, random and kept across
  // restarts (control/seed_store.hpp); offline tools use kBuiltinSeed.
  std::optional<uint64_t> seed;
  // packets that continue no flow the edge saw begin: charged as a
  // lookup of their class, dropped, or trusted as continuations
  UnverifiedAction unverified = UnverifiedAction::charge;
  uint64_t flow_table_size = SL_FLOWS_DEFAULT;  // TCP flow entries, split evenly by priority
  uint64_t flow_idle_tcp_sec = 300;  // an open TCP flow lives this long after its last packet
  uint64_t flow_learn_sec = 10;      // learning window after a start with an empty table
  // A verified flow's packets rank as continuations up to this rate (0: all).
  uint64_t flow_packets_per_sec = 1000;
  bool operator==(const AdmissionConfig&) const = default;
};

struct MetricsConfig {
  std::string listen = "127.0.0.1:9109";
  bool operator==(const MetricsConfig&) const = default;
};

struct ControlConfig {
  std::string socket = "/run/sluice/control.sock";  // JSON-lines control API
  uint32_t socket_mode = 0660;                      // permission bits of the socket
  std::string socket_group;                         // group owning the socket ("" = root's)
  std::string http_listen;                          // optional "127.0.0.1:PORT" / "[::1]:PORT"
  std::string http_token_file;                      // bearer token file (required with http_listen)
  std::string audit_log = "/var/log/sluice/audit.jsonl";  // JSON lines, applied changes
  uint32_t history = 32;                                  // generations kept for rollback
  bool operator==(const ControlConfig&) const = default;
};

// [fleet]: this edge is one of several enforcing one boundary together,
// coordinated through etcd (docs/fleet.md). Every key needs a restart.
// How an edge reaches etcd beyond its URLs: TLS (https:// endpoints) and
// etcd's own users. Files, read when used: a renewed certificate or password
// is picked up at the next connection or authentication.
struct EtcdAccessConfig {
  std::string ca_file;        // PEM: the CAs etcd's server certificates chain to ("": the system's)
  std::string cert_file;      // PEM: this edge's client certificate (etcd --client-cert-auth)
  std::string key_file;       // PEM: its private key
  std::string user;           // etcd user ("": etcd's auth is off)
  std::string password_file;  // its password: the file's first line
  bool operator==(const EtcdAccessConfig&) const = default;
};

struct FleetConfig {
  std::vector<std::string> etcd;   // client URLs, "http://HOST:PORT" or "https://HOST:PORT"
  EtcdAccessConfig access;         // TLS and etcd auth
  std::string prefix = "/sluice";  // every key of the fleet lives under it
  std::string node;                // this edge's name, unique in the fleet
  uint32_t lease_ttl_sec = 3;      // the edge's record lives this long without it
  uint32_t static_sec = 60;        // etcd or an edge silent this long: even shares / share freed
  uint32_t sync_ms = 250;          // how often the edge publishes its demand and reads the fleet's
  uint32_t floor_pct = 10;         // of every budget split evenly across edges (a first burst)
  bool operator==(const FleetConfig&) const = default;
};

struct MatchConfig {
  std::vector<Prefix> src;           // any of these (LPM)
  std::vector<Prefix> dst;           // any of these (LPM)
  std::vector<uint8_t> protocols;    // IP protocol numbers; "icmp" means 1 and 58
  std::vector<PortRange> dst_ports;  // TCP/UDP destination ports
  std::vector<uint8_t> dscp;         // 0..63
  bool operator==(const MatchConfig&) const = default;
};

struct PerSourceConfig {
  uint64_t rate_per_sec = 0;
  uint64_t burst = 0;      // default rate_per_sec (at least 1)
  uint8_t prefix_v4 = 32;  // sources are keyed by this prefix
  uint8_t prefix_v6 = 64;
  bool operator==(const PerSourceConfig&) const = default;
};

struct ClassConfig {
  std::string name;
  uint8_t priority = 4;  // 0 highest .. 7 lowest
  MatchConfig match;
  std::optional<uint64_t> rate_per_sec;  // absent = the class has no own budget
  uint64_t burst = 0;                    // default rate_per_sec / 10 (at least 1)
  ShedAction on_shed = ShedAction::drop;
  ShedOrder shed_order = ShedOrder::sticky;
  uint8_t mark_dscp = 0;  // used by on_shed = "mark"
  std::optional<PerSourceConfig> per_source;
  bool operator==(const ClassConfig&) const = default;
};

// A named overlay: dotted keys ("class.citizen.rate_per_sec") to TOML values,
// kept as the TOML text of the value so that applying a profile goes through
// the same loader as a file.
struct ProfileOverlay {
  std::string name;
  std::vector<std::pair<std::string, std::string>> settings;  // key, TOML value text
  bool operator==(const ProfileOverlay&) const = default;
};

struct Config {
  std::string source;  // file name (or "<string>") it was loaded from
  DataplaneConfig dataplane;
  BoundaryConfig boundary;
  AdmissionConfig admission;
  MetricsConfig metrics;
  ControlConfig control;
  std::optional<FleetConfig> fleet;  // absent: this edge enforces its budgets alone
  std::vector<ClassConfig> classes;  // in match order; the last is always "default"
  std::map<std::string, ProfileOverlay> profiles;
  bool operator==(const Config&) const = default;
};

}  // namespace sluice
