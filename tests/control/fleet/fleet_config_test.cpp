// SPDX-License-Identifier: Apache-2.0
// A fleet member's config: the [fleet] section, the local and fleet tables
// composed into one validated config, and what ControlState does as a
// member (local changes of fleet keys refused, fleet changes applied as the
// fleet's revision, shares applied without a generation).
#include <gtest/gtest.h>

#include "control/api/control_state.hpp"
#include "control/api/json_parse.hpp"
#include "control/config/config_loader.hpp"
#include "control/fleet/fleet_record.hpp"
#include "tests/control/api/control_test_env.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;

const std::string kFleet = R"(
[fleet]
etcd = ["http://127.0.0.1:2379", "http://198.18.0.9:2379", "http://etcd-1.example:2379"]
prefix = "/sluice/city"
node = "edge-a"
)";

std::string first_error(const LoadResult& r) {
  return r.errors.empty() ? "(none)" : r.errors.front().to_string();
}

TEST(FleetConfig, TheSectionIsReadWithItsDefaults) {
  LoadResult r = load_config_string(kFleet, "<t>");
  ASSERT_TRUE(r.ok()) << first_error(r);
  const FleetConfig& f = r.config->fleet.value();
  EXPECT_EQ(f.etcd.size(), 3U);
  EXPECT_EQ(f.prefix, "/sluice/city");
  EXPECT_EQ(f.node, "edge-a");
  EXPECT_EQ(f.lease_ttl_sec, 3U);
  EXPECT_EQ(f.static_sec, 60U);
  EXPECT_EQ(f.sync_ms, 250U);
  EXPECT_EQ(f.floor_pct, 10U);
  EXPECT_FALSE(load_config_string("", "<t>").config->fleet.has_value());
}

TEST(FleetConfig, BadValuesAreErrorsNamingTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[fleet]\nnode = \"a\"\n", "fleet.etcd: missing"},
      {"[fleet]\netcd = [\"http://h:1\"]\n", "fleet.node: missing"},
      {"[fleet]\netcd = []\nnode = \"a\"\n", "fleet.etcd: expected a non-empty list"},
      {"[fleet]\netcd = [\"ftp://h:2379\"]\nnode = \"a\"\n", "fleet.etcd[0]"},
      {"[fleet]\netcd = [\"http://h\"]\nnode = \"a\"\n", "fleet.etcd[0]"},
      {"[fleet]\netcd = [\"http://h:99999\"]\nnode = \"a\"\n", "fleet.etcd[0]"},
      {"[fleet]\netcd = [\"http://h:1\"]\nnode = \"Edge A\"\n", "fleet.node"},
      {"[fleet]\netcd = [\"http://h:1\"]\nnode = \"a\"\nprefix = \"/x/\"\n", "fleet.prefix"},
      {"[fleet]\netcd = [\"http://h:1\"]\nnode = \"a\"\nprefix = \"x\"\n", "fleet.prefix"},
      {"[fleet]\netcd = [\"http://h:1\"]\nnode = \"a\"\nprefix = \"/a//b\"\n", "fleet.prefix"},
      {"[fleet]\netcd = [\"http://h:1\"]\nnode = \"a\"\nprefix = \"/a/../b\"\n", "fleet.prefix"},
      {"[fleet]\netcd = [\"http://h:1\"]\nnode = \"..\"\n", "fleet.node"},
      {"[fleet]\netcd = [\"http://h:1\"]\nnode = \"a\"\ncolour = 1\n", "fleet.colour: unknown"},
  };
  for (const auto& [text, want] : cases) {
    LoadResult r = load_config_string(text, "<t>");
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_NE(first_error(r).find(want), std::string::npos) << text << " -> " << first_error(r);
  }
}

const std::string kLocal = R"([dataplane]
mode = "xdp"
outside = "eth0"
)" + kFleet + R"(
[boundary]
lookups_per_sec = 1
)";

const std::string kFleetTables = R"([boundary]
lookups_per_sec = 900

[[class]]
name = "checkpoint"
priority = 0
match = { dst_ports = 8443 }
)";

