// SPDX-License-Identifier: Apache-2.0
// A fleet member's agent against a real etcd and a FakeDataplane: it joins
// (seeding the fleet config), publishes its record, takes its share of the
// fleet budgets from the fleet's demand, applies fleet changes as they are
// written, and without etcd keeps its shares for static_sec, then takes an
// even 1/N share.
#include "control/fleet/fleet_agent.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "control/config/compile.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_policy.hpp"
#include "tests/control/api/control_test_env.hpp"
#include "tests/control/fleet/etcd_fixture.hpp"
#include "tests/control/fleet/member_env.hpp"
#include "tests/support/traffic.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;
using test::member_config;
using test::within_10s;

uint64_t boundary_rate(const test::FakeDataplane& dp) {
  return dp.last_profile().boundary_lookups.rate_per_sec;
}

// The first status whose fleet shares give the boundary `rate` (null when
// none did within 10 s): what else it says was read with that share.
json status_with_share(test::ControlHarness& h, uint64_t rate) {
  json status;
  if (!within_10s([&] {
        status = h.call({{"op", "status"}});
        return status["fleet"]["shares"]["boundary_lookups"]["rate"] == rate;
      }))
    return nullptr;
  return status;
}

// The fleet part of the first status whose sync_error names `what` (null
// when none did within 10 s).
json fleet_error_naming(test::ControlHarness& h, const std::string& what) {
  json fleet;
  if (!within_10s([&] {
        fleet = h.call({{"op", "status"}})["fleet"];
        return fleet["sync_error"].is_string() &&
               fleet["sync_error"].get<std::string>().find(what) != std::string::npos;
      }))
    return nullptr;
  return fleet;
}

// Whether status says in sync again (sync_error null) within 10 s.
::testing::AssertionResult back_in_sync(test::ControlHarness& h) {
  if (within_10s([&] { return h.call({{"op", "status"}})["fleet"]["sync_error"].is_null(); }))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << h.call({{"op", "status"}})["fleet"].dump();
}

// Another edge of the fleet, edge-b, under a lease of its own, with citizen
// demand well under the budget (40000/s).
const json kEdgeB = {{"node", "edge-b"},
                     {"demand", {{"citizen", {{"lookups", 1000.0}, {"packets", 1000.0}}}}},
                     {"shares", json::object()},
                     {"generation", 0}};
// The hold (PREFIX/held/NODE) an edge of another instance left: its boundary
// lookup share of `rate`, a tenth of it as burst.
json gone_hold(const std::string& node, uint64_t rate) {
  return {{"node", node},
          {"instance", node + ":/etc/sluice/sluice.toml"},
          {"shares", {{"boundary_lookups", {{"rate", rate}, {"burst", rate / 10}}}}}};
}

::testing::AssertionResult put_edge_b(EtcdClient& c, const json& record, int64_t* lease) {
  std::string error;
  if (*lease == 0 && !c.lease_grant(30, lease, &error))
    return ::testing::AssertionFailure() << error;
  if (!c.put("/sluice/agent-test/edges/edge-b", record.dump(), *lease, nullptr, &error))
    return ::testing::AssertionFailure() << error;
  return ::testing::AssertionSuccess();
}

// edge-gone's hold of `rate` (gone_hold) under a new lease of 120 s.
::testing::AssertionResult put_gone_hold(EtcdClient& c, uint64_t rate, int64_t* lease) {
  std::string error;
  if (!c.lease_grant(120, lease, &error)) return ::testing::AssertionFailure() << error;
  if (!c.put("/sluice/agent-test/held/edge-gone", gone_hold("edge-gone", rate).dump(), *lease,
             nullptr, &error))
    return ::testing::AssertionFailure() << error;
  return ::testing::AssertionSuccess();
}

// fleet_join of the member `h` runs, as its restart does.
::testing::AssertionResult rejoin(test::ControlHarness& h, const LoadResult& loaded,
                                  FleetStart* start) {
  std::string error;
  if (!fleet_join(*loaded.config->fleet, h.config_path(), loaded.text, start, &error))
    return ::testing::AssertionFailure() << error;
  return ::testing::AssertionSuccess();
}

// edge-a's record as first seen (polled every 10 ms, for up to 10 s).
::testing::AssertionResult first_record(EtcdClient& c, EtcdKv* first) {
  if (within_10s([&] {
        std::vector<EtcdKv> kvs;
        std::string e;
        if (!c.range("/sluice/agent-test/edges/edge-a", false, &kvs, nullptr, &e) || kvs.empty())
          return false;
        *first = kvs[0];
        return true;
      }))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no record of edge-a";
}

// member_config(port) with static_sec `sec`.
std::string member_config_static(int port, int sec) {
  std::string text = member_config(port);
  const std::string one = "static_sec = 1";
  return text.replace(text.find(one), one.size(), "static_sec = " + std::to_string(sec));
}

TEST(FleetAgent, JoinsTakesItsShareFollowsChangesAndFallsToAnEvenShareWithoutEtcd) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;  // the kept fleet config goes here, not to /var/lib/sluice
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  auto etcd = std::make_unique<testing::EtcdProcess>(24760);
  ASSERT_TRUE(etcd->ready());
  // Another edge of the fleet: what is left over follows its demand.
  EtcdClient c({etcd->url()}, std::chrono::milliseconds(2000));
  std::string error;
  int64_t lease = 0;
  ASSERT_TRUE(put_edge_b(c, kEdgeB, &lease));

  test::ControlHarness h(member_config(24760));
  const LoadResult loaded = load_config_file(h.config_path());
  ASSERT_TRUE(loaded.ok());
  FleetStart start;
  ASSERT_TRUE(rejoin(h, loaded, &start));
  EXPECT_NE(start.log.find("seeded"), std::string::npos) << start.log;
  EXPECT_EQ(start.edges, 2U);
  EXPECT_EQ(start.shares.boundary_lookups->rate, 20000U);  // even until it has measured
  // The fleet's rank seed: this first edge's own, for every edge to use.
  ASSERT_TRUE(start.rank_seed.has_value());
  EXPECT_EQ(*start.rank_seed, default_seed());
  std::vector<EtcdKv> seed;
  ASSERT_TRUE(c.range("/sluice/agent-test/rank_seed", false, &seed, nullptr, &error));
  ASSERT_EQ(seed.size(), 1U);
  EXPECT_EQ(seed[0].value, std::to_string(default_seed()));
  h.state().join_fleet("/sluice/agent-test", "edge-a", start.record.config);
  ASSERT_TRUE(h.state().set_shares(start.shares, &error)) << error;
  auto agent = std::make_unique<FleetAgent>(*loaded.config->fleet, h.state(), start);

  // No demand here: the floor's half (10% of 40000 / 2 edges).
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 2000; }))
      << boundary_rate(h.dataplane());
  // Status shows a share with the edges it was split among, in one read:
  // the share the sync applied, and at once its two edges (not the join's
  // figures, which had none).
  const json status = status_with_share(h, 2000);
  ASSERT_FALSE(status.is_null()) << h.call({{"op", "status"}})["fleet"].dump();
  EXPECT_EQ(status["fleet"]["edges_live"], 2) << status["fleet"].dump();
  EXPECT_EQ(status["fleet"]["etcd_up"], true);
  EXPECT_EQ(status["boundary"]["lookups_per_sec"], 40000);  // the fleet's budget
  std::vector<EtcdKv> kvs;
  ASSERT_TRUE(c.range("/sluice/agent-test/edges/edge-a", false, &kvs, nullptr, &error));
  ASSERT_EQ(kvs.size(), 1U);
  EXPECT_NE(kvs[0].lease, 0) << "the edge's record lives under its lease";

  // A fleet change reaches this edge as the config key's revision.
  const json r = fleet_request(
      *loaded.config->fleet,
      {{"op", "set"},
       {"settings", json::array({json::array({"boundary.lookups_per_sec", "30000"})})}},
      {{"transport", "test"}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  const uint64_t revision = r["generation"];
  ASSERT_TRUE(within_10s([&] { return h.state().generation() == revision; }));
  EXPECT_EQ(h.state().config().boundary.lookups_per_sec, 30000U);
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 1500; }))
      << boundary_rate(h.dataplane());

  // The other edge's file asks for a floor of 50%: every edge splits by the
  // largest floor, so both compute the same shares (half of 50% of 30000).
  json other_floor = kEdgeB;
  other_floor["floor_pct"] = 50;
  ASSERT_TRUE(put_edge_b(c, other_floor, &lease));
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 7500; }))
      << boundary_rate(h.dataplane());
  ASSERT_TRUE(c.range("/sluice/agent-test/edges/edge-a", false, &kvs, nullptr, &error));
  ASSERT_EQ(kvs.size(), 1U);
  EXPECT_EQ(json::parse(kvs[0].value).value("floor_pct", 0), 10) << "its own floor, published";

  // etcd goes away: the last shares hold, then an even share of 2 edges,
  // raised (from below it) 2 s after the fall at static_sec (1 s): once
  // every edge that falls at about the same time has lowered a share above
  // it. Before, at the fall (the fleet over its budget while the edges'
  // falls were apart).
  const auto gone = std::chrono::steady_clock::now();
  etcd.reset();
  ASSERT_TRUE(within_10s([&] { return agent->figures().static_shares; }));
  EXPECT_EQ(boundary_rate(h.dataplane()), 7500U);
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 15000; }))
      << boundary_rate(h.dataplane());
  EXPECT_GE(std::chrono::steady_clock::now() - gone, std::chrono::milliseconds(2900));
  EXPECT_FALSE(agent->figures().etcd_up);
  EXPECT_GE(agent->figures().last_sync_age_sec, 1.0);

  // And it stops promptly with etcd still away.
  const auto stop = std::chrono::steady_clock::now();
  agent.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - stop, std::chrono::seconds(3));
  ::unsetenv("STATE_DIRECTORY");
}

