// SPDX-License-Identifier: Apache-2.0
// A fleet member's join and the copy of the fleet config it keeps (read at
// a start without etcd), against a real etcd.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "control/fleet/agent_detail.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_agent.hpp"
#include "control/fleet/fleet_policy.hpp"
#include "tests/control/api/control_test_env.hpp"
#include "tests/control/fleet/etcd_fixture.hpp"
#include "tests/control/fleet/member_env.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;
using test::member_config;
using test::within_10s;

// The copy an edge keeps (read at a start without etcd) follows the
// fleet's size, and seeds a fleet config that was lost. Before, it kept the
// edges counted at the join: an edge that joined first (1) and restarted
// while etcd was away took the whole budget beside the others; and a lost
// config was seeded again from the edge's file, whose fleet tables are not
// read once the fleet runs (stale, or deleted: an empty policy).
TEST(FleetAgent, TheKeptCopyFollowsTheFleetsSizeAndSeedsALostConfig) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  auto etcd = std::make_unique<testing::EtcdProcess>(24810);
  ASSERT_TRUE(etcd->ready());
  test::ControlHarness h(member_config(24810));
  const LoadResult loaded = load_config_file(h.config_path());
  ASSERT_TRUE(loaded.ok());
  const FleetConfig& fleet = *loaded.config->fleet;
  std::string error;
  FleetStart start;
  ASSERT_TRUE(fleet_join(fleet, h.config_path(), loaded.text, &start, &error)) << error;
  EXPECT_EQ(start.edges, 1U);
  h.state().join_fleet(fleet.prefix, fleet.node, start.record.config);
  ASSERT_TRUE(h.state().set_shares(start.shares, &error)) << error;
  auto agent = std::make_unique<FleetAgent>(fleet, h.state(), start);

  // Two edges join after it (records under a lease): it counts 3, and so
  // does its kept copy.
  EtcdClient c({etcd->url()}, std::chrono::milliseconds(2000));
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(30, &lease, &error)) << error;
  for (const char* node : {"edge-b", "edge-c"}) {
    const json other = {{"node", node}, {"demand", json::object()}, {"shares", json::object()}};
    ASSERT_TRUE(c.put(std::string("/sluice/agent-test/edges/") + node, other.dump(), lease, nullptr,
                      &error));
  }
  // A record written without a lease (by hand) is no edge.
  ASSERT_TRUE(c.put("/sluice/agent-test/edges/edge-z", json{{"node", "edge-z"}}.dump(), 0, nullptr,
                    &error));
  const std::string kept_path = fleet_detail::cache_path(fleet);
  auto kept_edges = [&] {
    std::ifstream in(kept_path);
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str(), nullptr, false).value("edges", 0);
  };
  ASSERT_TRUE(within_10s([&] { return kept_edges() == 3; })) << kept_edges();
  EXPECT_EQ(agent->figures().edges_live, 3U);

  // A fleet change, then the fleet's config is lost: the next edge to
  // start seeds it again from its kept copy (30000), not its file (40000).
  const json r = fleet_request(
      fleet,
      {{"op", "set"},
       {"settings", json::array({json::array({"boundary.lookups_per_sec", "30000"})})}},
      {{"transport", "test"}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  const uint64_t revision = r["generation"];
  ASSERT_TRUE(within_10s([&] { return h.state().generation() == revision; }));
  agent.reset();
  ASSERT_TRUE(c.remove("/sluice/agent-test/config", false, &error)) << error;
  FleetStart again;
  ASSERT_TRUE(fleet_join(fleet, h.config_path(), loaded.text, &again, &error)) << error;
  EXPECT_NE(again.log.find("seeded it from the copy kept in"), std::string::npos) << again.log;
  ASSERT_TRUE(again.loaded.ok());
  EXPECT_EQ(again.loaded.config->boundary.lookups_per_sec, 30000U);
  EXPECT_EQ(again.edges, 3U);

  // etcd away: a start from the kept copy takes 1/3 of each budget.
  etcd.reset();
  FleetStart cold;
  ASSERT_TRUE(fleet_join(fleet, h.config_path(), loaded.text, &cold, &error)) << error;
  EXPECT_TRUE(cold.from_cache);
  EXPECT_EQ(cold.edges, 3U);
  ASSERT_TRUE(cold.shares.boundary_lookups.has_value());
  EXPECT_EQ(cold.shares.boundary_lookups->rate, 10000U);
  // The copy is this fleet's: the edge moved to another prefix does not run
  // (or seed) the old fleet's config.
  FleetConfig moved = fleet;
  moved.prefix = "/sluice/other-fleet";
  FleetStart elsewhere;
  EXPECT_FALSE(fleet_join(moved, h.config_path(), loaded.text, &elsewhere, &error));
  EXPECT_NE(error.find("no fleet config is kept"), std::string::npos) << error;
  ::unsetenv("STATE_DIRECTORY");
}

// An edge that would seed a fleet with an empty policy (no fleet config in
// etcd, no copy kept, no fleet tables in its file) refuses to.
// Under a fleet profile that changes a budget (surge-1: the boundary's
// lookups 30000/s where the tables say 40000), a start's shares are of the
// profile's budgets: an even share 1/N of them, and a hold's (or the kept
// copy's) shares as they stand, not scaled to the profile again. Before,
// sluiced scaled every start's shares from the tables' budgets to the
// profile's: a hold's 7000 ran as 5250 (and a profile that raised a budget
// raised it past what the other edges count for this one).
TEST(FleetAgent, AStartUnderTheFleetsProfileTakesSharesOfItsBudgets) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  testing::EtcdProcess etcd(24840);
  ASSERT_TRUE(etcd.ready());
  test::ControlHarness h(member_config(24840));
  const LoadResult loaded = load_config_file(h.config_path());
  ASSERT_TRUE(loaded.ok());
  const FleetConfig& fleet = *loaded.config->fleet;
  std::string error;
  FleetStart seeded;
  ASSERT_TRUE(fleet_join(fleet, h.config_path(), loaded.text, &seeded, &error)) << error;
  EtcdClient c({etcd.url()}, std::chrono::milliseconds(2000));
  FleetRecord surge = seeded.record;
  surge.profile = "surge-1";
  bool swapped = false;
  int64_t revision = 0;
  std::string note;
  ASSERT_TRUE(
      write_fleet_record(c, fleet, surge, seeded.record.revision, &swapped, &revision, &note))
      << note;
  ASSERT_TRUE(swapped);
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(30, &lease, &error)) << error;
  ASSERT_TRUE(c.put("/sluice/agent-test/edges/edge-b", json{{"node", "edge-b"}}.dump(), lease,
                    nullptr, &error));

  // As sluiced starts a member (daemon.cpp): its first shares, then the
  // fleet's profile with them.
  auto start_here = [&](FleetStart* start) {
    EXPECT_TRUE(fleet_join(fleet, h.config_path(), loaded.text, start, &error)) << error;
    h.state().join_fleet(fleet.prefix, fleet.node, start->record.config);
    EXPECT_TRUE(h.state().set_shares(start->shares, &error)) << error;
    const json r = h.state().apply_fleet_config(start->record.config, start->record.profile,
                                                static_cast<uint64_t>(start->record.revision),
                                                json::object(), "set", false, &start->shares);
    EXPECT_TRUE(r["ok"]) << r.dump();
    return h.dataplane().last_profile().boundary_lookups.rate_per_sec;
  };
  FleetStart even;
  EXPECT_EQ(start_here(&even), 15000U) << "1/2 of the profile's 30000";
  EXPECT_EQ(even.record.profile, "surge-1");
  EXPECT_FALSE(even.held);

  // This node's hold (a restart after a clean stop): its 7000 as they are.
  int64_t hold_lease = 0;
  ASSERT_TRUE(c.lease_grant(30, &hold_lease, &error)) << error;
  const json hold = {{"node", "edge-a"},
                     {"shares", {{"boundary_lookups", {{"rate", 7000}, {"burst", 700}}}}}};
  ASSERT_TRUE(c.put("/sluice/agent-test/held/edge-a", hold.dump(), hold_lease, nullptr, &error));
  FleetStart held;
  EXPECT_EQ(start_here(&held), 7000U) << "not 7000 x 30000 / 40000";
  EXPECT_TRUE(held.held);
  ::unsetenv("STATE_DIRECTORY");
}