TEST(FleetConfig, AMembersConfigIsItsLocalTablesWithTheFleetsTables) {
  LoadResult r = compose_fleet_config(kLocal, "local.toml", kFleetTables, "etcd:/sluice/config");
  ASSERT_TRUE(r.ok()) << first_error(r);
  EXPECT_EQ(r.config->dataplane.outside, "eth0");
  EXPECT_EQ(r.config->fleet->node, "edge-a");
  EXPECT_EQ(r.config->boundary.lookups_per_sec, 900U);  // the fleet's, not the file's 1
  ASSERT_EQ(r.config->classes.size(), 2U);
  EXPECT_EQ(r.config->classes[0].name, "checkpoint");
}

// A fleet change to a key of a table the fleet config lacks is written at
// its top level (`admission = { shadow = true }`): it stays a fleet key,
// never a key of the edge's last local table.
TEST(FleetConfig, ATopLevelKeyOfTheFleetConfigStaysTheFleets) {
  LoadResult r =
      compose_fleet_config(kLocal, "local.toml", "admission = { shadow = true }\n" + kFleetTables,
                           "etcd:/sluice/config");
  ASSERT_TRUE(r.ok()) << first_error(r);
  EXPECT_TRUE(r.config->admission.shadow);
  EXPECT_EQ(r.config->boundary.lookups_per_sec, 900U);
  EXPECT_EQ(r.config->dataplane.outside, "eth0");
}

TEST(FleetConfig, TheFleetConfigMayHoldFleetTablesOnlyAndItsErrorsNameIt) {
  LoadResult r = compose_fleet_config(kLocal, "local.toml",
                                      kFleetTables + "[dataplane]\nmode = \"dpdk\"\n", "etcd:X");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(first_error(r).find("etcd:X"), std::string::npos) << first_error(r);
  EXPECT_NE(first_error(r).find("dataplane: not a fleet table"), std::string::npos)
      << first_error(r);
  r = compose_fleet_config(kLocal, "local.toml", "[boundary]\nlookups_per_sec = 0\n", "etcd:X");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors[0].file, "etcd:X");
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_EQ(r.errors[0].key, "boundary.lookups_per_sec");
}

TEST(FleetConfig, TablesAreSplitIntoTheFleetsAndTheEdgesOwn) {
  const std::string fleet = fleet_tables_text(kLocal);
  const std::string local = local_tables_text(kLocal);
  EXPECT_NE(fleet.find("lookups_per_sec = 1"), std::string::npos);
  EXPECT_EQ(fleet.find("dataplane"), std::string::npos);
  EXPECT_EQ(fleet.find("fleet"), std::string::npos);
  EXPECT_NE(local.find("outside"), std::string::npos);
  EXPECT_NE(local.find("edge-a"), std::string::npos);
  EXPECT_EQ(local.find("boundary"), std::string::npos);
  EXPECT_TRUE(is_fleet_owned_key("class.citizen.rate_per_sec"));
  EXPECT_TRUE(is_fleet_owned_key("boundary.lookups_per_sec"));
  EXPECT_TRUE(is_fleet_owned_key("admission.shadow"));
  EXPECT_FALSE(is_fleet_owned_key("dataplane.mode"));
  EXPECT_FALSE(is_fleet_owned_key("fleet.node"));
}

TEST(FleetRecord, RoundTripsAndRefusesOtherShapes) {
  FleetRecord r;
  r.config = kFleetTables;
  r.profile = "surge";
  r.origin = {{"node", "edge-a"}};
  r.op = "seed";
  std::string error;
  const std::optional<FleetRecord> back = parse_fleet_record(fleet_record_json(r), &error);
  ASSERT_TRUE(back.has_value()) << error;
  EXPECT_EQ(back->config, r.config);
  EXPECT_EQ(back->profile, "surge");
  EXPECT_EQ(back->origin["node"], "edge-a");
  EXPECT_FALSE(parse_fleet_record("[boundary]", &error));
  EXPECT_NE(error.find("not {\"config\""), std::string::npos);
  // An origin nested 30,000 deep (60 KB in etcd): refused, where copying it
  // overflowed the stack of every edge, and again at each restart.
  EXPECT_FALSE(parse_fleet_record(
      "{\"config\": \"\", \"origin\": " + std::string(30000, '[') + std::string(30000, ']') + "}",
      &error));
  // A profile that is no name was taken for "no profile".
  EXPECT_FALSE(parse_fleet_record("{\"config\": \"\", \"profile\": 5}", &error));
  EXPECT_NE(error.find("\"profile\" is not a name"), std::string::npos) << error;
  EXPECT_TRUE(parse_fleet_record("{\"config\": \"\", \"profile\": null}", &error));
}