// A member on an etcd of its own (port): joined, its first shares set, its
// agent running; the fleet config it keeps goes to a directory of its own.
struct JoinedEdge {
  test::TempDir state;
  std::unique_ptr<testing::EtcdProcess> etcd;
  std::unique_ptr<test::ControlHarness> h;
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  ~JoinedEdge() {
    agent.reset();
    ::unsetenv("STATE_DIRECTORY");
  }
};

// The member `h` runs joins its fleet as sluiced does: its config loaded,
// fleet_join, its first shares set, its agent started.
::testing::AssertionResult join_here(test::ControlHarness& h, LoadResult* loaded, FleetStart* start,
                                     std::unique_ptr<FleetAgent>* agent) {
  *loaded = load_config_file(h.config_path());
  if (!loaded->ok()) return ::testing::AssertionFailure() << "the member's config";
  std::string error;
  if (!fleet_join(*loaded->config->fleet, h.config_path(), loaded->text, start, &error))
    return ::testing::AssertionFailure() << error;
  h.state().join_fleet("/sluice/agent-test", "edge-a", start->record.config);
  if (!h.state().set_shares(start->shares, &error)) return ::testing::AssertionFailure() << error;
  *agent = std::make_unique<FleetAgent>(*loaded->config->fleet, h.state(), *start);
  return ::testing::AssertionSuccess();
}

// The member `h` joins beside edge-b (kEdgeB, under a lease of its own),
// takes the 2000 of 40000/s edge-b's demand leaves it, and stops cleanly.
::testing::AssertionResult join_cold_and_stop(EtcdClient& c, test::ControlHarness& h,
                                              LoadResult* loaded,
                                              std::unique_ptr<FleetAgent>* running = nullptr) {
  int64_t lease = 0;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  if (::testing::AssertionResult r = put_edge_b(c, kEdgeB, &lease); !r) return r;
  if (::testing::AssertionResult r = join_here(h, loaded, &start, &agent); !r) return r;
  if (!within_10s([&] { return boundary_rate(h.dataplane()) == 2000; }))
    return ::testing::AssertionFailure() << "share " << boundary_rate(h.dataplane());
  if (running != nullptr) *running = std::move(agent);  // it runs on
  return ::testing::AssertionSuccess();                 // else the agent goes: a clean stop
}

::testing::AssertionResult join_edge(int port, JoinedEdge* e) {
  ::setenv("STATE_DIRECTORY", e->state.path().c_str(), 1);
  e->etcd = std::make_unique<testing::EtcdProcess>(port);
  if (!e->etcd->ready()) return ::testing::AssertionFailure() << "etcd did not start";
  e->h = std::make_unique<test::ControlHarness>(member_config(port));
  return join_here(*e->h, &e->loaded, &e->start, &e->agent);
}

// A clone of an edge's machine (same host name, same file, same node name)
// is another instance: its join is refused while the first edge's record
// lives, since its shares would add to the first's. A restart of sluiced on
// the same boot rejoins.
TEST(FleetAgent, AClonedMachineUnderTheSameNodeNameIsRefusedAndARestartRejoins) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  testing::EtcdProcess etcd(24804);
  ASSERT_TRUE(etcd.ready());
  test::ControlHarness h(member_config(24804));
  const std::string mine = fleet_instance(h.config_path());
  const std::size_t boot = mine.rfind(" (boot ");
  ASSERT_NE(boot, std::string::npos) << mine;
  const std::string other_boot = mine.substr(boot) == " (boot 00000000)" ? "ffffffff" : "00000000";
  const std::string clone = mine.substr(0, boot) + " (boot " + other_boot + ")";

  EtcdClient c({etcd.url()}, std::chrono::milliseconds(2000));
  std::string error;
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(30, &lease, &error)) << error;
  const std::string key = "/sluice/agent-test/edges/edge-a";
  ASSERT_TRUE(
      c.put(key, json{{"node", "edge-a"}, {"instance", clone}}.dump(), lease, nullptr, &error))
      << error;
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  const ::testing::AssertionResult refused = join_here(h, &loaded, &start, &agent);
  EXPECT_FALSE(refused);
  EXPECT_NE(std::string(refused.message()).find("is held by a live edge at " + clone),
            std::string::npos)
      << refused.message();

  // This very instance's record (sluiced restarted within its lease).
  ASSERT_TRUE(
      c.put(key, json{{"node", "edge-a"}, {"instance", mine}}.dump(), lease, nullptr, &error))
      << error;
  EXPECT_TRUE(join_here(h, &loaded, &start, &agent));
  agent.reset();
  ::unsetenv("STATE_DIRECTORY");
}

// A second sluiced under the same node name (it joined from its kept copy
// while etcd was away, or the first was paused past its lease): the first
// record stays, and the edge that finds its name held does not publish over
// it; it holds its shares as an edge out of sync does, and says why.
TEST(FleetAgent, AnEdgeWhoseNodeNameAnotherLiveEdgeHoldsDoesNotOverwriteIt) {
  SLUICE_REQUIRE_ETCD();
  JoinedEdge e;
  ASSERT_TRUE(join_edge(24790, &e));
  test::ControlHarness& h = *e.h;
  FleetAgent& agent = *e.agent;
  const FleetStart& start = e.start;
  std::string error;
  EtcdClient c({e.etcd->url()}, std::chrono::milliseconds(2000));
  const std::string key = "/sluice/agent-test/edges/edge-a";
  auto holder = [&] {
    std::vector<EtcdKv> kvs;
    std::string e;
    if (!c.range(key, false, &kvs, nullptr, &e) || kvs.empty()) return std::string();
    return json::parse(kvs[0].value).value("instance", std::string());
  };
  ASSERT_TRUE(within_10s([&] { return holder() == start.instance; }));
  ASSERT_TRUE(within_10s([&] { return !agent.figures().static_shares; }));

  // Another instance takes the name under a lease of its own.
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(30, &lease, &error)) << error;
  const json intruder = {{"node", "edge-a"},
                         {"instance", "elsewhere:/etc/sluice/sluice.toml"},
                         {"demand", json::object()},
                         {"shares", json::object()},
                         {"generation", 0}};
  ASSERT_TRUE(c.put(key, intruder.dump(), lease, nullptr, &error)) << error;
  ASSERT_TRUE(within_10s([&] { return agent.figures().static_shares; }));
  const json status = h.call({{"op", "status"}});
  EXPECT_NE(status["fleet"]
                .value("sync_error", std::string())
                .find("held by a live edge at "
                      "elsewhere:"),
            std::string::npos)
      << status["fleet"].dump();
  EXPECT_TRUE(agent.figures().etcd_up);
  // Ten syncs later the other's record is still there.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(holder(), "elsewhere:/etc/sluice/sluice.toml");

  // It goes (its lease revoked): this edge publishes again and is in sync.
  ASSERT_TRUE(c.lease_revoke(lease, &error)) << error;
  ASSERT_TRUE(within_10s([&] { return holder() == start.instance; }));
  ASSERT_TRUE(within_10s([&] { return !agent.figures().static_shares; }));
  EXPECT_TRUE(h.call({{"op", "status"}})["fleet"]["sync_error"].is_null());
}

