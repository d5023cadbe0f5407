// SPDX-License-Identifier: Apache-2.0
#include "control/fleet/shares.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace sluice {
namespace {

using ByPriority = std::array<double, SL_PRIORITIES>;

// Splits `total` (what held edges left of a budget) across the live edges
// by their demand per priority; the result sums to `total`.
std::vector<double> split(double total, const std::vector<ByPriority>& demand, uint32_t floor_pct) {
  const std::size_t n = demand.size();
  std::vector<double> out(n, 0.0);
  if (n == 0 || total <= 0) return out;
  const double floor = total * floor_pct / 100.0;
  for (double& a : out) a = floor / static_cast<double>(n);
  double rest = total - floor;
  for (int p = 0; p < SL_PRIORITIES && rest > 0; p++) {
    double sum = 0;
    for (const ByPriority& d : demand) sum += std::max(0.0, d[p]);
    if (sum <= 0) continue;
    const double give = std::min(rest, sum);
    for (std::size_t e = 0; e < n; e++) out[e] += give * std::max(0.0, demand[e][p]) / sum;
    rest -= give;
  }
  if (rest > 0) {  // demand is below the budget: the room left follows demand
    std::vector<double> weight(n, 0.0);
    double sum = 0;
    for (std::size_t e = 0; e < n; e++) {
      for (double d : demand[e]) weight[e] += std::max(0.0, d);
      sum += weight[e];
    }
    for (std::size_t e = 0; e < n; e++)
      out[e] += sum > 0 ? rest * weight[e] / sum : rest / static_cast<double>(n);
  }
  return out;
}

// Rounded down (the shares never sum to more than the budget), at least 1.
BudgetShare share_of(double rate, double burst) {
  return {std::max<uint64_t>(1, static_cast<uint64_t>(std::floor(rate))),
          std::max<uint64_t>(1, static_cast<uint64_t>(std::floor(burst)))};
}

// What held edges keep of one budget.
template <typename Get>
std::pair<double, double> held_total(const std::map<std::string, EdgeShares>& held, Get get) {
  double rate = 0, burst = 0;
  for (const auto& [node, s] : held) {
    if (const BudgetShare* b = get(s)) {
      rate += static_cast<double>(b->rate);
      burst += static_cast<double>(b->burst);
    }
  }
  return {rate, burst};
}

// One budget split across the live edges; `set` stores edge e's share.
template <typename Get, typename Set>
void divide(uint64_t rate, uint64_t burst, const std::vector<ByPriority>& demand,
            const std::map<std::string, EdgeShares>& held, uint32_t floor_pct, Get get, Set set) {
  const auto [held_rate, held_burst] = held_total(held, get);
  const double left = std::max(0.0, static_cast<double>(rate) - held_rate);
  const std::vector<double> parts = split(left, demand, floor_pct);
  // Bursts follow the rates, from what held edges left of the burst.
  const double burst_left = std::max(0.0, static_cast<double>(burst) - held_burst);
  for (std::size_t e = 0; e < parts.size(); e++)
    set(e, share_of(parts[e], left > 0 ? burst_left * parts[e] / left : 0));
}

}  // namespace

std::map<std::string, EdgeShares> compute_shares(const Config& cfg,
                                                 const std::vector<EdgeDemand>& live,
                                                 const std::map<std::string, EdgeShares>& held,
                                                 uint32_t floor_pct) {
  std::map<std::string, EdgeShares> out;
  std::vector<EdgeShares*> at;
  for (const EdgeDemand& e : live) {
    at.push_back(&out[e.node]);
    at.back()->edges = live.size() + held.size();
  }
  if (live.empty()) return out;
  auto demand_of = [](const std::map<std::string, double>& m, const std::string& name) {
    auto it = m.find(name);
    return it == m.end() ? 0.0 : std::max(0.0, it->second);
  };

  // Class budgets first: what a class may admit at an edge caps what it
  // asks of the boundary there.
  std::vector<std::map<std::string, double>> lookups(live.size());
  for (const ClassConfig& c : cfg.classes) {
    std::vector<ByPriority> demand(live.size(), ByPriority{});
    for (std::size_t e = 0; e < live.size(); e++) {
      demand[e][c.priority] = demand_of(live[e].class_lookups, c.name);
      lookups[e][c.name] = demand[e][c.priority];
    }
    if (!c.rate_per_sec) continue;
    divide(
        *c.rate_per_sec, c.burst, demand, held, floor_pct,
        [&c](const EdgeShares& s) -> const BudgetShare* {
          auto it = s.classes.find(c.name);
          return it == s.classes.end() ? nullptr : &it->second;
        },
        [&](std::size_t e, BudgetShare s) {
          at[e]->classes[c.name] = s;
          lookups[e][c.name] = std::min(lookups[e][c.name], static_cast<double>(s.rate));
        });
  }

  const BoundaryConfig& b = cfg.boundary;
  if (b.lookups_per_sec) {
    std::vector<ByPriority> demand(live.size(), ByPriority{});
    for (std::size_t e = 0; e < live.size(); e++)
      for (const ClassConfig& c : cfg.classes) demand[e][c.priority] += lookups[e][c.name];
    divide(
        *b.lookups_per_sec, b.lookups_burst, demand, held, floor_pct,
        [](const EdgeShares& s) { return s.boundary_lookups ? &*s.boundary_lookups : nullptr; },
        [&](std::size_t e, BudgetShare s) { at[e]->boundary_lookups = s; });
  }
  if (b.packets_per_sec) {
    std::vector<ByPriority> demand(live.size(), ByPriority{});
    for (std::size_t e = 0; e < live.size(); e++)
      for (const ClassConfig& c : cfg.classes)
        demand[e][c.priority] += demand_of(live[e].class_packets, c.name);
    divide(
        *b.packets_per_sec, b.packets_burst, demand, held, floor_pct,
        [](const EdgeShares& s) { return s.boundary_packets ? &*s.boundary_packets : nullptr; },
        [&](std::size_t e, BudgetShare s) { at[e]->boundary_packets = s; });
  }
  return out;
}