// Fields of etcd's answers and of the kept fleet file read by type: a
// field of another shape is the fallback, never an exception out of the
// agent's thread.
TEST(FleetRecord, FieldsOfTheWrongTypeFallBack) {
  const nlohmann::json j = {{"succeeded", "yes"}, {"key", 7}, {"edges", -3}, {"ok", true}};
  EXPECT_FALSE(json_field<bool>(j, "succeeded", false));
  EXPECT_EQ(json_field<std::string>(j, "key", "none"), "none");
  EXPECT_EQ(json_field<int64_t>(j, "edges", 1), -3);
  EXPECT_EQ(json_field<int64_t>(j, "missing", 1), 1);
  EXPECT_TRUE(json_field<bool>(j, "ok", false));
  EXPECT_FALSE(json_field<bool>(nlohmann::json::array(), "ok", false));
}

// ---------------------------------------------------------------------------
// ControlState as a fleet member

class FleetMemberTest : public ::testing::Test {
 protected:
  FleetMemberTest() {
    h.state().join_fleet("/sluice/city", "edge-a", fleet_tables_text(h.initial_text()));
  }
  test::ControlHarness h;
};

TEST_F(FleetMemberTest, LocalChangesOfTheFleetsTablesAreRefusedNamingTheFleetCommand) {
  for (const json& request :
       {json{{"op", "set"}, {"settings", {{"boundary.lookups_per_sec", "1"}}}},
        json{{"op", "apply"}, {"config", h.initial_text()}},
        json{{"op", "profile"}, {"name", "surge-1"}}, json{{"op", "shadow"}, {"on", true}},
        json{{"op", "rollback"}}}) {
    const json r = h.call(request);
    EXPECT_FALSE(r["ok"]) << request.dump();
    const std::string error = r["error"];
    EXPECT_NE(error.find("/sluice/city"), std::string::npos) << error;
    EXPECT_NE(error.find("sluicectl --fleet " + request["op"].get<std::string>()),
              std::string::npos)
        << error;
  }
  EXPECT_EQ(h.dataplane().applied().size(), 1U);  // nothing reached the dataplane
  EXPECT_TRUE(h.call({{"op", "status"}})["ok"]);  // reading stays local
}

// A fleet change that turns adaptive off comes frozen at the fleet's learned
// rates (fleet_policy.cpp): an edge applies it as written, not frozen again
// at its own learned rate (its share), and not refused under a profile.
TEST_F(FleetMemberTest, AFleetChangeTurningAdaptiveOffIsNotFrozenAgainByTheEdge) {
  const std::string tables = fleet_tables_text(h.initial_text());
  const LoadResult on = apply_overrides(tables, "<t>", {{"boundary.adaptive", "true"}});
  ASSERT_TRUE(on.ok());
  ASSERT_TRUE(h.state().apply_fleet_config(on.text, "surge-1", 10, json::object(), "set")["ok"]);
  std::string error;
  ASSERT_TRUE(h.state().set_adaptive_rate(1234, &error)) << error;
  const LoadResult off = apply_overrides(on.text, "<t>", {{"boundary.adaptive", "false"}});
  ASSERT_TRUE(off.ok());
  const json r = h.state().apply_fleet_config(off.text, "surge-1", 11, json::object(), "set");
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(h.state().generation(), 11U);
  EXPECT_FALSE(h.state().config().boundary.adaptive);
  EXPECT_EQ(h.state().config().boundary.lookups_per_sec, 30000U);  // the profile's, as written
}

