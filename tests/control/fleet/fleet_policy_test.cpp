// SPDX-License-Identifier: Apache-2.0
// Policy in etcd (control/fleet/fleet_policy.hpp) against a real etcd: every
// fleet op validated like the local one, written with a compare-and-swap,
// kept in PREFIX/history for rollback.
#include "control/fleet/fleet_policy.hpp"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include <httplib.h>

#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_record.hpp"
#include "tests/control/fleet/etcd_fixture.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;

const std::string kPolicy = R"([boundary]
lookups_per_sec = 1000

[admission]
flow_table_size = 262144

[[class]]
name = "citizen"
priority = 5
match = { dst_ports = 443 }
rate_per_sec = 500

[profiles.surge]
"class.citizen.rate_per_sec" = 100
)";

json settings(const std::string& key, const std::string& value) {
  return json::array({json::array({key, value})});
}

class FleetPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_etcd()) {
      if (std::getenv("CI") != nullptr) FAIL() << "etcd is not installed (etcd-server)";
      GTEST_SKIP() << "etcd is not installed (outside CI)";
    }
    // One etcd per test, on ports of its own: ctest runs tests in parallel.
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const std::map<std::string, int> ports = {
        {"EveryOpIsValidatedWrittenAndKeptForRollback", 24780},
        {"RefusedChangesNameTheKeyAndWriteNothing", 24782},
        {"AChangeComputedFromAnOlderRevisionIsRefused", 24784},
        {"WithoutEtcdTheAnswerSaysUnreachable", 24786},
        {"TurningAdaptiveOffFreezesTheEdgesLearnedRates", 24788},
        {"TurningAdaptiveOffKeepsTheCeilingWhileAnEdgeLearnedNothing", 24802},
        {"AWriteThatCommittedWhileItsAnswerWasLateIsOurs", 24808}};  // and its late member: 24807
    ASSERT_EQ(ports.count(name), 1U) << "give " << name << " ports of its own";
    etcd_ = std::make_unique<testing::EtcdProcess>(ports.at(name));
    ASSERT_TRUE(etcd_->ready());
    fleet_.etcd = {etcd_->url()};
    fleet_.prefix = "/sluice/policy-test";
    fleet_.node = "edge-a";
  }
  json call(const json& request) { return fleet_request(fleet_, request, {{"who", "test"}}); }
  std::string effective_value(const std::string& key) {
    const json r = call({{"op", "get"}});
    const std::string& text = r["config"].get_ref<const std::string&>();
    const std::size_t at = text.find(key + " = ");
    return at == std::string::npos ? "" : text.substr(at, text.find('\n', at) - at);
  }

  std::unique_ptr<testing::EtcdProcess> etcd_;
  FleetConfig fleet_;
};

