// SPDX-License-Identifier: Apache-2.0
// Fleet shares: how the edges of a fleet split each fleet-wide budget
// (the boundary's lookup and packet budgets, every class's own budget) so
// that together they admit no more than the budget, and each edge gets the
// part its traffic needs, priority first. Pure functions of the fleet config
// and the demand every edge published; every edge computes the same shares
// from the same records (docs/fleet.md, "Shares").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/config.hpp"

namespace sluice {

// What one edge measured, per second, over its last second.
struct EdgeDemand {
  std::string node;
  // Lookups offered to each class (what its budget was asked for: lookups a
  // source's own per-source budget shed are not demand of the class).
  std::map<std::string, double> class_lookups;
  std::map<std::string, double> class_packets;  // every packet of the class
};

struct BudgetShare {
  uint64_t rate = 0;   // per second
  uint64_t burst = 0;  // tokens
  bool operator==(const BudgetShare& o) const { return rate == o.rate && burst == o.burst; }
};

// One edge's part of every fleet budget of a config.
struct EdgeShares {
  std::optional<BudgetShare> boundary_lookups;
  std::optional<BudgetShare> boundary_packets;
  std::map<std::string, BudgetShare> classes;  // classes with a rate_per_sec
  // The edges the budgets were split among (live and held). A budget these
  // shares lack (one a fleet change or the fleet's profile adds, until the
  // next split) is taken 1/edges of (apply_shares), not whole. Not compared:
  // the shares are.
  std::size_t edges = 1;
  bool operator==(const EdgeShares& o) const {
    return boundary_lookups == o.boundary_lookups && boundary_packets == o.boundary_packets &&
           classes == o.classes;
  }
};

// The shares of every live edge (by node name). An edge that stopped
// publishing but may still enforce (its last shares, from its pinned state)
// is `held`: what it holds is taken out of each budget first. Of the rest,
// floor_pct is split evenly across the live edges; the remainder goes to
// demand, highest priority first: every live edge gets its demand of
// priority p in full while the budget lasts, the priority where it runs out
// is split in proportion to demand, lower ones get nothing. What demand
// leaves over is split in proportion to each edge's demand (evenly when
// there is none), so an edge whose demand grows has room at once. Bursts
// split as rates do. Every share is at least 1/s and 1 token.
std::map<std::string, EdgeShares> compute_shares(const Config& cfg,
                                                 const std::vector<EdgeDemand>& live,
                                                 const std::map<std::string, EdgeShares>& held,
                                                 uint32_t floor_pct);

// 1/n of every budget: what an edge enforces when it cannot hear the fleet.
EdgeShares even_shares(const Config& cfg, std::size_t n);

// Each budget's lower share of the two, `b` (in force) enforcing a budget
// of cfg it has no share of at 1/b.edges (apply_shares); a's edges.
EdgeShares lower_of(const EdgeShares& a, const EdgeShares& b, const Config& cfg);

// Each budget's higher share of a's and b's (a budget either has: its
// share); a's edges.
EdgeShares higher_of(const EdgeShares& a, const EdgeShares& b);

// Shares of `from`'s budgets scaled to `to`'s (a fleet change of budgets,
// until the next sync recomputes them): each rate and burst by the ratio of
// the budgets, at least 1. A budget `to` no longer has is dropped; one `from`
// did not have gets no share (apply_shares takes 1/edges of it) until then.
EdgeShares rescale_shares(const EdgeShares& shares, const Config& from, const Config& to);

// The config this edge enforces: cfg with every fleet budget replaced by its
// share, or 1/shares.edges of it without one (the reserves scale with the
// bursts, as compile_profile makes them).
Config apply_shares(const Config& cfg, const EdgeShares& shares);

// JSON form, for the edge's record in etcd and for status:
// {"boundary_lookups": {"rate": R, "burst": B}, "boundary_packets": ...,
//  "classes": {"NAME": {"rate": R, "burst": B}}}.
nlohmann::json shares_to_json(const EdgeShares& shares);
// nullopt when `j` is not that shape.
std::optional<EdgeShares> shares_from_json(const nlohmann::json& j);

// An edge record's demand: {"CLASS": {"lookups": L, "packets": P}}. Read
// back, what is not that shape is no demand (a damaged record is an edge
// that asks for nothing, never an exception).
nlohmann::json demand_to_json(const EdgeDemand& d);
EdgeDemand demand_from_json(const nlohmann::json& j);

// An edge's demand at time t (unix ms), between its samples a (at ta) and b
// (at tb, later): linear, and clamped to them.
EdgeDemand demand_at(const EdgeDemand& a, double ta, const EdgeDemand& b, double tb, double t);

// The demand an edge's record says it offered at time t: between its last
// two samples ("before" {"demand", "unix_ms"}, then "demand" at "unix_ms"),
// or its "demand" alone when it holds one sample (docs/fleet.md, "Shares").
EdgeDemand record_demand_at(const nlohmann::json& record, double t);

}  // namespace sluice