// The record of an edge's refusal of `revision`, as sluicectl --fleet reads
// it: the error, or "" while its record names no refusal of it.
std::string refusal_of(EtcdClient& c, int64_t revision) {
  std::vector<EtcdKv> kvs;
  std::string e;
  if (!c.range("/sluice/agent-test/edges/edge-a", false, &kvs, nullptr, &e) || kvs.empty())
    return "";
  const json r = json::parse(kvs[0].value);
  if (!r.contains("refused") || r["refused"].value("generation", int64_t{0}) != revision) return "";
  return r["refused"].value("error", std::string("?"));
}

// A fleet config that is not valid here, written past sluicectl's checks (a
// class name twice) on top of `base`: its revision.
int64_t write_invalid_config(EtcdClient& c, const FleetConfig& fleet, FleetRecord base) {
  base.config += "\n[[class]]\nname = \"citizen\"\npriority = 4\n";
  base.op = "apply";
  bool swapped = false;
  int64_t revision = 0;
  std::string note;
  if (!write_fleet_record(c, fleet, base, base.revision, &swapped, &revision, &note) || !swapped)
    return 0;
  return revision;
}

// A fleet config this edge refuses: it keeps what it runs, and its record
// says which generation it refused and why, for sluicectl --fleet to report.
TEST(FleetAgent, ARefusedFleetConfigIsInTheEdgesRecordForSluicectl) {
  SLUICE_REQUIRE_ETCD();
  JoinedEdge e;
  ASSERT_TRUE(join_edge(24792, &e));
  test::ControlHarness& h = *e.h;
  FleetAgent& agent = *e.agent;
  const FleetStart& start = e.start;
  const LoadResult& loaded = e.loaded;
  std::string error;
  const uint64_t before = h.state().generation();

  EtcdClient c({e.etcd->url()}, std::chrono::milliseconds(2000));
  const int64_t revision = write_invalid_config(c, *loaded.config->fleet, start.record);
  ASSERT_NE(revision, 0);
  std::string error_text;
  ASSERT_TRUE(within_10s([&] {
    error_text = refusal_of(c, revision);
    return !error_text.empty();
  }));
  EXPECT_NE(error_text.find("citizen"), std::string::npos) << error_text;
  EXPECT_EQ(h.state().generation(), before) << "it keeps what it runs";
  const FleetReach reach = fleet_wait(*loaded.config->fleet, revision, 5000, &error);
  EXPECT_TRUE(reach.behind.empty());
  ASSERT_EQ(reach.refused.count("edge-a"), 1U);
  EXPECT_EQ(reach.refused.at("edge-a"), error_text);

  // A damaged record (fields of other types) is an edge behind, not an
  // exception, for sluicectl and for this edge's agent alike.
  const json damaged = {{"node", "edge-b"},      {"instance", 5},
                        {"generation", "new"},   {"refused", {{"error", 7}}},
                        {"demand", "lots"},      {"before", {{"demand", 3}, {"unix_ms", 1.0}}},
                        {"unix_ms", "yesterday"}};
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(30, &lease, &error)) << error;
  ASSERT_TRUE(c.put("/sluice/agent-test/edges/edge-b", damaged.dump(), lease, nullptr, &error));
  const FleetReach with_damaged = fleet_wait(*loaded.config->fleet, revision, 100, &error);
  EXPECT_EQ(with_damaged.behind, std::vector<std::string>{"edge-b"});
  EXPECT_TRUE(within_10s([&] { return agent.figures().edges_live == 2; }))
      << "the agent goes on syncing, the damaged record one more edge";
}

// An edge that went away may still enforce its last shares from its pinned
// program: its hold (PREFIX/held/NODE) outlives its record by static_sec,
// and every edge counts it, one that joins after the edge went too. Before,
// only edges that had seen its record held its share, in memory: an edge
// that started meanwhile split the whole budget.
TEST(FleetAgent, AnEdgeThatJoinsLaterCountsWhatAGoneEdgeMayStillEnforce) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  testing::EtcdProcess etcd(24794);
  ASSERT_TRUE(etcd.ready());
  EtcdClient c({etcd.url()}, std::chrono::milliseconds(2000));
  std::string error;
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(30, &lease, &error)) << error;
  const json gone = {{"node", "edge-gone"},
                     {"instance", "gone:/etc/sluice/sluice.toml"},
                     {"shares", {{"boundary_lookups", {{"rate", 30000}, {"burst", 3000}}}}}};
  ASSERT_TRUE(c.put("/sluice/agent-test/held/edge-gone", gone.dump(), lease, nullptr, &error));

  test::ControlHarness h(member_config(24794));
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  ASSERT_TRUE(join_here(h, &loaded, &start, &agent));
  EXPECT_EQ(start.edges, 2U) << "the gone edge is one of the fleet's until its hold ends";

  // 40000/s less the 30000 the gone edge holds.
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 10000; }))
      << boundary_rate(h.dataplane());
  // In the same status read as the share: the live edge and the held one
  // it was split with.
  const json status = status_with_share(h, 10000);
  ASSERT_FALSE(status.is_null()) << h.call({{"op", "status"}})["fleet"].dump();
  EXPECT_EQ(status["fleet"]["edges_live"], 1) << status["fleet"].dump();
  EXPECT_EQ(status["fleet"]["edges_held"], 1) << status["fleet"].dump();
  // Its own hold says what it enforces, under a lease of its own.
  auto own_hold = [&](EtcdKv* kv) {
    std::vector<EtcdKv> kvs;
    std::string e;
    if (!c.range("/sluice/agent-test/held/edge-a", false, &kvs, nullptr, &e) || kvs.empty())
      return false;
    *kv = kvs[0];
    return true;
  };
  EtcdKv hold;
  auto own_hold_rate = [&] {
    return own_hold(&hold) ? json::parse(hold.value)["shares"]["boundary_lookups"].value("rate", 0)
                           : -1;
  };
  ASSERT_TRUE(within_10s([&] { return own_hold_rate() == 10000; })) << hold.value;
  EXPECT_NE(hold.lease, 0);
  // Its own hold saying other shares (an etcd restored from an older
  // snapshot, or a hand's write): written again at the next sync.
  int64_t other_lease = 0;
  ASSERT_TRUE(c.lease_grant(30, &other_lease, &error)) << error;
  ASSERT_TRUE(c.put("/sluice/agent-test/held/edge-a", gone_hold("edge-a", 5).dump(), other_lease,
                    nullptr, &error));
  EXPECT_TRUE(within_10s([&] { return own_hold_rate() == 10000; })) << hold.value;

  // The gone edge's hold ends: its share is free.
  ASSERT_TRUE(c.lease_revoke(lease, &error)) << error;
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 40000; }))
      << boundary_rate(h.dataplane());
  // The sync that applied the share then updates its figures.
  EXPECT_TRUE(within_10s([&] { return h.call({{"op", "status"}})["fleet"]["edges_held"] == 0; }));

  // A clean stop: the record goes at once, the hold stays for static_sec.
  agent.reset();
  std::vector<EtcdKv> record;
  ASSERT_TRUE(c.range("/sluice/agent-test/edges/edge-a", false, &record, nullptr, &error));
  EXPECT_TRUE(record.empty());
  ASSERT_TRUE(own_hold(&hold));
  EXPECT_EQ(json::parse(hold.value)["shares"]["boundary_lookups"].value("rate", 0), 40000);
  ::unsetenv("STATE_DIRECTORY");
}

