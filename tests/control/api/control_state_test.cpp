// SPDX-License-Identifier: Apache-2.0
// The control API's operations as a specification (docs/control-api.md),
// run in-process on a FakeDataplane: what each op reports and changes, that
// every applied change is one new generation, one dataplane apply and one
// audit line, and that every refused request alters nothing and names what
// was wrong.
#include "control/api/control_state.hpp"
#include "control/log.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/control/api/control_test_env.hpp"
#include "tests/support/dpdk_stats.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/traffic.hpp"

namespace sluice {
namespace {

using test::ControlHarness;
using test::diff_map;
using test::json;
using test::set_request;

using Diff = std::map<std::string, std::pair<json, json>>;

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "test config lacks: " << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

const json* find_class(const json& status, const std::string& name) {
  for (const json& c : status["classes"])
    if (c["name"] == name) return &c;
  return nullptr;
}

class ControlStateTest : public ::testing::Test {
 protected:
  ControlHarness h;
};

// ---------------------------------------------------------------------------
// Semantics

TEST_F(ControlStateTest, StatusReportsTheRunningConfigAndPerClassCounters) {
  // One checkpoint SYN and one citizen datagram, so the counters are not all
  // zero and each lands in its own class.
  const auto syn =
      test::PacketBuilder().ipv4("198.18.10.5", "198.19.0.1").tcp(40000, 443, test::kSyn).build();
  const auto udp = test::PacketBuilder().ipv4("198.18.50.7", "198.19.0.1").udp(5353, 53).build();
  h.dataplane().feed(syn, 1'000'000'000);
  h.dataplane().feed(udp, 1'000'000'000);

  const json s = h.call({{"op", "status"}});
  ASSERT_TRUE(s["ok"].get<bool>()) << s.dump();
  EXPECT_EQ(s["mode"], "fake");
  EXPECT_EQ(s["attach"], "none");
  EXPECT_EQ(s["outside"], "eth0");
  EXPECT_EQ(s["inside"], "eth1");
  EXPECT_EQ(s["generation"], 1);
  EXPECT_TRUE(s["uptime_sec"].is_number_integer());
  EXPECT_GE(s["uptime_sec"].get<int64_t>(), 0);
  EXPECT_EQ(s["config_file"], h.config_path());
  EXPECT_TRUE(s["profile"].is_null());
  EXPECT_EQ(s["shadow"], false);
  EXPECT_EQ(s["boundary"]["lookups_per_sec"], 40000);
  EXPECT_EQ(s["boundary"]["packets_per_sec"], 2000000);
  EXPECT_TRUE(s["boundary"]["lookup_tokens"].is_number_unsigned());
  EXPECT_TRUE(s["boundary"]["packet_tokens"].is_number_unsigned());

  ASSERT_EQ(s["classes"].size(), 3u) << s["classes"].dump();
  EXPECT_EQ(s["classes"][0]["name"], "checkpoint");
  EXPECT_EQ(s["classes"][1]["name"], "citizen");
  EXPECT_EQ(s["classes"][2]["name"], "default");
  const json& checkpoint = s["classes"][0];
  EXPECT_EQ(checkpoint["priority"], 0);
  EXPECT_EQ(checkpoint["rate_per_sec"], 20000);
  EXPECT_EQ(checkpoint["burst"], 2000);  // default: rate / 10
  EXPECT_EQ(checkpoint["lookups"], 1);
  EXPECT_EQ(checkpoint["admitted"], 1);
  EXPECT_EQ(checkpoint["shed"], 0);
  EXPECT_EQ(checkpoint["packets"], 1);
  EXPECT_EQ(checkpoint["packets_shed"], 0);
  EXPECT_TRUE(checkpoint["shed_by_reason"].is_object());
  EXPECT_TRUE(checkpoint["shed_by_reason"].empty());
  const json& citizen = s["classes"][1];
  EXPECT_EQ(citizen["priority"], 5);
  EXPECT_EQ(citizen["rate_per_sec"], 10000);
  EXPECT_EQ(citizen["lookups"], 1);
  EXPECT_EQ(citizen["packets"], 1);
  const json& fallback = s["classes"][2];
  EXPECT_EQ(fallback["priority"], 7);
  EXPECT_TRUE(fallback["rate_per_sec"].is_null());
  EXPECT_EQ(fallback["lookups"], 0);

  // A dataplane without queues or ports of its own (XDP): empty lists.
  EXPECT_EQ(s["queues"], json::array());
  EXPECT_EQ(s["ports"], json::array());
}

TEST_F(ControlStateTest, StatusCarriesTheQueuesAndPortsOfADataplaneThatHasThem) {
  h.dataplane().set_queues_and_ports(test::sample_dpdk_queues(), test::sample_dpdk_ports());

  const json s = h.call({{"op", "status"}});
  ASSERT_TRUE(s["ok"].get<bool>()) << s.dump();
  EXPECT_EQ(s["queues"], json::parse(R"([
    {"priority": 0, "depth": 7, "dropped_full": 3, "dropped_delay": 11},
    {"priority": 5, "depth": 0, "dropped_full": 0, "dropped_delay": 0}])"));
  EXPECT_EQ(s["ports"], json::parse(R"([
    {"name": "outside", "device": "net_af_packet0", "rx_packets": 123456, "tx_packets": 1000,
     "rx_missed": 17, "rx_nombuf": 2, "tx_errors": 0, "tx_dropped": 0},
    {"name": "inside", "device": "net_af_packet1", "rx_packets": 999, "tx_packets": 120000,
     "rx_missed": 0, "rx_nombuf": 0, "tx_errors": 5, "tx_dropped": 8}])"));
}

TEST_F(ControlStateTest, GetReturnsTheEffectiveConfigText) {
  const json r = h.call({{"op", "get"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["generation"], 1);
  EXPECT_TRUE(r["profile"].is_null());
  EXPECT_EQ(r["config"], h.initial_text());
}

// op "capture": bad requests are refused with the field named; a good one
// streams exactly the frames the filter asks for, then a summary line; it is
// refused over the request/response path (HTTP), which cannot stream.
TEST_F(ControlStateTest, CaptureStreamsTheFramesItsFilterAsksFor) {
  auto capture = [&](const json& request) {
    std::vector<json> lines;
    h.state().capture(request, Origin{"unix"}, [&](const json& l) {
      lines.push_back(l);
      return true;
    });
    return lines;
  };
  for (const auto& [request, field] : std::vector<std::pair<json, std::string>>{
           {{{"op", "capture"}, {"class", "nobody"}}, "class"},
           {{{"op", "capture"}, {"verdict", "maybe"}}, "verdict"},
           {{{"op", "capture"}, {"reason", "whim"}}, "reason"},
           {{{"op", "capture"}, {"verdict", "shed"}, {"reason", "lookup"}}, "reason"},
           {{{"op", "capture"}, {"verdict", "shed"}, {"reason", "non_ip"}}, "reason"},
           {{{"op", "capture"}, {"count", 0}}, "count"},
           {{{"op", "capture"}, {"count", "5"}}, "count"},
           {{{"op", "capture"}, {"seconds", 99999}}, "seconds"},
           {{{"op", "capture"}, {"snaplen", 1000}}, "snaplen"},
       }) {
    const std::vector<json> lines = capture(request);
    ASSERT_EQ(lines.size(), 1u) << request.dump();
    EXPECT_FALSE(lines[0]["ok"].get<bool>()) << lines[0].dump();
    EXPECT_EQ(lines[0]["error"].get<std::string>().rfind(field + ":", 0), 0u) << lines[0].dump();
  }
  EXPECT_FALSE(h.call({{"op", "capture"}})["ok"].get<bool>());

  // Three shed citizen SYNs wanted; admitted ones pass by. 10,000 SYNs at
  // once overrun the boundary's burst of 4,000.
  std::thread feeder([&] {
    ASSERT_TRUE(h.dataplane().wait_capturing(std::chrono::seconds(10)));
    for (uint32_t i = 0; i < 10000; i++)
      h.dataplane().feed(test::syn_v4(test::kNet198_18 + 0x10000 + i), 1'000'000'000ULL + i);
  });
  const std::vector<json> lines = capture({{"op", "capture"},
                                           {"class", "citizen"},
                                           {"verdict", "shed"},
                                           {"count", 3},
                                           {"snaplen", 20},
                                           {"seconds", 10}});
  feeder.join();
  std::vector<json> frames;
  for (const json& l : lines)
    if (l.contains("frame")) frames.push_back(l);
  ASSERT_EQ(frames.size(), 3u);
  for (const json& f : frames) {
    EXPECT_EQ(f["class"], "citizen");
    EXPECT_EQ(f["verdict"], "shed");
    EXPECT_EQ(f["frame"].get<std::string>().size(), 40u);  // 20 bytes in hex
    EXPECT_GT(f["wire_len"].get<uint32_t>(), 20u);
  }
  const json& last = lines.back();
  EXPECT_TRUE(last.value("done", false)) << last.dump();
  EXPECT_EQ(last["captured"], 3);
  EXPECT_EQ(last["ended"], "count");
}

// An edge that enforces nothing (its program gone from the links) decides
// no packet: a capture is refused at once, saying why, as a change is;
// before, it waited out its time and said "captured 0 frames".
TEST_F(ControlStateTest, CaptureIsRefusedWhileTheDataplaneEnforcesNothing) {
  h.dataplane().set_unhealthy("sluice's program is no longer the one on the outside link");
  std::vector<json> lines;
  h.state().capture({{"op", "capture"}, {"seconds", 5}}, Origin{"unix"}, [&](const json& l) {
    lines.push_back(l);
    return true;
  });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0]["ok"].get<bool>());
  EXPECT_NE(lines[0]["error"].get<std::string>().find("not enforcing"), std::string::npos)
      << lines[0].dump();
}

// The log level is sluiced's, not the config's: reported, set at once, and
// no generation or audit line for it.
TEST_F(ControlStateTest, LogLevelIsReportedAndSetWithoutAGeneration) {
  json r = h.call({{"op", "log_level"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["level"], "info");
  r = h.call({{"op", "log_level"}, {"level", "debug"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["level"], "debug");
  EXPECT_EQ(r["previous"], "info");
  EXPECT_EQ(log_level(), LogLevel::debug);
  EXPECT_EQ(h.call({{"op", "log_level"}})["level"], "debug");
  EXPECT_EQ(h.call({{"op", "get"}})["generation"], 1);
  set_log_level(LogLevel::info);
}

TEST_F(ControlStateTest, SetOfSeveralKeysIsOneAtomicChangeWithAnExactDiff) {
  const json r = h.call(set_request(
      {{"class.citizen.rate_per_sec", "20000"}, {"boundary.lookups_per_sec", "50000"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["generation"], 2);
  EXPECT_EQ(diff_map(r), (Diff{{"boundary.lookups_per_sec", {"40000", "50000"}},
                               {"class.citizen.rate_per_sec", {"10000", "20000"}}}));
  EXPECT_TRUE(r["notes"].empty()) << r["notes"].dump();

  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(h.dataplane().stats().generation, 2u);
  EXPECT_EQ(h.state().generation(), 2u);
  const json s = h.call({{"op", "status"}});
  EXPECT_EQ(s["generation"], 2);
  EXPECT_EQ((*find_class(s, "citizen"))["rate_per_sec"], 20000);
  EXPECT_EQ(s["boundary"]["lookups_per_sec"], 50000);
  EXPECT_EQ(h.value("class.citizen.rate_per_sec"), "20000");

  const std::vector<json> audit = test::read_audit(h.audit_path());
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0]["op"], "set");
  EXPECT_EQ(audit[0]["old_generation"], 1);
  EXPECT_EQ(audit[0]["new_generation"], 2);
  EXPECT_EQ(audit[0]["origin"], (json{{"transport", "unix"}, {"uid", 0}, {"pid", 4242}}));
  EXPECT_EQ(audit[0]["diff"], r["diff"]);
  // No profile is active: the base changed as the effective config did.
  EXPECT_EQ(audit[0]["base_diff"], r["diff"]) << audit[0].dump();
  EXPECT_EQ(r["base_diff"], r["diff"]);
  EXPECT_TRUE(audit[0]["time"].get<std::string>().ends_with("Z"));
}

// A change that leaves a class unreachable is applied (the config is valid)
// with a note naming it; the next change, which does not, has no such note.
TEST_F(ControlStateTest, AChangeThatLeavesAClassUnreachableSaysSo) {
  const json r = h.call(set_request({{"class.checkpoint.match", "{ src = [\"198.18.0.0/15\"] }"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  ASSERT_EQ(r["notes"].size(), 1u) << r.dump();
  EXPECT_EQ(r["notes"][0],
            "class \"citizen\" never matches: class \"checkpoint\" before it matches every "
            "packet it would");
  EXPECT_EQ(test::read_audit(h.audit_path()).back()["notes"], r["notes"]);

  const json next = h.call(set_request({{"class.citizen.rate_per_sec", "12000"}}));
  ASSERT_TRUE(next["ok"].get<bool>()) << next.dump();
  EXPECT_TRUE(next["notes"].empty()) << next.dump();
}

TEST_F(ControlStateTest, DryRunSetShowsTheDiffAndChangesNothing) {
  const json r = h.call(set_request({{"class.citizen.rate_per_sec", "20000"}}, /*dry_run=*/true));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["generation"], 1);
  EXPECT_EQ(r["dry_run"], true);
  EXPECT_EQ(diff_map(r), (Diff{{"class.citizen.rate_per_sec", {"10000", "20000"}}}));

  EXPECT_EQ(h.state().generation(), 1u);
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(h.call({{"op", "get"}})["config"], h.initial_text());
  EXPECT_TRUE(test::read_audit(h.audit_path()).empty());
}

TEST_F(ControlStateTest, ApplyReplacesTheWholeConfigAndDryRunOnlyPreviews) {
  std::string text = replaced(h.initial_text(), "rate_per_sec = 10000", "rate_per_sec = 15000");
  text = replaced(text, "shadow = false", "shadow = true");
  const Diff expected{{"admission.shadow", {"false", "true"}},
                      {"class.citizen.rate_per_sec", {"10000", "15000"}}};

  const json dry = h.call({{"op", "apply"}, {"config", text}, {"dry_run", true}});
  ASSERT_TRUE(dry["ok"].get<bool>()) << dry.dump();
  EXPECT_EQ(dry["generation"], 1);
  EXPECT_EQ(diff_map(dry), expected);
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(h.call({{"op", "get"}})["config"], h.initial_text());

  const json r = h.call({{"op", "apply"}, {"config", text}, {"source", "surge.toml"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["generation"], 2);
  EXPECT_EQ(diff_map(r), expected);
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(h.call({{"op", "get"}})["config"], text);
  EXPECT_EQ(h.call({{"op", "status"}})["shadow"], true);
  // The audit line names the file applied; a set has none.
  ASSERT_TRUE(h.call(set_request({{"class.citizen.rate_per_sec", "16000"}}))["ok"]);
  const std::vector<json> audit = test::read_audit(h.audit_path());
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0]["source"], "surge.toml");
  EXPECT_FALSE(audit[1].contains("source")) << audit[1].dump();
}

TEST_F(ControlStateTest, ProfileOverlaysItsKeysAndNoneRemovesThem) {
  const json on = h.call({{"op", "profile"}, {"name", "surge-1"}});
  ASSERT_TRUE(on["ok"].get<bool>()) << on.dump();
  EXPECT_EQ(on["generation"], 2);
  EXPECT_EQ(diff_map(on), (Diff{{"boundary.lookups_per_sec", {"40000", "30000"}},
                                {"class.citizen.rate_per_sec", {"10000", "5000"}}}));
  EXPECT_EQ(h.call({{"op", "status"}})["profile"], "surge-1");
  EXPECT_EQ(h.call({{"op", "get"}})["profile"], "surge-1");
  EXPECT_EQ(h.value("class.citizen.rate_per_sec"), "5000");
  // The base's only change is the profile in force (none: null).
  const json profile_on = json::array({{{"key", "profile"}, {"old", nullptr}, {"new", "surge-1"}}});
  EXPECT_EQ(on["base_diff"], profile_on) << on.dump();
  EXPECT_EQ(test::read_audit(h.audit_path()).back()["base_diff"], profile_on);

  const json off = h.call({{"op", "profile"}, {"name", "none"}});
  ASSERT_TRUE(off["ok"].get<bool>()) << off.dump();
  EXPECT_EQ(off["generation"], 3);
  EXPECT_EQ(diff_map(off), (Diff{{"boundary.lookups_per_sec", {"30000", "40000"}},
                                 {"class.citizen.rate_per_sec", {"5000", "10000"}}}));
  EXPECT_TRUE(h.call({{"op", "status"}})["profile"].is_null());
  EXPECT_EQ(off["base_diff"],
            json::array({{{"key", "profile"}, {"old", "surge-1"}, {"new", nullptr}}}));
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1, 2, 3}));
}

// A change the active profile hides (a key it sets) changes the base: its
// dry run says so as the change itself does (it said "no change"), and the
// change reaches the dataplane as the same settings under its generation,
// so that the edge's record names the generation in force (the next start
// numbered on from the one before, and two audit lines had one generation).
TEST_F(ControlStateTest, AChangeTheProfileHidesIsPreviewedAsAppliedAndReachesTheDataplane) {
  ASSERT_TRUE(h.call({{"op", "profile"}, {"name", "surge-1"}})["ok"].get<bool>());
  const json base_change =
      json::array({{{"key", "class.citizen.rate_per_sec"}, {"old", "10000"}, {"new", "12000"}}});
  const json dry = h.call(set_request({{"class.citizen.rate_per_sec", "12000"}}, true));
  ASSERT_TRUE(dry["ok"].get<bool>()) << dry.dump();
  EXPECT_TRUE(dry["diff"].empty()) << dry.dump();
  EXPECT_EQ(dry["base_diff"], base_change) << dry.dump();
  EXPECT_EQ(dry["generation"], 2);
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1, 2}));

  const json r = h.call(set_request({{"class.citizen.rate_per_sec", "12000"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(r["diff"].empty()) << r.dump();
  EXPECT_EQ(r["base_diff"], base_change) << r.dump();
  EXPECT_EQ(r["generation"], 3);
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(h.value("class.citizen.rate_per_sec"), "5000");  // the profile's, still

  // The profile's key off: the base's value in effect.
  const json off = h.call({{"op", "profile"}, {"name", "none"}});
  ASSERT_TRUE(off["ok"].get<bool>()) << off.dump();
  EXPECT_EQ(h.value("class.citizen.rate_per_sec"), "12000");
}

// sluice_config_changes_total{result="rejected"} (SluiceConfigRejected)
// counts refused changes and requests too malformed to name an op, not a
// dry run's refusal or a refused read (status, get, history, log_level).
TEST_F(ControlStateTest, OnlyARefusedChangeCountsAsRejected) {
  const uint64_t before = h.state().figures().changes_rejected;
  for (const json& not_a_change : {
           set_request({{"class.citizen.rate_per_sec", "0"}}, true),
           json{{"op", "profile"}, {"name", "nosuch"}, {"dry_run", true}},
           json{{"op", "status"}, {"x", 1}},
           json{{"op", "get"}, {"x", 1}},
           json{{"op", "history"}, {"x", 1}},
           json{{"op", "log_level"}, {"level", "loud"}},
       }) {
    const json r = h.call(not_a_change);
    EXPECT_FALSE(r["ok"].get<bool>()) << not_a_change.dump() << " -> " << r.dump();
  }
  EXPECT_EQ(h.state().figures().changes_rejected, before);
  for (const json& change : {
           set_request({{"class.citizen.rate_per_sec", "0"}}),
           json{{"op", "profile"}, {"name", "nosuch"}},
           json{{"op", "bogus"}},
           json{{"no_op", 1}},
       }) {
    const json r = h.call(change);
    EXPECT_FALSE(r["ok"].get<bool>()) << change.dump() << " -> " << r.dump();
  }
  EXPECT_EQ(h.state().figures().changes_rejected, before + 4);
}

// A reload of a file that no longer defines the profile in force drops it,
// and says so: the base config's rates return mid-incident.
TEST_F(ControlStateTest, AReloadThatDropsTheProfileInForceSaysSo) {
  ASSERT_TRUE(h.call({{"op", "profile"}, {"name", "surge-1"}})["ok"].get<bool>());
  std::string text(test::kControlTestConfig);
  text.replace(text.find("[profiles.surge-1]"), 18, "[profiles.surge-2]");
  test::write_text(h.config_path(), text);
  const json r = h.state().reload_file(Origin{"signal"});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  ASSERT_EQ(r["notes"].size(), 1u) << r.dump();
  EXPECT_NE(r["notes"][0].get<std::string>().find("no longer defines profile surge-1"),
            std::string::npos)
      << r.dump();
  EXPECT_TRUE(h.call({{"op", "status"}})["profile"].is_null());
  EXPECT_EQ(h.value("class.citizen.rate_per_sec"), "10000");
}

// A config file replaced by a pipe nobody writes: its reload waits 5 s for
// the text, and is then refused. Meanwhile the control plane answers: the
// file is read before the state's lock (status waited the 5 s with it).
TEST_F(ControlStateTest, AReloadWaitingOnItsFileHoldsNoOtherRequestUp) {
  ASSERT_EQ(::unlink(h.config_path().c_str()), 0);
  ASSERT_EQ(::mkfifo(h.config_path().c_str(), 0600), 0);
  json reload;
  std::atomic<bool> reloaded{false};
  std::thread reloading([&] {
    reload = h.state().reload_file(Origin{"signal"});
    reloaded = true;
  });
  // The reload is waiting on the pipe once a writer-less open would block:
  // give it the time to get there, then ask for the status.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto asked = std::chrono::steady_clock::now();
  const json status = h.call({{"op", "status"}});
  const auto took = std::chrono::steady_clock::now() - asked;
  const bool answered_while_reloading = !reloaded;
  reloading.join();
  EXPECT_TRUE(answered_while_reloading);
  EXPECT_TRUE(status["ok"].get<bool>()) << status.dump();
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_FALSE(reload["ok"].get<bool>()) << reload.dump();
  EXPECT_NE(reload["error"].get<std::string>().find("not complete within"), std::string::npos)
      << reload.dump();
}

TEST_F(ControlStateTest, ShadowOnAndOffEditTheBase) {
  const json on = h.call({{"op", "shadow"}, {"on", true}});
  ASSERT_TRUE(on["ok"].get<bool>()) << on.dump();
  EXPECT_EQ(on["generation"], 2);
  EXPECT_EQ(diff_map(on), (Diff{{"admission.shadow", {"false", "true"}}}));
  EXPECT_EQ(h.call({{"op", "status"}})["shadow"], true);

  // Already on: nothing to change, so no generation.
  const json again = h.call({{"op", "shadow"}, {"on", true}});
  ASSERT_TRUE(again["ok"].get<bool>()) << again.dump();
  EXPECT_EQ(again["generation"], 2);
  EXPECT_TRUE(again["diff"].empty());

  const json off = h.call({{"op", "shadow"}, {"on", false}});
  ASSERT_TRUE(off["ok"].get<bool>()) << off.dump();
  EXPECT_EQ(off["generation"], 3);
  EXPECT_EQ(diff_map(off), (Diff{{"admission.shadow", {"true", "false"}}}));
  EXPECT_EQ(h.call({{"op", "status"}})["shadow"], false);
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(ControlStateTest, RollbackRestoresAnEarlierGenerationAsANewOne) {
  ASSERT_TRUE(h.call(set_request({{"class.citizen.rate_per_sec", "20000"}}))["ok"].get<bool>());
  ASSERT_TRUE(h.call(set_request({{"class.citizen.rate_per_sec", "30000"}}))["ok"].get<bool>());
  ASSERT_EQ(h.state().generation(), 3u);

  // Default target: the generation before the current one.
  const json back = h.call({{"op", "rollback"}});
  ASSERT_TRUE(back["ok"].get<bool>()) << back.dump();
  EXPECT_EQ(back["generation"], 4);
  EXPECT_EQ(diff_map(back), (Diff{{"class.citizen.rate_per_sec", {"30000", "20000"}}}));
  EXPECT_EQ(h.value("class.citizen.rate_per_sec"), "20000");

  // A named generation: the startup config, as generation 5.
  const json first = h.call({{"op", "rollback"}, {"generation", 1}});
  ASSERT_TRUE(first["ok"].get<bool>()) << first.dump();
  EXPECT_EQ(first["generation"], 5);
  EXPECT_EQ(diff_map(first), (Diff{{"class.citizen.rate_per_sec", {"20000", "10000"}}}));
  EXPECT_TRUE(
      config_diff(h.initial_text(), h.call({{"op", "get"}})["config"].get<std::string>()).empty());
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1, 2, 3, 4, 5}));

  const json hist = h.call({{"op", "history"}});
  ASSERT_TRUE(hist["ok"].get<bool>()) << hist.dump();
  EXPECT_EQ(hist["generation"], 5);
  std::vector<std::pair<uint64_t, std::string>> seen;
  for (const json& g : hist["generations"]) {
    seen.emplace_back(g["generation"].get<uint64_t>(), g["op"].get<std::string>());
    EXPECT_FALSE(g["time"].get<std::string>().empty());
  }
  EXPECT_EQ(seen, (std::vector<std::pair<uint64_t, std::string>>{
                      {1, "start"}, {2, "set"}, {3, "set"}, {4, "rollback"}, {5, "rollback"}}));
  EXPECT_EQ(hist["generations"][0]["origin"]["transport"], "startup");
  EXPECT_EQ(hist["generations"][4]["origin"]["transport"], "unix");
}

TEST_F(ControlStateTest, RollbackRestoresTheProfileOfTheGeneration) {
  ASSERT_TRUE(h.call({{"op", "profile"}, {"name", "surge-1"}})["ok"].get<bool>());
  const json r = h.call({{"op", "rollback"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["generation"], 3);
  EXPECT_TRUE(h.call({{"op", "status"}})["profile"].is_null());
  EXPECT_EQ(h.value("class.citizen.rate_per_sec"), "10000");

  // Forward again to generation 2, whose profile comes back with it.
  const json forward = h.call({{"op", "rollback"}, {"generation", 2}});
  ASSERT_TRUE(forward["ok"].get<bool>()) << forward.dump();
  EXPECT_EQ(forward["generation"], 4);
  EXPECT_EQ(h.call({{"op", "status"}})["profile"], "surge-1");
  const json hist = h.call({{"op", "history"}});
  EXPECT_EQ(hist["generations"].back()["profile"], "surge-1");
}

TEST_F(ControlStateTest, HistoryKeepsOnlyTheConfiguredNumberOfGenerations) {
  ControlHarness small(
      replaced(std::string(test::kControlTestConfig), "history = 8", "history = 3"));
  for (const char* rate : {"11000", "12000", "13000"})
    ASSERT_TRUE(small.call(set_request({{"class.citizen.rate_per_sec", rate}}))["ok"].get<bool>());
  const json hist = small.call({{"op", "history"}});
  std::vector<uint64_t> kept;
  for (const json& g : hist["generations"]) kept.push_back(g["generation"]);
  EXPECT_EQ(kept, (std::vector<uint64_t>{2, 3, 4}));

  const json r = small.call({{"op", "rollback"}, {"generation", 1}});
  EXPECT_FALSE(r["ok"].get<bool>()) << r.dump();
  EXPECT_NE(r["error"].get<std::string>().find("kept: 2, 3, 4"), std::string::npos) << r.dump();
  EXPECT_EQ(small.state().generation(), 4u);
}

TEST_F(ControlStateTest, SetToTheCurrentValueIsANoOpWithoutAGeneration) {
  const json r = h.call(set_request({{"class.citizen.rate_per_sec", "10000"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["generation"], 1);
  EXPECT_TRUE(r["diff"].empty()) << r.dump();
  EXPECT_EQ(h.state().generation(), 1u);
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(h.call({{"op", "history"}})["generations"].size(), 1u);
  EXPECT_TRUE(test::read_audit(h.audit_path()).empty());
}

// A key the config leaves to its default, written out at that default (or
// a shadow mode turned off that was never on), is the same setting: no
// generation, no audit line, an empty diff. Under a profile too.
TEST_F(ControlStateTest, ADefaultWrittenOutIsANoOpWithoutAGeneration) {
  for (const json& request :
       {set_request({{"admission.shadow", "false"}}),
        set_request({{"admission.flow_learn_sec", "10"}}), json{{"op", "shadow"}, {"on", false}},
        set_request(
            {{"admission.flow_packets_per_sec", "1000"}, {"admission.malformed", "\"drop\""}})}) {
    const json r = h.call(request);
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    EXPECT_EQ(r["generation"], 1) << request.dump();
    EXPECT_TRUE(r["diff"].empty()) << r.dump();
  }
  EXPECT_EQ(h.state().generation(), 1u);
  EXPECT_EQ(h.dataplane().applied(), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(test::read_audit(h.audit_path()).empty());
  // A real change still is one, and so is the same under a profile.
  ASSERT_TRUE(h.call({{"op", "profile"}, {"name", "surge-1"}})["ok"].get<bool>());
  EXPECT_EQ(h.state().generation(), 2u);
  const json r = h.call(set_request({{"admission.sticky_window_ms", "100"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(r["diff"].empty()) << r.dump();
  EXPECT_EQ(h.state().generation(), 2u);
  const json changed = h.call(set_request({{"admission.flow_learn_sec", "11"}}));
  ASSERT_TRUE(changed["ok"].get<bool>()) << changed.dump();
  EXPECT_EQ(h.state().generation(), 3u);
}

TEST_F(ControlStateTest, SetOfAKeyTheProfileAlsoSetsKeepsTheProfileValueAndSaysSo) {
  ASSERT_TRUE(h.call({{"op", "profile"}, {"name", "surge-1"}})["ok"].get<bool>());
  const json r = h.call(set_request({{"class.citizen.rate_per_sec", "12000"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  ASSERT_EQ(r["notes"].size(), 1u) << r.dump();
  const std::string note = r["notes"][0];
  EXPECT_NE(note.find("class.citizen.rate_per_sec"), std::string::npos) << note;
  EXPECT_NE(note.find("surge-1"), std::string::npos) << note;
  // The profile's 5000 stays in effect, so the effective config is unchanged.
  EXPECT_TRUE(r["diff"].empty()) << r.dump();
  EXPECT_EQ(h.value("class.citizen.rate_per_sec"), "5000");

  // The set went to the base: it shows once the profile is gone.
  const json off = h.call({{"op", "profile"}, {"name", "none"}});
  ASSERT_TRUE(off["ok"].get<bool>()) << off.dump();
  EXPECT_EQ(diff_map(off), (Diff{{"boundary.lookups_per_sec", {"30000", "40000"}},
                                 {"class.citizen.rate_per_sec", {"5000", "12000"}}}));
}

// ---------------------------------------------------------------------------
// Rejections: a refused request alters nothing and names what was wrong.

struct Rejection {
  const char* name;
  json request;
  std::string names;  // must appear in error, errors[].key or errors[].text ("" = no key)
  bool dataplane_refuses = false;
};

// True when the response names `what` in its error or in one of errors[].
bool names(const json& r, const std::string& what) {
  if (r.value("error", "").find(what) != std::string::npos) return true;
  if (!r.contains("errors")) return false;
  for (const json& e : r["errors"]) {
    if (e.value("key", "").find(what) != std::string::npos) return true;
    if (e.value("text", "").find(what) != std::string::npos) return true;
  }
  return false;
}

// A restart-only change is refused at the line and column where the
// requested file writes the key, with the running and requested values (the
// brief: config errors name file, line and column); the file is the name
// sluicectl apply sends as "source".
TEST_F(ControlStateTest, RestartOnlyRefusalsNameTheFileLineAndColumn) {
  const std::string base = h.initial_text();
  const std::string moved = replaced(base, "outside = \"eth0\"", "outside = \"eth7\"");
  const std::size_t at = moved.find("outside = ");
  const int line = 1 + static_cast<int>(std::count(moved.begin(), moved.begin() + at, '\n'));
  const json r = h.call({{"op", "apply"}, {"config", moved}, {"source", "edge.toml"}});
  ASSERT_EQ(r["ok"], false) << r.dump();
  ASSERT_EQ(r["errors"].size(), 1u) << r.dump();
  const std::string want = "edge.toml:" + std::to_string(line) +
                           ":11: dataplane.outside: changes only at restart (running: 'eth0', "
                           "requested: 'eth7'); restart sluiced to apply it";
  EXPECT_EQ(r["errors"][0]["text"], want);
  EXPECT_EQ(r["errors"][0]["key"], "dataplane.outside");
  EXPECT_EQ(r["error"], "rejected: " + want);

  // A key the file no longer writes has no line of its own: 1:1.
  const json removed = h.call({{"op", "apply"},
                               {"config", replaced(base, "inside = \"eth1\"\n", "")},
                               {"source", "edge.toml"}});
  EXPECT_EQ(removed["errors"][0]["text"],
            "edge.toml:1:1: dataplane.inside: changes only at restart (running: 'eth1', "
            "requested: not written); restart sluiced to apply it")
      << removed.dump();

  // Two keys: in the order the file writes them, not by key; a dataplane
  // key written out at its default beside them is no change, so no error.
  std::string two =
      replaced(base, "inside = \"eth1\"", "inside = \"eth8\"\nwhen_stopped = \"forward\"");
  two = replaced(two, "source_table_size = 65536", "source_table_size = 131072");
  const json both = h.call({{"op", "apply"}, {"config", two}, {"source", "edge.toml"}});
  ASSERT_EQ(both["errors"].size(), 2u) << both.dump();
  EXPECT_EQ(both["errors"][0]["key"], "dataplane.inside") << both.dump();
  EXPECT_EQ(both["errors"][1]["key"], "admission.source_table_size") << both.dump();

  // Errors of a file that does not validate name it too.
  const json invalid = h.call({{"op", "apply"},
                               {"config", replaced(base, "history = 8", "history = 0")},
                               {"source", "edge.toml"}});
  EXPECT_EQ(invalid["error"].get<std::string>().rfind("rejected: edge.toml:", 0), 0u)
      << invalid.dump();

  // Overrides have no file: they are named as every override error is.
  const json set = h.call(set_request({{"dataplane.outside", "\"eth7\""}}));
  EXPECT_EQ(set["errors"][0]["text"].get<std::string>().rfind(
                "<override>:1:1: dataplane.outside: changes only at restart (running: 'eth0'", 0),
            0u)
      << set.dump();
  // ...at the setting's position in the list.
  const json second = h.call(
      set_request({{"class.citizen.rate_per_sec", "1000"}, {"dataplane.outside", "\"eth7\""}}));
  EXPECT_EQ(second["errors"][0]["text"].get<std::string>().rfind(
                "<override>:2:1: dataplane.outside: changes only at restart", 0),
            0u)
      << second.dump();
  EXPECT_EQ(h.state().generation(), 1u);
}

// A restart-only key written another way with the same value (written out
// at its default, dropped where it held the default) changes nothing: the
// file applies. A changed value next to it is still refused.
TEST_F(ControlStateTest, ARestartOnlyKeySpeltAnotherWayIsNoChange) {
  const std::string base = h.initial_text();
  std::string same =
      replaced(base, "inside = \"eth1\"\n", "inside = \"eth1\"\nxdp_attach = \"native\"\n");
  same = replaced(same, "listen = \"127.0.0.1:9109\"\n", "");
  same = replaced(same, "lookups_per_sec = 40000", "lookups_per_sec = 30000");
  ASSERT_NE(same, base);
  const json r = h.call({{"op", "apply"}, {"config", same}, {"source", "edge.toml"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(h.state().generation(), 2u);
  EXPECT_EQ(h.value("boundary.lookups_per_sec"), "30000");

  const json changed =
      h.call({{"op", "apply"},
              {"config", replaced(same, "xdp_attach = \"native\"", "xdp_attach = \"generic\"")},
              {"source", "edge.toml"}});
  ASSERT_EQ(changed["ok"], false) << changed.dump();
  EXPECT_EQ(changed["errors"][0]["key"], "dataplane.xdp_attach") << changed.dump();
  EXPECT_EQ(h.state().generation(), 2u);
}

// An error in the base config names the text it is in, at that text's
// line: the config file until a set rewrites the base (toml++'s text, with
// other lines), then <running>, whose text `get` returns as "base".
TEST_F(ControlStateTest, ErrorsInTheBaseNameTheTextTheirLinesAreIn) {
  // The line of the citizen class's [[class]] header, where its errors are
  // (toml++ writes the name as 'citizen').
  const auto line_of = [](const std::string& text) {
    std::size_t at = text.find("name = \"citizen\"");
    if (at == std::string::npos) at = text.find("name = 'citizen'");
    EXPECT_NE(at, std::string::npos) << text;
    at = text.rfind("[[class]]", at);
    EXPECT_NE(at, std::string::npos) << text;
    return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
  };
  const auto refusal = [&] {
    const json r = h.call(set_request({{"class.citizen.on_shed", "\"mark\""}}));
    EXPECT_EQ(r["ok"], false) << r.dump();
    for (const json& e : r["errors"]) {
      const std::string text = e["text"];
      if (text.find("mark_dscp") != std::string::npos) return text;
    }
    ADD_FAILURE() << r.dump();
    return std::string();
  };
  json got = h.call({{"op", "get"}});
  EXPECT_EQ(got["base_source"], h.config_path());
  EXPECT_EQ(got["base"], h.initial_text());
  const std::string in_file = refusal();
  EXPECT_EQ(
      in_file.rfind(h.config_path() + ":" + std::to_string(line_of(h.initial_text())) + ":", 0), 0u)
      << in_file;

  // Comments gone, keys reordered: the same class at another line.
  ASSERT_EQ(h.call(set_request({{"class.checkpoint.burst", "401"}}))["ok"], true);
  got = h.call({{"op", "get"}});
  EXPECT_EQ(got["base_source"], "<running>");
  const std::string running = got["base"];
  EXPECT_NE(line_of(running), line_of(h.initial_text()))
      << "the test needs a rewrite that moves the class";
  const std::string in_running = refusal();
  EXPECT_EQ(in_running.rfind("<running>:" + std::to_string(line_of(running)) + ":", 0), 0u)
      << in_running;

  // Applying a file makes its text the base again, under its name.
  ASSERT_EQ(h.call({{"op", "apply"}, {"config", h.initial_text()}, {"source", "edge.toml"}})["ok"],
            true);
  EXPECT_EQ(h.call({{"op", "get"}})["base_source"], "edge.toml");
  EXPECT_EQ(refusal().rfind("edge.toml:", 0), 0u);
}

// A client may send dry_run with every request: the reading ops and a
// log_level without a dry run take it.
TEST_F(ControlStateTest, EveryOpTakesDryRunFalse) {
  for (const char* op : {"status", "get", "history"})
    EXPECT_TRUE(h.call({{"op", op}, {"dry_run", false}})["ok"].get<bool>()) << op;
  EXPECT_TRUE(h.call({{"op", "status"}, {"dry_run", true}})["ok"].get<bool>());
  const json level = h.call({{"op", "log_level"}, {"dry_run", false}});
  EXPECT_TRUE(level["ok"].get<bool>()) << level.dump();
}

TEST_F(ControlStateTest, RefusedRequestsAlterNothingNameTheKeyAndAreNotAudited) {
  // One applied change before and one after, so the audit log must hold
  // exactly these two lines and nothing for the refusals in between.
  const json before = h.call(set_request({{"class.citizen.rate_per_sec", "11000"}}));
  ASSERT_TRUE(before["ok"].get<bool>()) << before.dump();

  const std::string base = h.initial_text();
  const std::vector<Rejection> rejections = {
      {"wrong type", set_request({{"class.citizen.rate_per_sec", "\"fast\""}}),
       "class.citizen.rate_per_sec"},
      {"value that is not TOML", set_request({{"class.citizen.rate_per_sec", "fast"}}),
       "class.citizen.rate_per_sec"},
      {"unknown class key", set_request({{"class.citizen.colour", "\"red\""}}),
       "class.citizen.colour"},
      {"unknown section key", set_request({{"boundary.lookups", "100"}}), "boundary.lookups"},
      {"unknown class", set_request({{"class.nobody.rate_per_sec", "5"}}), "class.nobody"},
      {"zero rate", set_request({{"class.citizen.rate_per_sec", "0"}}),
       "class.citizen.rate_per_sec"},
      {"priority out of range", set_request({{"class.citizen.priority", "9"}}),
       "class.citizen.priority"},
      {"decreasing reserves",
       set_request({{"boundary.lookups_reserve_pct", "[0, 6, 12, 18, 25, 31, 37, 20]"}}),
       "boundary.lookups_reserve_pct"},
      {"unknown shed action", set_request({{"class.citizen.on_shed", "\"explode\""}}),
       "class.citizen.on_shed"},
      {"burst without a rate", set_request({{"class.default.burst", "100"}}),
       "class.default.burst"},
      {"one bad key spoils the whole set",
       set_request({{"class.citizen.rate_per_sec", "20000"}, {"class.citizen.colour", "1"}}),
       "class.citizen.colour"},
      {"restart-only dataplane.outside", set_request({{"dataplane.outside", "\"eth9\""}}),
       "dataplane.outside"},
      {"restart-only dataplane.dpdk_workers", set_request({{"dataplane.dpdk_workers", "4"}}),
       "dataplane.dpdk_workers"},
      {"restart-only dataplane.dpdk_clock", set_request({{"dataplane.dpdk_clock", "\"capture\""}}),
       "dataplane.dpdk_clock"},
      {"restart-only admission.source_table_size",
       set_request({{"admission.source_table_size", "131072"}}), "admission.source_table_size"},
      {"restart-only metrics.listen", set_request({{"metrics.listen", "\"127.0.0.1:9110\""}}),
       "metrics.listen"},
      {"restart-only control.socket", set_request({{"control.socket", "\"/run/other.sock\""}}),
       "control.socket"},
      {"apply: TOML syntax error",
       {{"op", "apply"}, {"config", "[boundary\nlookups_per_sec = 1\n"}},
       "<apply>:1:"},
      {"apply: unknown key",
       {{"op", "apply"},
        {"config", replaced(base, "shadow = false", "shadow = false\nshadowy = 1")}},
       "admission.shadowy"},
      {"apply: restart-only key",
       {{"op", "apply"}, {"config", replaced(base, "outside = \"eth0\"", "outside = \"eth7\"")}},
       "dataplane.outside"},
      {"apply: config not a string", {{"op", "apply"}, {"config", 5}}, "config"},
      {"apply: source not a string", {{"op", "apply"}, {"config", base}, {"source", 5}}, "source"},
      {"apply: source empty", {{"op", "apply"}, {"config", base}, {"source", ""}}, "source"},
      {"apply: source with a newline",
       {{"op", "apply"}, {"config", base}, {"source", "edge.toml\nforged line"}},
       "source"},
      {"apply: source too long",
       {{"op", "apply"}, {"config", base}, {"source", std::string(4097, 'a')}},
       "source"},
      {"unknown profile", {{"op", "profile"}, {"name", "surge-9"}}, "profiles.surge-9"},
      {"profile without a name", {{"op", "profile"}}, "name"},
      {"profile with an empty name", {{"op", "profile"}, {"name", ""}}, "name"},
      {"apply: a profile named none (reserved for the base)",
       {{"op", "apply"},
        {"config", base + "\n[profiles.none]\n\"boundary.lookups_per_sec\" = 5\n"}},
       "profiles.none"},
      {"rollback to a generation never kept",
       {{"op", "rollback"}, {"generation", 999}},
       "generation 999 is not kept"},
      {"rollback to a negative generation", {{"op", "rollback"}, {"generation", -1}}, "generation"},
      {"rollback to a generation that is not a number",
       {{"op", "rollback"}, {"generation", "2"}},
       "generation"},
      {"not an object", json::array({"status"}), "op"},
      {"no op", json::object(), "op"},
      {"op not a string", {{"op", 5}}, "op"},
      {"unknown op", {{"op", "frobnicate"}}, "frobnicate"},
      {"settings not a list",
       {{"op", "set"}, {"settings", "class.citizen.rate_per_sec=1"}},
       "settings"},
      {"settings missing", {{"op", "set"}}, "settings"},
      {"settings empty", {{"op", "set"}, {"settings", json::array()}}, "settings"},
      {"setting not a pair",
       {{"op", "set"}, {"settings", json::array({json::array({"class.citizen.rate_per_sec"})})}},
       "settings"},
      {"setting value not a string",
       {{"op", "set"}, {"settings", json::array({json::array({"class.citizen.rate_per_sec", 5})})}},
       "settings"},
      {"dry_run not a bool",
       {{"op", "set"},
        {"settings", json::array({json::array({"class.citizen.rate_per_sec", "20000"})})},
        {"dry_run", "yes"}},
       "dry_run"},
      {"a misspelt dry_run (it would apply for real)",
       {{"op", "set"},
        {"settings", json::array({json::array({"class.citizen.rate_per_sec", "20000"})})},
        {"dryrun", true}},
       "dryrun: not a field of set; it takes op, settings and dry_run"},
      {"a field apply does not take",
       {{"op", "apply"}, {"config", base}, {"dry-run", true}},
       "dry-run: not a field of apply"},
      {"log_level has no dry run",
       {{"op", "log_level"}, {"level", "warn"}, {"dry_run", true}},
       "dry_run: log_level has no dry run"},
      {"status takes nothing",
       {{"op", "status"}, {"verbose", true}},
       "verbose: not a field of status; it takes op and dry_run"},
      {"shadow without a bool", {{"op", "shadow"}, {"on", "yes"}}, "on"},
      {"log level not a level", {{"op", "log_level"}, {"level", "verbose"}}, "level"},
      {"log level not a string", {{"op", "log_level"}, {"level", 7}}, "level"},
      {"dataplane refuses the apply", set_request({{"class.citizen.rate_per_sec", "20000"}}),
       "dataplane", /*dataplane_refuses=*/true},
  };

  const std::vector<uint64_t> applied = h.dataplane().applied();
  const std::string config = h.call({{"op", "get"}})["config"];
  for (const Rejection& row : rejections) {
    SCOPED_TRACE(row.name);
    if (row.dataplane_refuses) h.dataplane().refuse_next_apply();
    ::testing::internal::CaptureStderr();
    const json r = h.call(row.request);
    const std::string log = ::testing::internal::GetCapturedStderr();
    // Logged too, naming what was wrong (SluiceConfigRejected's runbook).
    EXPECT_TRUE(log.find("msg=\"config error\"") != std::string::npos ||
                log.find("msg=\"change refused\"") != std::string::npos)
        << log;
    EXPECT_NE(log.find(row.names), std::string::npos) << log;
    ASSERT_TRUE(r.is_object()) << r.dump();
    EXPECT_EQ(r["ok"], false) << r.dump();
    ASSERT_TRUE(r.contains("error") && r["error"].is_string()) << r.dump();
    EXPECT_EQ(r["error"].get<std::string>().find('\n'), std::string::npos) << "error is one line";
    EXPECT_TRUE(names(r, row.names)) << "should name \"" << row.names << "\": " << r.dump();
    if (r.contains("errors")) {
      ASSERT_TRUE(r["errors"].is_array()) << r.dump();
      for (const json& e : r["errors"]) {
        EXPECT_TRUE(e.contains("key") && e.contains("message") && e.contains("text")) << e.dump();
      }
    }
    EXPECT_EQ(h.state().generation(), 2u);
    EXPECT_EQ(h.dataplane().applied(), applied);
    EXPECT_EQ(h.call({{"op", "get"}})["config"], config);
  }

  // The refusal consumed the fake's refuse flag; the next change goes through.
  const json after = h.call(set_request({{"class.citizen.rate_per_sec", "12000"}}));
  ASSERT_TRUE(after["ok"].get<bool>()) << after.dump();
  EXPECT_EQ(after["generation"], 3);

  const std::vector<json> audit = test::read_audit(h.audit_path());
  ASSERT_EQ(audit.size(), 2u) << "one line per applied change, none for refusals";
  const std::pair<const char*, const char*> rates[] = {{"10000", "11000"}, {"11000", "12000"}};
  for (std::size_t i = 0; i < audit.size(); i++) {
    SCOPED_TRACE("audit line " + std::to_string(i + 1));
    EXPECT_EQ(audit[i]["op"], "set");
    EXPECT_EQ(audit[i]["old_generation"], i + 1);
    EXPECT_EQ(audit[i]["new_generation"], i + 2);
    EXPECT_EQ(audit[i]["origin"]["transport"], "unix");
    EXPECT_EQ(audit[i]["origin"]["uid"], 0);
    EXPECT_EQ(audit[i]["origin"]["pid"], 4242);
    EXPECT_EQ(diff_map(audit[i]),
              (Diff{{"class.citizen.rate_per_sec", {rates[i].first, rates[i].second}}}));
  }
}

// A start that fails before any change (its control socket taken, its
// dataplane refused) removes the audit log it created: an empty file said
// a run that never was. A file that was there, or that got a line, stays.
TEST(AuditLogTest, AFileItMadeAndNeverWroteIsRemovedAtAFailedStart) {
  test::TempDir dir;
  std::string error;
  const std::string fresh = dir.file("logs/audit.jsonl");
  {
    AuditLog audit;
    ASSERT_TRUE(audit.open(fresh, &error)) << error;
    ASSERT_TRUE(std::filesystem::exists(fresh));
    audit.discard_if_unused();
    EXPECT_FALSE(std::filesystem::exists(fresh));
  }
  const std::string kept = dir.file("kept.jsonl");
  test::write_text(kept, "{\"op\":\"set\"}\n");
  {
    AuditLog audit;
    ASSERT_TRUE(audit.open(kept, &error)) << error;
    audit.discard_if_unused();
  }
  EXPECT_EQ(test::read_audit(kept).size(), 1u);
  const std::string written = dir.file("written.jsonl");
  {
    AuditLog audit;
    ASSERT_TRUE(audit.open(written, &error)) << error;
    ASSERT_TRUE(audit.append({{"op", "start"}}));
    audit.discard_if_unused();
    EXPECT_TRUE(audit.append({{"op", "set"}}));  // still open
  }
  EXPECT_EQ(test::read_audit(written).size(), 2u);
}

}  // namespace
}  // namespace sluice