EdgeShares even_shares(const Config& cfg, std::size_t n) {
  EdgeShares s;
  s.edges = std::max<std::size_t>(n, 1);
  const double d = static_cast<double>(s.edges);
  const BoundaryConfig& b = cfg.boundary;
  if (b.lookups_per_sec) s.boundary_lookups = share_of(*b.lookups_per_sec / d, b.lookups_burst / d);
  if (b.packets_per_sec) s.boundary_packets = share_of(*b.packets_per_sec / d, b.packets_burst / d);
  for (const ClassConfig& c : cfg.classes)
    if (c.rate_per_sec) s.classes[c.name] = share_of(*c.rate_per_sec / d, c.burst / d);
  return s;
}

EdgeShares lower_of(const EdgeShares& a, const EdgeShares& b, const Config& cfg) {
  auto lower = [](const std::optional<BudgetShare>& x, const std::optional<BudgetShare>& y) {
    if (!x || !y) return x;
    return std::optional<BudgetShare>(
        BudgetShare{std::min(x->rate, y->rate), std::min(x->burst, y->burst)});
  };
  const EdgeShares even = even_shares(cfg, b.edges);
  EdgeShares out = a;
  out.boundary_lookups =
      lower(a.boundary_lookups, b.boundary_lookups ? b.boundary_lookups : even.boundary_lookups);
  out.boundary_packets =
      lower(a.boundary_packets, b.boundary_packets ? b.boundary_packets : even.boundary_packets);
  for (auto& [name, share] : out.classes) {
    auto it = b.classes.find(name);
    if (it != b.classes.end()) {
      share = *lower(share, it->second);
    } else if (auto e = even.classes.find(name); e != even.classes.end()) {
      share = *lower(share, e->second);
    }
  }
  return out;
}

EdgeShares higher_of(const EdgeShares& a, const EdgeShares& b) {
  auto higher = [](const std::optional<BudgetShare>& x, const std::optional<BudgetShare>& y) {
    if (!x || !y) return x ? x : y;
    return std::optional<BudgetShare>(
        BudgetShare{std::max(x->rate, y->rate), std::max(x->burst, y->burst)});
  };
  EdgeShares out = a;
  out.boundary_lookups = higher(a.boundary_lookups, b.boundary_lookups);
  out.boundary_packets = higher(a.boundary_packets, b.boundary_packets);
  for (const auto& [name, share] : b.classes) {
    auto it = out.classes.find(name);
    out.classes[name] = it == out.classes.end() ? share : *higher(it->second, share);
  }
  return out;
}

namespace {

// One share scaled from budget (rate, burst) `a` to `b`.
std::optional<BudgetShare> rescale(const std::optional<BudgetShare>& s,
                                   std::optional<uint64_t> a_rate, uint64_t a_burst,
                                   std::optional<uint64_t> b_rate, uint64_t b_burst) {
  if (!s || !a_rate || !b_rate || *a_rate == 0 || a_burst == 0) return std::nullopt;
  return share_of(
      static_cast<double>(s->rate) * static_cast<double>(*b_rate) / static_cast<double>(*a_rate),
      static_cast<double>(s->burst) * static_cast<double>(b_burst) / static_cast<double>(a_burst));
}

}  // namespace

EdgeShares rescale_shares(const EdgeShares& shares, const Config& from, const Config& to) {
  EdgeShares out;
  out.edges = shares.edges;
  out.boundary_lookups =
      rescale(shares.boundary_lookups, from.boundary.lookups_per_sec, from.boundary.lookups_burst,
              to.boundary.lookups_per_sec, to.boundary.lookups_burst);
  out.boundary_packets =
      rescale(shares.boundary_packets, from.boundary.packets_per_sec, from.boundary.packets_burst,
              to.boundary.packets_per_sec, to.boundary.packets_burst);
  for (const ClassConfig& t : to.classes) {
    auto s = shares.classes.find(t.name);
    if (s == shares.classes.end()) continue;
    for (const ClassConfig& f : from.classes) {
      if (f.name != t.name) continue;
      if (std::optional<BudgetShare> r =
              rescale(s->second, f.rate_per_sec, f.burst, t.rate_per_sec, t.burst))
        out.classes[t.name] = *r;
    }
  }
  return out;
}