// An edge gone before an etcd outage long enough that every edge fell to
// even shares (1/N) may have fallen to them too and died meanwhile: its
// hold, written before the outage, says less than its pinned program then
// enforces, and it could not write another while etcd was away. Back in
// sync, this edge counts it at the even share at least until it writes
// again or its hold ends. Before, it counted the hold's 2000 at once, and a
// fleet check (an edge killed in a 30 s outage) ran at 120% of its budget.
TEST(FleetAgent, BackFromAnOutageAnEdgeNotHeardSinceCountsAtAnEvenShare) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  testing::EtcdProcess etcd(24820);
  ASSERT_TRUE(etcd.ready());
  EtcdClient c({etcd.url()}, std::chrono::milliseconds(2000));
  std::string error;
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(120, &lease, &error)) << error;
  auto hold = [&](uint64_t rate) {
    std::string e;
    return c.put("/sluice/agent-test/held/edge-gone", gone_hold("edge-gone", rate).dump(), lease,
                 nullptr, &e);
  };
  ASSERT_TRUE(hold(2000));

  test::ControlHarness h(member_config(24820));
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  ASSERT_TRUE(join_here(h, &loaded, &start, &agent));
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 38000; }))
      << boundary_rate(h.dataplane());

  // etcd hangs past static_sec (1 s): an even share of the 2 edges.
  etcd.pause(true);
  ASSERT_TRUE(within_10s([&] {
    return !agent->figures().etcd_up && boundary_rate(h.dataplane()) == 20000;
  })) << boundary_rate(h.dataplane());
  etcd.pause(false);
  // In sync again, the gone edge counted at that even share: 40000 - 20000.
  json fleet;
  ASSERT_TRUE(within_10s([&] {
    fleet = h.call({{"op", "status"}})["fleet"];
    return fleet["etcd_up"] == true && fleet["static_shares"] == false;
  })) << fleet.dump();
  EXPECT_EQ(fleet["shares"]["boundary_lookups"]["rate"], 20000) << fleet.dump();
  EXPECT_EQ(fleet["edges_held"], 1) << fleet.dump();

  // It writes again (as a restarted edge would): counted as it says.
  ASSERT_TRUE(hold(2000));
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 38000; }))
      << boundary_rate(h.dataplane());
  // Its hold ends: its share is free.
  ASSERT_TRUE(c.lease_revoke(lease, &error)) << error;
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 40000; }))
      << boundary_rate(h.dataplane());
  agent.reset();
  ::unsetenv("STATE_DIRECTORY");
}

// etcd loses the fleet's keys (deleted, their leases intact) while an edge
// is gone but its hold still counts: the running edge writes the hold back
// under its own lease (it ends when it would have), and its own hold too
// (also when that one alone is lost).
// Before, only the config and the rank seed came back: the gone edge's share
// was freed at once while its pinned program could still enforce it (a
// check: 133% of the budget until its hold would have ended).
TEST(FleetAgent, AGoneEdgesHoldEtcdLostIsWrittenBack) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  testing::EtcdProcess etcd(24824);
  ASSERT_TRUE(etcd.ready());
  EtcdClient c({etcd.url()}, std::chrono::milliseconds(2000));
  std::string error;
  int64_t lease = 0;
  ASSERT_TRUE(put_gone_hold(c, 2000, &lease));
  const json gone = gone_hold("edge-gone", 2000);

  test::ControlHarness h(member_config(24824));
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  ASSERT_TRUE(join_here(h, &loaded, &start, &agent));
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 38000; }))
      << boundary_rate(h.dataplane());
  std::vector<EtcdKv> kvs;
  ASSERT_TRUE(within_10s([&] {
    return c.range("/sluice/agent-test/held/edge-a", false, &kvs, nullptr, &error) && !kvs.empty();
  })) << "this edge's own hold";

  ASSERT_TRUE(c.remove("/sluice/agent-test/", true, &error)) << error;
  auto held = [&](const std::string& node) {
    std::vector<EtcdKv> h;
    std::string e;
    return c.range("/sluice/agent-test/held/" + node, false, &h, nullptr, &e) && !h.empty()
               ? std::optional<EtcdKv>(h[0])
               : std::nullopt;
  };
  ASSERT_TRUE(within_10s([&] { return held("edge-gone") && held("edge-a"); }))
      << "both holds written back";
  EXPECT_EQ(held("edge-gone")->lease, lease) << "under its own lease";
  EXPECT_EQ(json::parse(held("edge-gone")->value), gone);
  // Still counted: the share is not freed.
  ASSERT_TRUE(within_10s([&] { return agent->figures().etcd_up; }));
  EXPECT_EQ(boundary_rate(h.dataplane()), 38000U);
  EXPECT_EQ(h.call({{"op", "status"}})["fleet"]["edges_held"], 1);
  // This edge's own hold alone lost (no new config to apply): written again.
  ASSERT_TRUE(c.remove("/sluice/agent-test/held/edge-a", false, &error)) << error;
  EXPECT_TRUE(within_10s([&] { return held("edge-a").has_value(); })) << "its own hold again";

  // An edge that has just died still has a live record (until its lease
  // runs out): its hold is written back too. (A live check: a wipe 2 s
  // after a kill -9 freed the share at once, 157% of the budget.)
  int64_t b_lease = 0, b_hold_lease = 0;
  ASSERT_TRUE(c.lease_grant(60, &b_hold_lease, &error)) << error;
  const json b_hold = gone_hold("edge-b", 5000);
  // Its hold first, then its record: the sync that counts the record live
  // read the hold after it.
  ASSERT_TRUE(c.put("/sluice/agent-test/held/edge-b", b_hold.dump(), b_hold_lease, nullptr, &error))
      << error;
  ASSERT_TRUE(put_edge_b(c, kEdgeB, &b_lease));
  ASSERT_TRUE(within_10s([&] {
    const json f = h.call({{"op", "status"}})["fleet"];
    return f["edges_live"] == 2 && f["etcd_up"] == true;
  }));
  ASSERT_TRUE(c.remove("/sluice/agent-test/", true, &error)) << error;
  ASSERT_TRUE(within_10s([&] { return held("edge-b") && held("edge-gone"); }))
      << "the live edge's hold written back too";
  EXPECT_EQ(held("edge-b")->lease, b_hold_lease) << "under its own lease";
  ASSERT_TRUE(c.lease_revoke(b_hold_lease, &error)) << error;
  ASSERT_TRUE(c.lease_revoke(b_lease, &error)) << error;

  // Its hold ends when it would have: the share is free.
  ASSERT_TRUE(c.lease_revoke(lease, &error)) << error;
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 40000; }))
      << boundary_rate(h.dataplane());
  agent.reset();
  ::unsetenv("STATE_DIRECTORY");
}

// A gone edge's hold deleted while its lease lives (by hand; or etcd lost
// the keys and this edge read it before another wrote the holds back):
// still counted at the shares it had until the lease ends, and said.
// Before, the share was free at the next sync (a check after a wipe: a
// survivor logged a gone edge's hold ended, then counted it again 7 ms
// later, and counted live survivors whose records were not back as gone).
TEST(FleetAgent, AnEdgesKeysDeletedWhileItsLeasesLiveStillCount) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  testing::EtcdProcess etcd(24828);
  ASSERT_TRUE(etcd.ready());
  EtcdClient c({etcd.url()}, std::chrono::milliseconds(2000));
  std::string error;
  int64_t lease = 0;
  ASSERT_TRUE(put_gone_hold(c, 2000, &lease));

  test::ControlHarness h(member_config(24828));
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  ASSERT_TRUE(join_here(h, &loaded, &start, &agent));
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 38000; }))
      << boundary_rate(h.dataplane());
  // Syncs that read etcd after `t` (ms): this edge's record, published at
  // each sync's start, says a time 3 syncs (of 50 ms) later.
  auto synced_after = [&](double t) {
    return within_10s([&] {
      std::vector<EtcdKv> kvs;
      std::string e;
      return c.range("/sluice/agent-test/edges/edge-a", false, &kvs, nullptr, &e) && !kvs.empty() &&
             json::parse(kvs[0].value).value("unix_ms", 0.0) > t + 150;
    });
  };
  const double deleted_ms =
      std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  ASSERT_TRUE(c.remove("/sluice/agent-test/held/edge-gone", false, &error)) << error;
  ASSERT_TRUE(synced_after(deleted_ms));
  EXPECT_EQ(boundary_rate(h.dataplane()), 38000U) << "its share is not free while its lease lives";
  EXPECT_EQ(h.call({{"op", "status"}})["fleet"]["edges_held"], 1);

  // Its lease ends: the share is free.
  ASSERT_TRUE(c.lease_revoke(lease, &error)) << error;
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 40000; }))
      << boundary_rate(h.dataplane());
  EXPECT_EQ(h.call({{"op", "status"}})["fleet"]["edges_held"], 0);
  agent.reset();
  ::unsetenv("STATE_DIRECTORY");
}