TEST(FleetAgent, AnEdgeWithoutFleetTablesDoesNotSeedAnEmptyPolicy) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  auto etcd = std::make_unique<testing::EtcdProcess>(24812);
  ASSERT_TRUE(etcd->ready());
  const std::string text = R"([dataplane]
mode = "xdp"
outside = "eth0"
inside = "eth1"

[fleet]
etcd = ["http://127.0.0.1:24812"]
prefix = "/sluice/agent-test"
node = "edge-a"
)";
  test::TempDir dir;
  const std::string path = dir.file("sluice.toml");
  std::ofstream(path) << text;
  const LoadResult loaded = load_config_file(path);
  ASSERT_TRUE(loaded.ok());
  std::string error;
  FleetStart start;
  EXPECT_FALSE(fleet_join(*loaded.config->fleet, path, loaded.text, &start, &error));
  EXPECT_NE(error.find("no fleet tables to seed it with"), std::string::npos) << error;
  EtcdClient c({etcd->url()}, std::chrono::milliseconds(2000));
  std::vector<EtcdKv> kvs;
  ASSERT_TRUE(c.range("/sluice/agent-test/config", false, &kvs, nullptr, &error)) << error;
  EXPECT_TRUE(kvs.empty()) << "nothing written";
  ::unsetenv("STATE_DIRECTORY");
}

}  // namespace
}  // namespace sluice