Config apply_shares(const Config& cfg, const EdgeShares& shares) {
  Config out = cfg;
  // A budget without a share: 1/edges of it until the next split.
  const EdgeShares even = even_shares(cfg, shares.edges);
  auto pick = [](const std::optional<BudgetShare>& mine, const std::optional<BudgetShare>& other) {
    return mine ? mine : other;
  };
  BoundaryConfig& b = out.boundary;
  if (const auto s = pick(shares.boundary_lookups, even.boundary_lookups); b.lookups_per_sec && s) {
    b.lookups_per_sec = s->rate;
    b.lookups_burst = s->burst;
  }
  if (const auto s = pick(shares.boundary_packets, even.boundary_packets); b.packets_per_sec && s) {
    b.packets_per_sec = s->rate;
    b.packets_burst = s->burst;
  }
  for (ClassConfig& c : out.classes) {
    if (!c.rate_per_sec) continue;
    auto it = shares.classes.find(c.name);
    const BudgetShare s = it != shares.classes.end() ? it->second : even.classes.at(c.name);
    c.rate_per_sec = s.rate;
    c.burst = s.burst;
  }
  return out;
}

namespace {

nlohmann::json budget_json(const BudgetShare& s) { return {{"rate", s.rate}, {"burst", s.burst}}; }

std::optional<BudgetShare> budget_from(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("rate") || !j.contains("burst") ||
      !j["rate"].is_number_unsigned() || !j["burst"].is_number_unsigned())
    return std::nullopt;
  return BudgetShare{j["rate"].get<uint64_t>(), j["burst"].get<uint64_t>()};
}

}  // namespace

nlohmann::json shares_to_json(const EdgeShares& shares) {
  nlohmann::json j = {{"classes", nlohmann::json::object()}};
  if (shares.boundary_lookups) j["boundary_lookups"] = budget_json(*shares.boundary_lookups);
  if (shares.boundary_packets) j["boundary_packets"] = budget_json(*shares.boundary_packets);
  for (const auto& [name, s] : shares.classes) j["classes"][name] = budget_json(s);
  return j;
}

std::optional<EdgeShares> shares_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  EdgeShares s;
  for (const char* key : {"boundary_lookups", "boundary_packets"}) {
    if (!j.contains(key)) continue;
    std::optional<BudgetShare> b = budget_from(j[key]);
    if (!b) return std::nullopt;
    (std::string(key) == "boundary_lookups" ? s.boundary_lookups : s.boundary_packets) = b;
  }
  if (j.contains("classes")) {
    if (!j["classes"].is_object()) return std::nullopt;
    for (const auto& [name, v] : j["classes"].items()) {
      std::optional<BudgetShare> b = budget_from(v);
      if (!b) return std::nullopt;
      s.classes[name] = *b;
    }
  }
  return s;
}

nlohmann::json demand_to_json(const EdgeDemand& d) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, rate] : d.class_lookups) {
    auto p = d.class_packets.find(name);
    out[name] = {{"lookups", rate}, {"packets", p == d.class_packets.end() ? 0.0 : p->second}};
  }
  return out;
}

EdgeDemand demand_from_json(const nlohmann::json& j) {
  EdgeDemand d;
  if (!j.is_object()) return d;
  for (const auto& [name, v] : j.items()) {
    if (!v.is_object()) continue;
    if (v.contains("lookups") && v["lookups"].is_number())
      d.class_lookups[name] = v["lookups"].get<double>();
    if (v.contains("packets") && v["packets"].is_number())
      d.class_packets[name] = v["packets"].get<double>();
  }
  return d;
}

EdgeDemand demand_at(const EdgeDemand& a, double ta, const EdgeDemand& b, double tb, double t) {
  const double w = tb <= ta || t >= tb ? 1.0 : t <= ta ? 0.0 : (t - ta) / (tb - ta);
  auto mix = [w](const std::map<std::string, double>& x, const std::map<std::string, double>& y) {
    std::map<std::string, double> out;
    for (const auto& [name, v] : x) out[name] = (1 - w) * v;
    for (const auto& [name, v] : y) out[name] += w * v;
    return out;
  };
  EdgeDemand d;
  d.node = b.node;
  d.class_lookups = mix(a.class_lookups, b.class_lookups);
  d.class_packets = mix(a.class_packets, b.class_packets);
  return d;
}

EdgeDemand record_demand_at(const nlohmann::json& record, double t) {
  auto member = [](const nlohmann::json& j, const char* key) {
    return j.is_object() && j.contains(key) ? j[key] : nlohmann::json();
  };
  const EdgeDemand now = demand_from_json(member(record, "demand"));
  const nlohmann::json before = member(record, "before");
  const nlohmann::json now_ms = member(record, "unix_ms"), before_ms = member(before, "unix_ms");
  if (!now_ms.is_number() || !before_ms.is_number()) return now;
  return demand_at(demand_from_json(member(before, "demand")), before_ms.get<double>(), now,
                   now_ms.get<double>(), t);
}

}  // namespace sluice