// A restart while etcd is away (sluiced stopped cleanly, started again): the
// shares it enforced when it stopped, until static_sec has passed since its
// last sync, then an even share, as the running edge would have; a start
// after that: an even share at once. Before, an even share at once: a cold
// edge's 2000 of 40000/s went to 20000 while the others kept theirs (the
// fleet over its budget for up to static_sec).
TEST(FleetAgent, ARestartWhileEtcdIsAwayKeepsItsSharesUntilStaticSec) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  auto etcd = std::make_unique<testing::EtcdProcess>(24832);
  ASSERT_TRUE(etcd->ready());
  EtcdClient c({etcd->url()}, std::chrono::milliseconds(2000));
  // (4 s: the stop, etcd's, and the start here must come within it.)
  test::ControlHarness h(member_config_static(24832, 4));
  LoadResult loaded;
  ASSERT_TRUE(join_cold_and_stop(c, h, &loaded));
  etcd.reset();

  std::string error;
  FleetStart again;
  ASSERT_TRUE(rejoin(h, loaded, &again));
  EXPECT_TRUE(again.from_cache);
  EXPECT_TRUE(again.kept_sync.has_value()) << again.log;
  EXPECT_NE(again.log.find("the shares of this edge's last sync"), std::string::npos) << again.log;
  ASSERT_TRUE(again.shares.boundary_lookups.has_value());
  EXPECT_EQ(again.shares.boundary_lookups->rate, 2000U);
  ASSERT_TRUE(h.state().set_shares(again.shares, &error)) << error;
  auto agent = std::make_unique<FleetAgent>(*loaded.config->fleet, h.state(), again);
  EXPECT_TRUE(agent->figures().static_shares);
  EXPECT_EQ(boundary_rate(h.dataplane()), 2000U);
  // static_sec (4 s) after its last sync it falls as a running edge does:
  // 1/2, raised 2 s later.
  ASSERT_TRUE(test::eventually([&] { return boundary_rate(h.dataplane()) == 20000; },
                               std::chrono::seconds(20)))
      << boundary_rate(h.dataplane());
  agent.reset();

  // The copy says a last sync longer than static_sec ago: an even share.
  const std::string path = state.path() + "/fleet-edge-a.json";
  json kept = json::parse(std::ifstream(path));
  ASSERT_TRUE(kept.contains("stopped")) << kept.dump();
  kept["stopped"]["last_sync_unix_ms"] = kept["stopped"]["last_sync_unix_ms"].get<double>() - 10000;
  std::ofstream(path) << kept.dump();
  FleetStart late;
  ASSERT_TRUE(rejoin(h, loaded, &late));
  EXPECT_FALSE(late.kept_sync.has_value()) << late.log;
  ASSERT_TRUE(late.shares.boundary_lookups.has_value());
  EXPECT_EQ(late.shares.boundary_lookups->rate, 20000U);
  ::unsetenv("STATE_DIRECTORY");
}

// A crash while etcd is away (its shares and last sync kept when the outage
// began, as a clean stop keeps them) and a start meanwhile: that sync's
// shares until static_sec, as for a clean stop. Before, 1/N at once: the
// cold edge's 2000 of 40000/s went to 20000 while the others kept theirs.
TEST(FleetAgent, ACrashWhileEtcdIsAwayKeepsItsSharesUntilStaticSec) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  auto etcd = std::make_unique<testing::EtcdProcess>(24844);
  ASSERT_TRUE(etcd->ready());
  EtcdClient c({etcd->url()}, std::chrono::milliseconds(2000));
  test::ControlHarness h(member_config_static(24844, 30));
  LoadResult loaded;
  std::unique_ptr<FleetAgent> agent;
  ASSERT_TRUE(join_cold_and_stop(c, h, &loaded, &agent));
  etcd.reset();
  ASSERT_TRUE(within_10s([&] { return !agent->figures().etcd_up; }));
  // A crash: the copy as it stands, without what a clean stop writes.
  const std::string path = state.path() + "/fleet-edge-a.json";
  const std::string at_crash = test::read_text(path);
  agent.reset();
  std::ofstream(path) << at_crash;

  FleetStart again;
  ASSERT_TRUE(rejoin(h, loaded, &again));
  EXPECT_TRUE(again.from_cache);
  EXPECT_TRUE(again.kept_sync.has_value()) << again.log << "\n" << at_crash;
  ASSERT_TRUE(again.shares.boundary_lookups.has_value());
  EXPECT_EQ(again.shares.boundary_lookups->rate, 2000U);
  ::unsetenv("STATE_DIRECTORY");
}

// A clean restart while its hold lives (static_sec after the stop) starts
// with the hold's shares, what the other edges count for it, until its
// first sync. Before, 1/N: a cold edge over its share for a sync or so,
// the fleet over its budget by 1/N less its share. Its first record says
// so, as any start's (AnEdgesFirstRecordCountsAtTheSharesItEnforces). Out of sync from
// the start, it falls when its hold ends, as the others free the hold's
// shares (before, static_sec after the start). Once the hold has ended,
// the others count nothing for it: 1/N at once.
TEST(FleetAgent, ARestartWhileItsHoldLivesStartsWithTheHoldsShares) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  auto etcd = std::make_unique<testing::EtcdProcess>(24836);
  ASSERT_TRUE(etcd->ready());
  EtcdClient c({etcd->url()}, std::chrono::milliseconds(2000));
  // A sync a second: its first record is not missed by a 10 ms poll.
  std::string text = member_config_static(24836, 30);
  text.replace(text.find("sync_ms = 50"), 12, "sync_ms = 1000");
  test::ControlHarness h(text);
  LoadResult loaded;
  ASSERT_TRUE(join_cold_and_stop(c, h, &loaded));  // its hold stays for static_sec

  std::string error;
  FleetStart again;
  ASSERT_TRUE(rejoin(h, loaded, &again));
  EXPECT_FALSE(again.from_cache);
  EXPECT_TRUE(again.held);
  EXPECT_NE(again.log.find("the shares of this node's hold"), std::string::npos) << again.log;
  EXPECT_GE(again.hold_ttl_sec, 25);
  EXPECT_LE(again.hold_ttl_sec, 30);
  EXPECT_EQ(again.edges, 2U);
  ASSERT_TRUE(again.shares.boundary_lookups.has_value());
  EXPECT_EQ(again.shares.boundary_lookups->rate, 2000U);
  EXPECT_EQ(again.shares.edges, 2U) << "a budget the hold lacks: 1/2 of it";
  ASSERT_TRUE(h.state().set_shares(again.shares, &error)) << error;
  auto agent = std::make_unique<FleetAgent>(*loaded.config->fleet, h.state(), again);
  EXPECT_EQ(boundary_rate(h.dataplane()), 2000U);
  // Its first record says it has measured no demand yet, and the hold's
  // shares: what the others count for it, for that sync too.
  EtcdKv first;
  ASSERT_TRUE(first_record(c, &first));
  EXPECT_EQ(first.create_revision, first.mod_revision) << "its first record";
  const json record = json::parse(first.value);
  EXPECT_EQ(record.value("warming", false), true) << first.value;
  EXPECT_EQ(record["shares"]["boundary_lookups"].value("rate", 0), 2000) << first.value;
  EXPECT_EQ(boundary_rate(h.dataplane()), 2000U);
  EXPECT_TRUE(back_in_sync(h));
  agent.reset();

  // Its hold ended (its lease revoked): 1/2.
  std::vector<EtcdKv> hold;
  ASSERT_TRUE(c.range("/sluice/agent-test/held/edge-a", false, &hold, nullptr, &error)) << error;
  ASSERT_FALSE(hold.empty());
  ASSERT_TRUE(c.lease_revoke(hold[0].lease, &error)) << error;
  FleetStart late;
  ASSERT_TRUE(rejoin(h, loaded, &late));
  EXPECT_FALSE(late.held);
  ASSERT_TRUE(late.shares.boundary_lookups.has_value());
  EXPECT_EQ(late.shares.boundary_lookups->rate, 20000U);

  // A hold in its last 2 s, and etcd gone before the first sync: 1/2
  // once the hold has ended (and the raise's delay, 8 syncs), not 30 s on.
  int64_t short_lease = 0;
  ASSERT_TRUE(c.lease_grant(2, &short_lease, &error)) << error;
  ASSERT_TRUE(c.put("/sluice/agent-test/held/edge-a", gone_hold("edge-a", 2000).dump(), short_lease,
                    nullptr, &error));
  FleetStart ending;
  ASSERT_TRUE(rejoin(h, loaded, &ending));
  EXPECT_TRUE(ending.held);
  EXPECT_LE(ending.hold_ttl_sec, 2);
  ASSERT_TRUE(h.state().set_shares(ending.shares, &error)) << error;
  agent = std::make_unique<FleetAgent>(*loaded.config->fleet, h.state(), ending);
  etcd.reset();
  EXPECT_EQ(boundary_rate(h.dataplane()), 2000U);
  EXPECT_TRUE(test::eventually([&] { return boundary_rate(h.dataplane()) == 20000; },
                               std::chrono::seconds(20)))
      << boundary_rate(h.dataplane());
  agent.reset();
  ::unsetenv("STATE_DIRECTORY");
}