TEST_F(FleetMemberTest, AFleetChangeRunsAsTheFleetsRevisionAndIsAuditedWithItsOrigin) {
  const LoadResult edited = apply_overrides(fleet_tables_text(h.initial_text()), "<t>",
                                            {{"boundary.lookups_per_sec", "900"}});
  ASSERT_TRUE(edited.ok());
  const std::string next = edited.text;
  const json r =
      h.state().apply_fleet_config(next, "", 4711, {{"transport", "sluicectl --fleet"}}, "set");
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(h.state().generation(), 4711U);
  EXPECT_EQ(h.dataplane().applied().back(), 4711U);
  EXPECT_EQ(h.state().config().boundary.lookups_per_sec, 900U);
  EXPECT_EQ(h.state().config().dataplane.outside, "eth0");  // the edge's own, kept
  const std::string audit = test::read_text(h.audit_path());
  EXPECT_NE(audit.find("\"new_generation\":4711"), std::string::npos) << audit;
  EXPECT_NE(audit.find("sluicectl --fleet"), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"node\":\"edge-a\""), std::string::npos) << audit;  // who applied it

  // A fleet config that does not validate here changes nothing.
  const json bad = h.state().apply_fleet_config("[boundary]\nlookups_per_sec = -1\n", "", 4712,
                                                json::object(), "set");
  EXPECT_FALSE(bad["ok"]);
  EXPECT_NE(bad["error"].get<std::string>().find("boundary.lookups_per_sec"), std::string::npos);
  EXPECT_EQ(h.state().generation(), 4711U);
}

TEST_F(FleetMemberTest, SharesChangeTheDataplanesBudgetsButNotTheGeneration) {
  EdgeShares s;
  s.boundary_lookups = BudgetShare{123, 12};
  s.classes["citizen"] = BudgetShare{45, 4};
  std::string error;
  const uint64_t generation = h.state().generation();
  ASSERT_TRUE(h.state().set_shares(s, &error)) << error;
  EXPECT_EQ(h.state().generation(), generation);
  EXPECT_EQ(h.dataplane().applied().back(), generation);
  const sl_profile p = h.dataplane().last_profile();
  EXPECT_EQ(p.boundary_lookups.rate_per_sec, 123U);
  EXPECT_EQ(p.boundary_lookups.cap_nt, 12 * SL_TOKEN);
  EXPECT_EQ(p.classes[1].bucket.rate_per_sec, 45U);  // citizen
  // The config keeps the fleet-wide budgets; history and audit are untouched.
  EXPECT_EQ(h.state().config().boundary.lookups_per_sec, 40000U);
  EXPECT_EQ(h.call({{"op", "history"}})["generations"].size(), 1U);
  EXPECT_EQ(test::read_text(h.audit_path()), "");
  // A fleet change that halves the budget halves this edge's share at once.
  const LoadResult halved =
      apply_overrides(fleet_tables_text(h.initial_text()), "<t>",
                      {{"boundary.lookups_per_sec", "20000"}, {"boundary.lookups_burst", "2000"}});
  ASSERT_TRUE(halved.ok());
  ASSERT_TRUE(h.state().apply_fleet_config(halved.text, "", 900, json::object(), "set")["ok"]);
  EXPECT_EQ(h.dataplane().last_profile().boundary_lookups.rate_per_sec, 61U);  // 123 / 2
  EXPECT_EQ(h.dataplane().last_profile().boundary_lookups.cap_nt, 6 * SL_TOKEN);
  EXPECT_EQ(h.dataplane().last_profile().classes[1].bucket.rate_per_sec, 45U);  // unchanged
  // The same settings again as a later revision: this edge runs that one.
  ASSERT_TRUE(h.state().apply_fleet_config(halved.text + "\n# a comment\n", "", 905, json::object(),
                                           "apply")["ok"]);
  EXPECT_EQ(h.state().generation(), 905U);
  EXPECT_EQ(h.dataplane().applied().back(), 905U);
  // Refused by the dataplane: the shares in force stay.
  h.dataplane().refuse_next_apply();
  EdgeShares other = s;
  other.boundary_lookups = BudgetShare{1, 1};
  EXPECT_FALSE(h.state().set_shares(other, &error));
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace sluice
