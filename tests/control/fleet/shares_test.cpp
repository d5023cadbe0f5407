// SPDX-License-Identifier: Apache-2.0
// Fleet shares (control/fleet/shares.hpp): every live edge's part of each
// fleet budget, priority first, never more than the budget in all.
#include "control/fleet/shares.hpp"

#include <gtest/gtest.h>

#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"

namespace sluice {
namespace {

Config config(const std::string& text) {
  LoadResult r = load_config_string(text, "<t>");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return r.ok() ? *r.config : Config{};
}

const std::string kTwoClasses = R"(
[boundary]
lookups_per_sec = 1000
lookups_burst = 100
[[class]]
name = "checkpoint"
priority = 0
match = { dst_ports = 8443 }
[[class]]
name = "citizen"
priority = 4
match = { dst_ports = 443 }
)";

EdgeDemand edge(const std::string& node, double checkpoint, double citizen) {
  EdgeDemand d;
  d.node = node;
  d.class_lookups["checkpoint"] = checkpoint;
  d.class_lookups["citizen"] = citizen;
  return d;
}

uint64_t rate(const std::map<std::string, EdgeShares>& s, const std::string& node) {
  return s.at(node).boundary_lookups.value().rate;
}

TEST(FleetShares, DemandAboveTheBudgetIsSplitByDemandAfterTheFloor) {
  const Config cfg = config(kTwoClasses);
  // 1 : 3 : 6 at 5x the budget.
  const auto s =
      compute_shares(cfg, {edge("a", 0, 500), edge("b", 0, 1500), edge("c", 0, 3000)}, {}, 10);
  // 100 of floor, a third each; 900 by demand.
  EXPECT_NEAR(rate(s, "a"), 100.0 / 3 + 90, 1);
  EXPECT_NEAR(rate(s, "b"), 100.0 / 3 + 270, 1);
  EXPECT_NEAR(rate(s, "c"), 100.0 / 3 + 540, 1);
  const uint64_t sum = rate(s, "a") + rate(s, "b") + rate(s, "c");
  EXPECT_LE(sum, 1000U);
  EXPECT_GE(sum, 997U);  // rounded down, one each at most
  uint64_t bursts = 0;
  for (const auto& [node, share] : s) bursts += share.boundary_lookups->burst;
  EXPECT_LE(bursts, 100U);
  EXPECT_GE(bursts, 97U);
}

TEST(FleetShares, TheHighestPriorityIsServedInFullWhereverItArrives) {
  const Config cfg = config(kTwoClasses);
  // The checkpoint scanners all reach the smallest edge.
  const auto s =
      compute_shares(cfg, {edge("a", 200, 300), edge("b", 0, 1500), edge("c", 0, 3000)}, {}, 10);
  // a: its floor, all 200 of checkpoint, and its part of the 700 left.
  EXPECT_NEAR(rate(s, "a"), 100.0 / 3 + 200 + 700.0 * 300 / 4800, 1);
  EXPECT_GE(rate(s, "a"), 200U + 33);
}

TEST(FleetShares, APriorityTheBudgetCannotCoverSharesWhatIsLeftByDemand) {
  const Config cfg = config(kTwoClasses);
  const auto s = compute_shares(cfg, {edge("a", 1500, 0), edge("b", 500, 4000)}, {}, 0);
  // Checkpoint alone asks twice the budget: 3 : 1; citizens get nothing.
  EXPECT_NEAR(rate(s, "a"), 750, 1);
  EXPECT_NEAR(rate(s, "b"), 250, 1);
}

TEST(FleetShares, RoomLeftUnderTheBudgetFollowsDemand) {
  const Config cfg = config(kTwoClasses);
  const auto s = compute_shares(cfg, {edge("a", 0, 100), edge("b", 0, 300)}, {}, 0);
  EXPECT_NEAR(rate(s, "a"), 250, 1);  // 100 + 600 / 4
  EXPECT_NEAR(rate(s, "b"), 750, 1);
  // No demand at all: even.
  const auto idle = compute_shares(cfg, {edge("a", 0, 0), edge("b", 0, 0)}, {}, 10);
  EXPECT_EQ(rate(idle, "a"), 500U);
  EXPECT_EQ(rate(idle, "b"), 500U);
}

TEST(FleetShares, AnEdgeHeldAfterItWentKeepsItsShareOutOfTheSplit) {
  const Config cfg = config(kTwoClasses);
  EdgeShares gone;
  gone.boundary_lookups = BudgetShare{300, 30};
  const auto s =
      compute_shares(cfg, {edge("a", 0, 1000), edge("b", 0, 1000)}, {{"dead", gone}}, 10);
  EXPECT_NEAR(rate(s, "a"), 350, 1);
  EXPECT_NEAR(rate(s, "b"), 350, 1);
  EXPECT_LE(rate(s, "a") + rate(s, "b") + 300, 1000U);
  EXPECT_LE(s.at("a").boundary_lookups->burst + s.at("b").boundary_lookups->burst + 30, 100U);
}

TEST(FleetShares, ClassBudgetsSplitByTheClasssDemandAndCapWhatItAsksOfTheBoundary) {
  const Config cfg = config(R"(
[boundary]
lookups_per_sec = 1000
[[class]]
name = "checkpoint"
priority = 0
match = { dst_ports = 8443 }
rate_per_sec = 100
[[class]]
name = "citizen"
priority = 4
match = { dst_ports = 443 }
)");
  // a offers 900 checkpoint lookups, of which the class admits 100 at most
  // fleet-wide: a's boundary demand is its class share, not 900.
  const auto s = compute_shares(cfg, {edge("a", 900, 0), edge("b", 0, 2000)}, {}, 0);
  EXPECT_EQ(s.at("a").classes.at("checkpoint").rate, 100U);
  EXPECT_EQ(s.at("b").classes.at("checkpoint").rate, 1U);  // at least 1
  EXPECT_NEAR(rate(s, "a"), 100, 1);
  EXPECT_NEAR(rate(s, "b"), 900, 1);
}

// Every edge weighs every record's demand as of one moment (docs/fleet.md,
// "Shares"): between a record's two samples, linear; outside them, the
// nearer one; a record with one sample, that one; a damaged one, nothing.
TEST(FleetShares, ARecordsDemandAtATimeIsBetweenItsTwoSamples) {
  using nlohmann::json;
  const json record = {
      {"demand", {{"citizen", {{"lookups", 300.0}, {"packets", 600.0}}}}},
      {"unix_ms", 2000.0},
      {"before",
       {{"demand", {{"citizen", {{"lookups", 100.0}, {"packets", 200.0}}}}}, {"unix_ms", 1000.0}}}};
  EXPECT_DOUBLE_EQ(record_demand_at(record, 1500).class_lookups.at("citizen"), 200.0);
  EXPECT_DOUBLE_EQ(record_demand_at(record, 1750).class_packets.at("citizen"), 500.0);
  EXPECT_DOUBLE_EQ(record_demand_at(record, 500).class_lookups.at("citizen"), 100.0);
  EXPECT_DOUBLE_EQ(record_demand_at(record, 2500).class_lookups.at("citizen"), 300.0);
  json one = record;
  one.erase("before");
  EXPECT_DOUBLE_EQ(record_demand_at(one, 1500).class_lookups.at("citizen"), 300.0);
  // A class only one sample has ramps from or to nothing.
  json fresh = record;
  fresh["demand"]["web"] = {{"lookups", 40.0}, {"packets", 40.0}};
  EXPECT_DOUBLE_EQ(record_demand_at(fresh, 1500).class_lookups.at("web"), 20.0);
  const json damaged = {{"demand", "lots"}, {"unix_ms", "x"}, {"before", 3}};
  EXPECT_TRUE(record_demand_at(damaged, 1500).class_lookups.empty());
  // And what an edge publishes reads back.
  EXPECT_EQ(demand_to_json(demand_from_json(record["demand"])), record["demand"]);
}

TEST(FleetShares, EvenSharesAreOneNthOfEveryBudget) {
  const Config cfg = config(kTwoClasses);
  const EdgeShares s = even_shares(cfg, 3);
  EXPECT_EQ(s.boundary_lookups->rate, 333U);
  EXPECT_EQ(s.boundary_lookups->burst, 33U);
  EXPECT_FALSE(s.boundary_packets.has_value());                  // no packet budget configured
  EXPECT_EQ(even_shares(cfg, 5000).boundary_lookups->rate, 1U);  // never 0
}

TEST(FleetShares, AppliedSharesReplaceTheBudgetsAndTheReservesFollowTheBurst) {
  const Config cfg = config(kTwoClasses);
  EdgeShares s;
  s.boundary_lookups = BudgetShare{250, 40};
  const Config mine = apply_shares(cfg, s);
  EXPECT_EQ(mine.boundary.lookups_per_sec, 250U);
  EXPECT_EQ(mine.boundary.lookups_burst, 40U);
  const CompiledProfile p = compile_profile(mine);
  EXPECT_EQ(p.prof.boundary_lookups.rate_per_sec, 250U);
  EXPECT_EQ(p.prof.boundary_lookups.cap_nt, 40 * SL_TOKEN);
  // Priority 4's reserve is 25% of the edge's burst, not of the fleet's.
  EXPECT_EQ(p.prof.lookups_reserve_nt[4], 40 * SL_TOKEN / 100 * 25);
}

// A budget the shares lack (one a fleet change or the fleet's profile adds,
// until the next split) is taken 1/edges of, not whole. Before, each of N
// edges that started without etcd enforced the whole of a packet budget
// only the fleet's profile set: N times the budget.
TEST(FleetShares, ABudgetWithoutAShareIsSplitEvenlyUntilTheNextSplit) {
  const Config before = config(kTwoClasses);
  const Config after = config(R"(
[boundary]
lookups_per_sec = 1000
lookups_burst = 100
packets_per_sec = 90000
packets_burst = 900
[[class]]
name = "checkpoint"
priority = 0
rate_per_sec = 600
match = { dst_ports = 8443 }
[[class]]
name = "citizen"
priority = 4
match = { dst_ports = 443 }
)");
  EdgeShares s = even_shares(before, 3);
  EXPECT_EQ(s.edges, 3U);
  const EdgeShares scaled = rescale_shares(s, before, after);
  EXPECT_EQ(scaled.edges, 3U);
  EXPECT_FALSE(scaled.boundary_packets.has_value());
  const Config mine = apply_shares(after, scaled);
  EXPECT_EQ(mine.boundary.lookups_per_sec, 333U);
  EXPECT_EQ(mine.boundary.packets_per_sec, 30000U);
  EXPECT_EQ(mine.boundary.packets_burst, 300U);
  EXPECT_EQ(mine.classes[0].rate_per_sec, 200U);
  // Shares from a split know the edges they split among, held ones too.
  std::map<std::string, EdgeShares> held;
  held["edge-gone"] = even_shares(before, 4);
  const auto split = compute_shares(before, {edge("a", 1, 1), edge("b", 1, 1)}, held, 10);
  EXPECT_EQ(split.at("a").edges, 3U);
}

TEST(FleetShares, JsonRoundTripsAndRefusesOtherShapes) {
  EdgeShares s;
  s.boundary_lookups = BudgetShare{250, 40};
  s.classes["citizen"] = BudgetShare{7, 1};
  const std::optional<EdgeShares> back = shares_from_json(shares_to_json(s));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, s);
  EXPECT_FALSE(shares_from_json(nlohmann::json::parse(R"({"boundary_lookups": 5})")));
  EXPECT_FALSE(shares_from_json(nlohmann::json::parse(R"({"classes": {"x": {"rate": -1}}})")));
  EXPECT_FALSE(shares_from_json(nlohmann::json::parse("[1]")));
}

}  // namespace
}  // namespace sluice