// An edge's first record, before it has measured any demand, says so
// ("warming"): every edge counts it at the shares it enforces for that sync,
// and it keeps them too. Before, a record of no demand: the split left a new
// or restarted edge its floor share for two syncs (a live check: 16/s where
// 1/N was 166 and its demand's share 61).
TEST(FleetAgent, AnEdgesFirstRecordCountsAtTheSharesItEnforces) {
  SLUICE_REQUIRE_ETCD();
  std::string error;
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  testing::EtcdProcess etcd(24848);
  ASSERT_TRUE(etcd.ready());
  EtcdClient c({etcd.url()}, std::chrono::milliseconds(2000));
  int64_t lease = 0;
  ASSERT_TRUE(put_edge_b(c, kEdgeB, &lease));
  // A sync a second: its first record is not missed by a 10 ms poll.
  std::string text = member_config(24848);
  text.replace(text.find("sync_ms = 50"), 12, "sync_ms = 1000");
  test::ControlHarness h(text);
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  ASSERT_TRUE(join_here(h, &loaded, &start, &agent));
  EtcdKv first;
  ASSERT_TRUE(first_record(c, &first));
  EXPECT_EQ(first.create_revision, first.mod_revision) << "its first record";
  EXPECT_EQ(json::parse(first.value).value("warming", false), true) << first.value;
  EXPECT_EQ(boundary_rate(h.dataplane()), 20000U) << "1/2 through its first sync";
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 2000; }))
      << boundary_rate(h.dataplane());

  // Another edge's first record: counted at the 30000 it says it enforces
  // (this edge 40000 less that), not by its demand (this edge 2000).
  json warming = kEdgeB;
  warming["warming"] = true;
  warming["shares"] = {{"boundary_lookups", {{"rate", 30000}, {"burst", 3000}}}};
  ASSERT_TRUE(put_edge_b(c, warming, &lease));
  EXPECT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 10000; }))
      << boundary_rate(h.dataplane());
  ASSERT_TRUE(put_edge_b(c, kEdgeB, &lease));
  EXPECT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 2000; }))
      << boundary_rate(h.dataplane());

  // A start (its hold ended) whose demand's share is above 1/2: it raises
  // nothing at the sync after its first record, whose 1/2 the others count
  // until they read the next; the sync after that, it does. Every record
  // says the shares in force when it was written.
  agent.reset();
  std::vector<EtcdKv> hold;
  ASSERT_TRUE(c.range("/sluice/agent-test/held/edge-a", false, &hold, nullptr, &error));
  ASSERT_FALSE(hold.empty());
  ASSERT_TRUE(c.lease_revoke(hold[0].lease, &error)) << error;
  FleetStart again;
  ASSERT_TRUE(rejoin(h, loaded, &again));
  ASSERT_FALSE(again.held);
  ASSERT_TRUE(h.state().set_shares(again.shares, &error)) << error;
  agent = std::make_unique<FleetAgent>(*loaded.config->fleet, h.state(), again);
  std::vector<json> records;  // from its first (warming) one, in order
  int64_t seen_revision = 0;
  uint32_t fed = 0;
  ASSERT_TRUE(within_10s([&] {
    for (int i = 0; i < 300; i++, fed++)  // ~30000 lookups/s against edge-b's 1000
      h.dataplane().feed(test::syn_v4(test::kNet198_18 + 0x20000 + fed % 60000),
                         2'000'000'000ULL + fed);
    std::vector<EtcdKv> kvs;
    std::string e;
    if (!c.range("/sluice/agent-test/edges/edge-a", false, &kvs, nullptr, &e) || kvs.empty() ||
        kvs[0].mod_revision == seen_revision)
      return false;
    seen_revision = kvs[0].mod_revision;
    const json r = json::parse(kvs[0].value);
    if (!records.empty() || r.value("warming", false)) records.push_back(r);
    return records.size() >= 4;
  }));
  auto said = [&](std::size_t i) {
    return records[i]["shares"]["boundary_lookups"].value("rate", 0);
  };
  EXPECT_EQ(said(0), 20000);
  EXPECT_EQ(said(1), 20000) << "its first sync kept 1/2";
  EXPECT_EQ(said(2), 20000) << "the sync after it raised nothing: " << records[2].dump();
  EXPECT_GT(said(3), 20000) << "then its demand's share: " << records[3].dump();
  agent.reset();
  ::unsetenv("STATE_DIRECTORY");
}

// An edge whose writes reach etcd while its reads do not (a slow or
// filtered link; here its etcd user may write the fleet's keys but not read
// them): out of sync for static_sec, it raises its share to 1/N, and tells
// the fleet: its hold says that share and its record is gone, so the
// others count it as a gone edge at 1/N; a hold etcd did not take at first
// is tried again first thing every sync, and meanwhile its record is
// neither kept alive nor written again: it lapses. It publishes again once
// it reads etcd. Before, its record, kept alive, went on saying its
// demand's share (a check: 61/s while it enforced 166, the fleet at 120% of
// its budget), and on a slow link the record's writes went first.
TEST(FleetAgent, AnEdgeThatWritesButCannotReadStandsAsideAtItsEvenShare) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  testing::EtcdProcess etcd(24822);
  ASSERT_TRUE(etcd.ready());
  const std::string ctl = "ETCDCTL_API=3 etcdctl --endpoints=" + etcd.url() + " ";
  const std::string log = " >>'" + (etcd.dir() / "etcdctl.log").string() + "' 2>&1";
  auto etcdctl = [&](const std::string& step) {
    return std::system((ctl + step + log).c_str()) == 0;
  };
  for (const std::string& step :
       {"user add root:root-password --interactive=false", "role add root",
        "user grant-role root root", "user add edge:edge-password --interactive=false",
        "role add edge", "role grant-permission edge readwrite --prefix=true /sluice/agent-test/",
        "user grant-role edge edge", "auth enable"})
    ASSERT_TRUE(etcdctl(step)) << step;
  const std::string as_root = "--user root:root-password ";
  test::TempDir dir;
  std::ofstream(dir.path() + "/root") << "root-password\n";
  std::ofstream(dir.path() + "/edge") << "edge-password\n";
  EtcdAccessConfig root;
  root.user = "root";
  root.password_file = dir.path() + "/root";
  EtcdClient c({etcd.url()}, std::chrono::milliseconds(2000), root);
  int64_t lease = 0;
  ASSERT_TRUE(put_edge_b(c, kEdgeB, &lease));

  test::ControlHarness h(member_config(24822) + "etcd_user = \"edge\"\netcd_password_file = \"" +
                         dir.path() + "/edge\"\n");
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  ASSERT_TRUE(join_here(h, &loaded, &start, &agent));
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 2000; }))
      << boundary_rate(h.dataplane());
  // What the fleet reads of this edge: its record (or none) and its hold.
  auto record_and_hold = [&](bool* record, uint64_t* hold) {
    std::vector<EtcdKv> kvs;
    std::string e;
    if (!c.range("/sluice/agent-test/edges/edge-a", false, &kvs, nullptr, &e)) return false;
    *record = !kvs.empty();
    if (!c.range("/sluice/agent-test/held/edge-a", false, &kvs, nullptr, &e) || kvs.empty())
      return false;
    *hold = json::parse(kvs[0].value)["shares"]["boundary_lookups"].value("rate", 0);
    return true;
  };
  bool record = false;
  uint64_t hold = 0;
  ASSERT_TRUE(within_10s([&] { return record_and_hold(&record, &hold) && record && hold == 2000; }))
      << record << " " << hold;

  // Its user may write its record, not its hold, and read nothing: it
  // falls to 1/N without telling the fleet (its hold cannot be written),
  // and lets its record lapse (lease_ttl_sec, 3 s), writable as it is.
  ASSERT_TRUE(etcdctl(as_root + "role revoke-permission edge --prefix=true /sluice/agent-test/"));
  ASSERT_TRUE(etcdctl(as_root +
                      "role grant-permission edge write --prefix=true /sluice/agent-test/edges/"));
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 20000; }))
      << boundary_rate(h.dataplane());
  ASSERT_TRUE(within_10s([&] { return record_and_hold(&record, &hold) && !record; }))
      << "its record, saying the demand's share, lapses";
  EXPECT_EQ(hold, 2000U);
  json fleet = h.call({{"op", "status"}})["fleet"];
  EXPECT_EQ(fleet["hold_pending"], true) << fleet.dump();
  EXPECT_EQ(fleet["stood_aside"], false) << fleet.dump();
  // Its hold may be written now (the fleet's keys, not read): it tries again
  // every sync, and stands aside.
  ASSERT_TRUE(
      etcdctl(as_root + "role grant-permission edge write --prefix=true /sluice/agent-test/"));
  ASSERT_TRUE(within_10s([&] { return record_and_hold(&record, &hold) && hold == 20000; }))
      << "its hold says the even share it enforces: " << hold;
  EXPECT_FALSE(record) << "its record stays gone: the others count its hold";
  EXPECT_EQ(boundary_rate(h.dataplane()), 20000U);
  ASSERT_TRUE(within_10s([&] {
    fleet = h.call({{"op", "status"}})["fleet"];
    return fleet["stood_aside"] == true;
  })) << fleet.dump();
  EXPECT_EQ(fleet["hold_pending"], false) << fleet.dump();

  // It reads etcd again: its record back, and its demand's share (edge-b
  // writing its record as a live edge does, every look: one not heard since
  // this edge came back counts at the even share, FleetAgent.BackFrom...).
  ASSERT_TRUE(etcdctl(as_root + "role revoke-permission edge --prefix=true /sluice/agent-test/"));
  ASSERT_TRUE(
      etcdctl(as_root + "role grant-permission edge readwrite --prefix=true /sluice/agent-test/"));
  ASSERT_TRUE(within_10s([&] {
    return put_edge_b(c, kEdgeB, &lease) && boundary_rate(h.dataplane()) == 2000 &&
           record_and_hold(&record, &hold) && record && hold == 2000;
  })) << boundary_rate(h.dataplane())
      << " " << record << " " << hold;
  fleet = h.call({{"op", "status"}})["fleet"];
  EXPECT_EQ(fleet["stood_aside"], false) << fleet.dump();
  EXPECT_EQ(fleet["hold_pending"], false) << fleet.dump();
  agent.reset();
  ::unsetenv("STATE_DIRECTORY");
}