TEST_F(FleetPolicyTest, EveryOpIsValidatedWrittenAndKeptForRollback) {
  json r = call({{"op", "get"}});
  EXPECT_FALSE(r["ok"]);
  EXPECT_NE(r["error"].get<std::string>().find("has no config yet"), std::string::npos);

  // apply: the fleet tables of a whole file; its own tables are not the fleet's.
  r = call({{"op", "apply"}, {"config", "[dataplane]\noutside = \"eth0\"\n" + kPolicy}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  const int64_t first = r["generation"];
  EXPECT_GT(first, 0);
  EXPECT_NE(r["notes"].dump().find("each edge's own"), std::string::npos);
  r = call({{"op", "get"}});
  EXPECT_EQ(r["generation"], first);
  EXPECT_EQ(r["config"].get<std::string>().find("dataplane"), std::string::npos);

  // set: a new revision is the new generation; a dry run changes nothing.
  r = call({{"op", "set"},
            {"settings", settings("class.citizen.rate_per_sec", "700")},
            {"dry_run", true}});
  ASSERT_TRUE(r["ok"]);
  EXPECT_EQ(r["generation"], first);
  EXPECT_EQ(r["diff"][0]["key"], "class.citizen.rate_per_sec");
  r = call({{"op", "set"}, {"settings", settings("class.citizen.rate_per_sec", "700")}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  const int64_t second = r["generation"];
  EXPECT_GT(second, first);
  EXPECT_EQ(effective_value("rate_per_sec"), "rate_per_sec = 700");

  // profile and shadow change the record like any other op.
  r = call({{"op", "profile"}, {"name", "surge"}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(r["diff"][0]["new"], "100");
  EXPECT_EQ(call({{"op", "get"}})["profile"], "surge");
  r = call({{"op", "profile"}, {"name", "nonesuch"}});
  EXPECT_FALSE(r["ok"]);
  EXPECT_NE(r["error"].get<std::string>().find("nonesuch"), std::string::npos);
  r = call({{"op", "shadow"}, {"on", true}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(r["diff"][0]["key"], "admission.shadow");

  // history lists every generation written, oldest first; rollback to the
  // second restores its config and profile as a new generation.
  r = call({{"op", "history"}});
  ASSERT_TRUE(r["ok"]);
  ASSERT_EQ(r["generations"].size(), 4U);
  EXPECT_EQ(r["generations"][0]["generation"], first);
  EXPECT_EQ(r["generations"][3]["op"], "shadow");
  EXPECT_EQ(r["generations"][3]["origin"]["who"], "test");
  r = call({{"op", "rollback"}, {"generation", second}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_GT(r["generation"].get<int64_t>(), second);
  r = call({{"op", "get"}});
  EXPECT_TRUE(r["profile"].is_null());
  EXPECT_EQ(r["config"].get<std::string>().find("shadow = true"), std::string::npos);
  r = call({{"op", "rollback"}, {"generation", 1}});
  EXPECT_FALSE(r["ok"]);
  EXPECT_NE(r["error"].get<std::string>().find("is not kept"), std::string::npos);
}

// The fleet's adaptive = false freezes what its edges learned: the sum of
// their records' adaptive_rate becomes lookups_per_sec (docs/adaptive.md).
TEST_F(FleetPolicyTest, TurningAdaptiveOffFreezesTheEdgesLearnedRates) {
  ASSERT_TRUE(call({{"op", "apply"}, {"config", kPolicy}})["ok"]);
  ASSERT_TRUE(call({{"op", "set"}, {"settings", settings("boundary.adaptive", "true")}})["ok"]);
  EtcdClient etcd(fleet_.etcd, std::chrono::milliseconds(2000));
  std::string error;
  ASSERT_TRUE(etcd.put(fleet_edges_prefix(fleet_) + "edge-a",
                       json{{"node", "edge-a"}, {"adaptive_rate", 120.4}}.dump(), 0, nullptr,
                       &error))
      << error;
  ASSERT_TRUE(etcd.put(fleet_edges_prefix(fleet_) + "edge-b",
                       json{{"node", "edge-b"}, {"adaptive_rate", 80.0}}.dump(), 0, nullptr,
                       &error))
      << error;
  // Under a profile that sets a higher ceiling the freeze would run that
  // instead: refused, naming the profile, nothing written.
  std::string with_ceiling = kPolicy + "\"boundary.lookups_per_sec\" = 900\n";
  ASSERT_TRUE(call({{"op", "apply"}, {"config", with_ceiling}})["ok"]);
  ASSERT_TRUE(call({{"op", "set"}, {"settings", settings("boundary.adaptive", "true")}})["ok"]);
  ASSERT_TRUE(call({{"op", "profile"}, {"name", "surge"}})["ok"]);
  const int64_t before = call({{"op", "get"}})["generation"];
  const json under = call({{"op", "set"}, {"settings", settings("boundary.adaptive", "false")}});
  EXPECT_FALSE(under["ok"]) << under.dump();
  EXPECT_NE(under.value("error", std::string()).find("profile surge sets boundary.lookups_per_sec"),
            std::string::npos)
      << under.dump();
  EXPECT_EQ(call({{"op", "get"}})["generation"], before);
  ASSERT_TRUE(call({{"op", "profile"}, {"name", "none"}})["ok"]);

  const json r = call({{"op", "set"}, {"settings", settings("boundary.adaptive", "false")}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(effective_value("lookups_per_sec"), "lookups_per_sec = 200");
  EXPECT_NE(r["notes"].dump().find("200 in all"), std::string::npos) << r.dump();
}

// An edge that refused the adaptive boundary (a host-mode edge) enforces its
// share of the ceiling and learns nothing: the others' sum is not the fleet's
// rate, and freezing it would cut the budget (the fleet lab once froze 500/s
// to 63). The ceiling stays, and the note names the edge.
TEST_F(FleetPolicyTest, TurningAdaptiveOffKeepsTheCeilingWhileAnEdgeLearnedNothing) {
  ASSERT_TRUE(call({{"op", "apply"}, {"config", kPolicy}})["ok"]);
  ASSERT_TRUE(call({{"op", "set"}, {"settings", settings("boundary.adaptive", "true")}})["ok"]);
  EtcdClient etcd(fleet_.etcd, std::chrono::milliseconds(2000));
  std::string error;
  ASSERT_TRUE(etcd.put(fleet_edges_prefix(fleet_) + "edge-a",
                       json{{"node", "edge-a"}, {"adaptive_rate", 63.0}}.dump(), 0, nullptr,
                       &error))
      << error;
  ASSERT_TRUE(etcd.put(fleet_edges_prefix(fleet_) + "edge-host",
                       json{{"node", "edge-host"}, {"refused", {{"generation", 2}}}}.dump(), 0,
                       nullptr, &error))
      << error;
  const json r = call({{"op", "set"}, {"settings", settings("boundary.adaptive", "false")}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(effective_value("lookups_per_sec"), "lookups_per_sec = 1000");
  EXPECT_NE(r["notes"].dump().find("stays the ceiling 1000: edge(s) edge-host have no learned"),
            std::string::npos)
      << r.dump();
}

TEST_F(FleetPolicyTest, RefusedChangesNameTheKeyAndWriteNothing) {
  ASSERT_TRUE(call({{"op", "apply"}, {"config", kPolicy}})["ok"]);
  const json before = call({{"op", "get"}});
  std::string grown = kPolicy;
  grown.replace(grown.find("262144"), 6, "524288");
  const std::vector<std::pair<json, std::string>> refused = {
      {{{"op", "set"}, {"settings", settings("boundary.lookups_per_sec", "0")}},
       "boundary.lookups_per_sec"},
      {{{"op", "set"}, {"settings", settings("class.nonesuch.rate_per_sec", "1")}}, "nonesuch"},
      {{{"op", "set"}, {"settings", settings("dataplane.mode", "\"dpdk\"")}}, "each edge's own"},
      {{{"op", "set"}, {"settings", settings("admission.flow_table_size", "524288")}},
       "changes only at restart"},
      {{{"op", "apply"}, {"config", grown}, {"source", "fleet.toml"}},
       "fleet.toml:5:19: admission.flow_table_size: changes only at restart (running: 262144, "
       "requested: 524288); restart every edge"},
      {{{"op", "apply"}, {"config", kPolicy}, {"source", "bad\tname"}}, "source: expected"},
      {{{"op", "set"}, {"settings", "x"}}, "settings: expected"},
      {{{"op", "apply"}, {"config", "[boundary]\nlookups_per_sec = -1\n"}}, "lookups_per_sec"},
      {{{"op", "shadow"}}, "on: expected"},
      {{{"op", "set"}, {"settings", settings("boundary.lookups_per_sec", "5")}, {"dryrun", true}},
       "dryrun: not a field of set"},
      {{{"op", "status"}}, "unknown fleet op"},
  };
  for (const auto& [request, want] : refused) {
    const json r = call(request);
    EXPECT_FALSE(r["ok"]) << request.dump();
    EXPECT_NE(r.dump().find(want), std::string::npos) << request.dump() << " -> " << r.dump();
  }
  EXPECT_EQ(call({{"op", "get"}}), before);
}

TEST_F(FleetPolicyTest, AChangeComputedFromAnOlderRevisionIsRefused) {
  ASSERT_TRUE(call({{"op", "apply"}, {"config", kPolicy}})["ok"]);
  // Another engineer's change lands between our read and our write: the
  // compare-and-swap on the revision we read refuses ours.
  EtcdClient c({etcd_->url()}, std::chrono::milliseconds(2000));
  FleetRecord record;
  bool exists = false;
  std::string error;
  ASSERT_TRUE(read_fleet_record(c, fleet_, &record, &exists, &error)) << error;
  ASSERT_TRUE(
      call({{"op", "set"}, {"settings", settings("boundary.lookups_per_sec", "900")}})["ok"]);
  bool swapped = true;
  int64_t revision = 0;
  std::string note;
  ASSERT_TRUE(write_fleet_record(c, fleet_, record, record.revision, &swapped, &revision, &note));
  EXPECT_FALSE(swapped);
  EXPECT_NE(effective_value("lookups_per_sec").find("900"), std::string::npos);
}

// A member that commits the write but answers after the client gave up (a
// slow fsync, a leader change): the client tries the next member, whose
// compare fails, as the key changed. The write is ours all the same (the
// key holds what was sent): before, the operator read "refused" while the
// edges applied it, and it was not kept for rollback. The member here is a
// proxy that forwards to etcd and holds the answer past the timeout.
TEST_F(FleetPolicyTest, AWriteThatCommittedWhileItsAnswerWasLateIsOurs) {
  ASSERT_TRUE(call({{"op", "apply"}, {"config", kPolicy}})["ok"]);
  const std::string target = etcd_->url();
  httplib::Server late;
  late.Post(R"(/.*)", [&target](const httplib::Request& req, httplib::Response& res) {
    httplib::Client etcd(target);
    const httplib::Result r = etcd.Post(req.path, req.body, "application/json");
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    if (r) res.set_content(r->body, "application/json");
  });
  ASSERT_TRUE(late.bind_to_port("127.0.0.1", 24807));
  std::thread serving([&late] { late.listen_after_bind(); });  // bound: connections wait
  EtcdClient direct({target}, std::chrono::milliseconds(2000));
  FleetRecord record;
  bool exists = false;
  std::string error;
  ASSERT_TRUE(read_fleet_record(direct, fleet_, &record, &exists, &error)) << error;
  record.op = "set";
  EtcdClient c({"http://127.0.0.1:24807", target}, std::chrono::milliseconds(300));
  bool swapped = false;
  int64_t revision = 0;
  std::string note;
  const bool written =
      write_fleet_record(c, fleet_, record, record.revision, &swapped, &revision, &note);
  late.stop();
  serving.join();
  ASSERT_TRUE(written) << note;
  EXPECT_TRUE(swapped);
  FleetRecord now;
  ASSERT_TRUE(read_fleet_record(direct, fleet_, &now, &exists, &error)) << error;
  EXPECT_EQ(now.revision, revision);
  std::vector<FleetRecord> kept;
  ASSERT_TRUE(read_fleet_history(direct, fleet_, &kept, &error)) << error;
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.back().revision, revision) << "kept for rollback";
}

TEST_F(FleetPolicyTest, WithoutEtcdTheAnswerSaysUnreachable) {
  etcd_.reset();
  const json r = call({{"op", "get"}});
  EXPECT_FALSE(r["ok"]);
  EXPECT_TRUE(r.value("unreachable", false));
  EXPECT_NE(r["error"].get<std::string>().find("did not answer"), std::string::npos);
}

}  // namespace
}  // namespace sluice