// A refusal can pass (a dataplane that could not take a change for a while):
// the edge tries the refused revision again, and runs it once it can.
// Before, a refused revision was never tried again.
TEST(FleetAgent, ARevisionRefusedForAWhileIsAppliedOnceTheDataplaneTakesIt) {
  SLUICE_REQUIRE_ETCD();
  JoinedEdge e;
  ASSERT_TRUE(join_edge(24796, &e));
  test::ControlHarness& h = *e.h;
  ASSERT_TRUE(within_10s([&] { return !e.agent->figures().static_shares; }));
  EtcdClient c({e.etcd->url()}, std::chrono::milliseconds(2000));
  h.dataplane().set_refusing(true);
  const json r = fleet_request(
      *e.loaded.config->fleet,
      {{"op", "set"},
       {"settings", json::array({json::array({"boundary.lookups_per_sec", "30000"})})}},
      {{"transport", "test"}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  const int64_t revision = r["generation"];
  ASSERT_TRUE(within_10s([&] { return !refusal_of(c, revision).empty(); }));
  EXPECT_NE(refusal_of(c, revision).find("refused by the fake dataplane"), std::string::npos);
  EXPECT_NE(h.state().generation(), static_cast<uint64_t>(revision));
  // Status on the box says so too (before, it said in sync).
  EXPECT_FALSE(
      fleet_error_naming(h, "refuses the fleet config of generation " + std::to_string(revision))
          .is_null())
      << h.call({{"op", "status"}})["fleet"].dump();
  // Tried again (after 1 s), the retry neither logged nor
  // counted as another rejected change.
  ASSERT_TRUE(within_10s([&] { return h.dataplane().refused_changes() >= 2; }));
  EXPECT_EQ(h.state().figures().changes_rejected, 1U);

  h.dataplane().set_refusing(false);
  ASSERT_TRUE(
      within_10s([&] { return h.state().generation() == static_cast<uint64_t>(revision); }));
  EXPECT_EQ(h.state().config().boundary.lookups_per_sec, 30000U);
  EXPECT_TRUE(within_10s([&] { return refusal_of(c, revision).empty(); }))
      << "its record no longer names the refusal";
  EXPECT_TRUE(back_in_sync(h));
}

// etcd loses the fleet's keys (restored empty) while an edge runs: the edge
// writes back the config it runs and the fleet's rank seed within a sync or
// two, so an edge that starts afterwards joins the same fleet, not one it
// seeds from its own file and seed. Before, nothing was written back.
TEST(FleetAgent, ARunningEdgeSeedsAgainAFleetWhoseConfigEtcdLost) {
  SLUICE_REQUIRE_ETCD();
  JoinedEdge e;
  ASSERT_TRUE(join_edge(24818, &e));
  test::ControlHarness& h = *e.h;
  ASSERT_TRUE(within_10s([&] { return !e.agent->figures().static_shares; }));
  EtcdClient c({e.etcd->url()}, std::chrono::milliseconds(2000));
  std::string error;
  std::vector<EtcdKv> kvs;
  ASSERT_TRUE(c.range("/sluice/agent-test/config", false, &kvs, nullptr, &error)) << error;
  ASSERT_EQ(kvs.size(), 1U);
  const std::string config_before = json::parse(kvs[0].value).value("config", std::string());
  ASSERT_FALSE(config_before.empty());

  ASSERT_TRUE(c.remove("/sluice/agent-test/", true, &error)) << error;
  ASSERT_TRUE(within_10s([&] {
    return c.range("/sluice/agent-test/config", false, &kvs, nullptr, &error) && !kvs.empty();
  })) << error;
  EXPECT_EQ(json::parse(kvs[0].value).value("config", std::string()), config_before);
  EXPECT_EQ(json::parse(kvs[0].value).value("op", std::string()), "seed");
  std::vector<EtcdKv> seed;
  ASSERT_TRUE(c.range("/sluice/agent-test/rank_seed", false, &seed, nullptr, &error)) << error;
  ASSERT_EQ(seed.size(), 1U) << "the rank seed written back";
  EXPECT_EQ(seed[0].value, std::to_string(default_seed()));
  // The edge runs the config written back, as the fleet's newest revision.
  EXPECT_TRUE(within_10s([&] {
    return h.state().generation() == static_cast<uint64_t>(kvs[0].mod_revision);
  })) << h.state().generation()
      << " vs " << kvs[0].mod_revision;
}

// etcd restored from an older snapshot: its revisions went back and it
// holds the fleet config of then. The edge runs that config, as a new
// generation lower than its last, and says so: its log warns, and its audit
// line's op is "fleet restore". Before, the audit called it a "fleet set" by
// whoever had set the old value, and nothing else said.
TEST(FleetAgent, AnEtcdRestoredFromAnOlderSnapshotIsFollowedAndSaidSo) {
  SLUICE_REQUIRE_ETCD();
  JoinedEdge e;
  ASSERT_TRUE(join_edge(24826, &e));
  test::ControlHarness& h = *e.h;
  ASSERT_TRUE(within_10s([&] { return !e.agent->figures().static_shares; }));
  const std::string snapshot = (e.state.path() + "/etcd.snapshot");
  ASSERT_EQ(std::system(("ETCDCTL_API=3 etcdctl --endpoints=" + e.etcd->url() + " snapshot save '" +
                         snapshot + "' >/dev/null 2>&1")
                            .c_str()),
            0);
  EtcdClient c({e.etcd->url()}, std::chrono::milliseconds(2000));
  std::vector<EtcdKv> kvs;
  std::string error;
  ASSERT_TRUE(c.range("/sluice/agent-test/config", false, &kvs, nullptr, &error) && !kvs.empty())
      << error;
  const uint64_t before = static_cast<uint64_t>(kvs[0].mod_revision);  // the snapshot's
  const json r = fleet_request(
      *e.loaded.config->fleet,
      {{"op", "set"},
       {"settings", json::array({json::array({"boundary.lookups_per_sec", "30000"})})}},
      {{"transport", "test"}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  const uint64_t later = r["generation"];
  ASSERT_TRUE(within_10s([&] { return h.state().generation() == later; }));

  e.etcd.reset();
  e.etcd = std::make_unique<testing::EtcdProcess>(24826, nullptr, EtcdAccessConfig{},
                                                  std::vector<std::string>{}, snapshot);
  ASSERT_TRUE(e.etcd->ready());
  ASSERT_TRUE(within_10s([&] { return h.state().generation() == before; }))
      << h.state().generation() << " (the snapshot's " << before << ", later " << later << ")";
  EXPECT_EQ(h.state().config().boundary.lookups_per_sec, 40000U);
  const std::vector<json> audit = test::read_audit(h.audit_path());
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit.back().value("op", std::string()), "fleet restore") << audit.back().dump();
  EXPECT_EQ(audit.back()["new_generation"], before) << audit.back().dump();
  EXPECT_EQ(audit.back()["old_generation"], later) << audit.back().dump();
}

// Shares the dataplane refuses: the sync reached etcd, but this edge does
// not enforce its share, so status says it is not in sync, and why, until
// the shares are taken (tried again at every sync). Before, status said in
// sync while the edge enforced its old, larger share.
TEST(FleetAgent, SharesTheDataplaneRefusesAreASyncErrorUntilTaken) {
  SLUICE_REQUIRE_ETCD();
  JoinedEdge e;
  ASSERT_TRUE(join_edge(24816, &e));
  test::ControlHarness& h = *e.h;
  // Alone: the whole budget.
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) == 40000; }))
      << boundary_rate(h.dataplane());
  ASSERT_TRUE(h.call({{"op", "status"}})["fleet"]["sync_error"].is_null());

  h.dataplane().set_refusing(true);
  // A second edge joins: this edge's share would halve.
  EtcdClient c({e.etcd->url()}, std::chrono::milliseconds(2000));
  int64_t lease = 0;
  ASSERT_TRUE(put_edge_b(c, kEdgeB, &lease));
  const json fleet = fleet_error_naming(
      h, "the dataplane refused this edge's shares: refused by the fake dataplane");
  ASSERT_FALSE(fleet.is_null()) << h.call({{"op", "status"}})["fleet"].dump();
  EXPECT_EQ(fleet["etcd_up"], true);
  EXPECT_EQ(boundary_rate(h.dataplane()), 40000U) << "nothing applied";
  EXPECT_EQ(fleet["shares"]["boundary_lookups"]["rate"], 40000) << "what it enforces";

  h.dataplane().set_refusing(false);
  ASSERT_TRUE(within_10s([&] { return boundary_rate(h.dataplane()) < 40000; }))
      << boundary_rate(h.dataplane());
  EXPECT_TRUE(back_in_sync(h));
}

// A restart while etcd holds a fleet config this edge cannot run: it runs
// the copy it kept, as a running edge keeps what it runs, and reports the
// refusal. Before, sluiced did not start.
TEST(FleetAgent, ARestartingEdgeRunsItsKeptConfigWhenTheFleetsIsNotValidHere) {
  SLUICE_REQUIRE_ETCD();
  JoinedEdge e;
  ASSERT_TRUE(join_edge(24798, &e));
  const int64_t kept = e.start.record.revision;
  e.agent.reset();  // stopped; its copy is kept
  EtcdClient c({e.etcd->url()}, std::chrono::milliseconds(2000));
  const int64_t invalid = write_invalid_config(c, *e.loaded.config->fleet, e.start.record);
  ASSERT_NE(invalid, 0);

  FleetStart again;
  std::string error;
  ASSERT_TRUE(
      fleet_join(*e.loaded.config->fleet, e.h->config_path(), e.loaded.text, &again, &error))
      << error;
  EXPECT_EQ(again.record.revision, kept);
  EXPECT_FALSE(again.from_cache) << "etcd answered";
  EXPECT_NE(again.log.find("does not validate here"), std::string::npos) << again.log;
  EXPECT_NE(again.log.find("citizen"), std::string::npos) << again.log;
  e.agent = std::make_unique<FleetAgent>(*e.loaded.config->fleet, e.h->state(), again);
  ASSERT_TRUE(within_10s([&] { return !refusal_of(c, invalid).empty(); }));
  EXPECT_NE(refusal_of(c, invalid).find("citizen"), std::string::npos);

  // Without a kept copy the edge does not start: nothing valid to run.
  e.agent.reset();
  test::TempDir empty;
  ::setenv("STATE_DIRECTORY", empty.path().c_str(), 1);
  EXPECT_FALSE(
      fleet_join(*e.loaded.config->fleet, e.h->config_path(), e.loaded.text, &again, &error));
  EXPECT_NE(error.find("does not validate here"), std::string::npos) << error;
}

// A member whose etcd speaks only TLS and asks for client certificates:
// the join, the agent's syncs and its watch all go over it with the files
// [fleet] names.
TEST(FleetAgent, AMemberReachesAnEtcdThatSpeaksOnlyTlsWithItsCertificate) {
  SLUICE_REQUIRE_ETCD();
  SLUICE_REQUIRE_OPENSSL();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  const std::filesystem::path pki = state.path();
  ASSERT_TRUE(testing::make_pki(pki));
  const EtcdAccessConfig access = testing::client_access(pki);
  const testing::EtcdTls tls = testing::server_tls(pki);
  testing::EtcdProcess etcd(24800, &tls, access);
  ASSERT_TRUE(etcd.ready());
  std::string config = member_config(24800);
  const std::string http = "http://127.0.0.1:24800";
  config.replace(config.find(http), http.size(), "https://127.0.0.1:24800");
  config += "etcd_ca_file = \"" + access.ca_file + "\"\netcd_cert_file = \"" + access.cert_file +
            "\"\netcd_key_file = \"" + access.key_file + "\"\n";
  test::ControlHarness h(config);
  LoadResult loaded;
  FleetStart start;
  std::unique_ptr<FleetAgent> agent;
  ASSERT_TRUE(join_here(h, &loaded, &start, &agent));
  EXPECT_FALSE(start.from_cache) << start.log;
  ASSERT_TRUE(
      within_10s([&] { return agent->figures().etcd_up && !agent->figures().static_shares; }));
  // A fleet change reaches it through the watch, over TLS too.
  const json r = fleet_request(
      *loaded.config->fleet,
      {{"op", "set"},
       {"settings", json::array({json::array({"boundary.lookups_per_sec", "30000"})})}},
      {{"transport", "test"}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  const uint64_t revision = r["generation"];
  ASSERT_TRUE(within_10s([&] { return h.state().generation() == revision; }));
  ::unsetenv("STATE_DIRECTORY");
}

TEST(FleetAgent, WithoutEtcdAtStartItRunsTheConfigItKeptWithAnEvenShare) {
  SLUICE_REQUIRE_ETCD();
  test::TempDir state;
  ::setenv("STATE_DIRECTORY", state.path().c_str(), 1);
  std::string error;
  {
    testing::EtcdProcess etcd(24770);
    ASSERT_TRUE(etcd.ready());
    test::ControlHarness h(member_config(24770));
    const LoadResult loaded = load_config_file(h.config_path());
    FleetStart start;
    ASSERT_TRUE(fleet_join(*loaded.config->fleet, h.config_path(), loaded.text, &start, &error))
        << error;
    h.state().join_fleet("/sluice/agent-test", "edge-a", start.record.config);
    FleetAgent agent(*loaded.config->fleet, h.state(), start);  // keeps the config
  }
  test::ControlHarness h(member_config(24770));
  const LoadResult loaded = load_config_file(h.config_path());
  FleetStart start;
  ASSERT_TRUE(rejoin(h, loaded, &start));
  EXPECT_TRUE(start.from_cache);
  EXPECT_NE(start.log.find("cannot be reached"), std::string::npos) << start.log;
  EXPECT_EQ(start.shares.boundary_lookups->rate, 40000U);  // 1 edge known
  EXPECT_TRUE(start.rank_seed.has_value());                // kept with the config

  // Nothing kept and no etcd: no config to run.
  test::TempDir empty;
  ::setenv("STATE_DIRECTORY", empty.path().c_str(), 1);
  EXPECT_FALSE(fleet_join(*loaded.config->fleet, h.config_path(), loaded.text, &start, &error));
  EXPECT_NE(error.find("no fleet config is kept"), std::string::npos) << error;
  ::unsetenv("STATE_DIRECTORY");
}

}  // namespace
}  // namespace sluice
