// SPDX-License-Identifier: Apache-2.0
// The adaptive boundary in the control plane (docs/adaptive.md): learned
// rates reach the dataplane through the retune swap but are not config
// changes; the ceiling stays the operator's; turning adaptive off freezes
// the learned rate as one generation; a bad adaptive config is refused whole.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/adaptive/adaptive_agent.hpp"
#include "control/adaptive/adaptive_rate.hpp"
#include "control/api/control_state.hpp"
#include "control/config/compile.hpp"
#include "control/fleet/shares.hpp"
#include "tests/control/api/control_test_env.hpp"

namespace sluice {
namespace {

using test::ControlHarness;
using test::json;
using test::set_request;

uint64_t running_rate(ControlHarness& h) {
  return h.dataplane().last_profile().boundary_lookups.rate_per_sec;
}

TEST(AdaptiveControl, LearnedRatesAreNotConfigChanges) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  ASSERT_EQ(h.state().generation(), 2u);
  const ControlState::AdaptiveBounds b = h.state().adaptive_bounds();
  EXPECT_TRUE(b.on);
  EXPECT_EQ(b.ceiling, 40000);
  EXPECT_EQ(b.floor, 4000);  // default: the ceiling / 10
  std::string error;
  for (double rate : {30000.0, 12345.4, 900.0}) {
    ASSERT_TRUE(h.state().set_adaptive_rate(rate, &error)) << error;
    EXPECT_EQ(running_rate(h), static_cast<uint64_t>(std::llround(rate)));
  }
  // Same generation, no history entry, no audit line for any of them.
  EXPECT_EQ(h.state().generation(), 2u);
  EXPECT_EQ(h.dataplane().applied().back(), 2u);
  EXPECT_EQ(test::read_audit(h.audit_path()).size(), 1u);
  EXPECT_EQ(h.call({{"op", "history"}})["generations"].size(), 2u);
  // The burst scales with the rate: the same time's worth (40000 / 10 at
  // the ceiling; 900 / 10 now).
  EXPECT_EQ(h.dataplane().last_profile().boundary_lookups.cap_nt / SL_TOKEN, 90u);
  // The status says what the config says: the ceiling.
  EXPECT_EQ(h.call({{"op", "status"}})["boundary"]["lookups_per_sec"], 40000);
}

// A learned rate patches the running profile's boundary lookup budget
// alone (compiling every prefix ten times a second was a quarter of a core with
// 100,000 of them): what reaches the dataplane is what compiling the whole
// config at that rate gives, after a change of the config and with fleet
// shares too.
TEST(AdaptiveControl, ALearnedRateRecompilesOnlyTheBoundary) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  std::optional<EdgeShares> shares;
  auto expect_whole = [&](double rate) {
    SCOPED_TRACE("rate " + std::to_string(rate));
    std::string error;
    ASSERT_TRUE(h.state().set_adaptive_rate(rate, &error)) << error;
    Config run = h.state().config();
    if (shares) run = apply_shares(run, *shares);
    const CompiledProfile want = compile_profile(with_adaptive_rate(run, rate));
    const CompiledProfile got = h.dataplane().last_compiled();
    EXPECT_EQ(std::memcmp(&got.prof, &want.prof, sizeof(sl_profile)), 0);
    EXPECT_EQ(got.prof.boundary_lookups.rate_per_sec, want.prof.boundary_lookups.rate_per_sec);
    EXPECT_EQ(got.src_prefixes, want.src_prefixes);
    EXPECT_EQ(got.dst_prefixes, want.dst_prefixes);
    EXPECT_EQ(got.port_mask, want.port_mask);
    EXPECT_EQ(got.class_names, want.class_names);
  };
  for (double rate : {30000.0, 12345.4, 900.0}) expect_whole(rate);
  // A change of the config (a class rate, not the boundary) is in the next one.
  ASSERT_TRUE(h.call(set_request({{"class.citizen.rate_per_sec", "7000"}}))["ok"].get<bool>());
  expect_whole(15000);
  EXPECT_EQ(h.dataplane().last_profile().classes[1].bucket.rate_per_sec, 7000u);
  // So are this edge's fleet shares.
  shares = EdgeShares{};
  shares->boundary_lookups = BudgetShare{20000, 2000};
  shares->classes["citizen"] = BudgetShare{3000, 300};
  std::string error;
  ASSERT_TRUE(h.state().set_shares(*shares, &error)) << error;
  expect_whole(25000);  // over the share: held at it
  expect_whole(4321);
  EXPECT_EQ(h.dataplane().last_profile().boundary_lookups.rate_per_sec, 4321u);
  // Back to no learned rate: the running config's own budget.
  ASSERT_TRUE(h.state().set_adaptive_rate(std::nullopt, &error)) << error;
  EXPECT_EQ(h.dataplane().last_profile().boundary_lookups.rate_per_sec, 20000u);
}

// The metrics' "in use" panels divide by what this edge enforces: its fleet
// share and the adaptive rate, not the configured budget (an edge shedding
// at its full share of a 4-edge fleet showed 25% in use).
TEST(AdaptiveControl, FiguresSayTheRatesThisEdgeEnforces) {
  ControlHarness h;
  auto enforced_class = [&](const std::string& name) {
    for (const auto& [c, rate] : h.state().figures().class_rate_enforced)
      if (c == name) return rate;
    return uint64_t{0};
  };
  ControlFigures f = h.state().figures();
  EXPECT_EQ(f.boundary_lookups_enforced, f.boundary_lookups_per_sec);
  EXPECT_EQ(f.boundary_lookups_enforced, 40000u);
  EXPECT_EQ(enforced_class("checkpoint"), 20000u);
  EdgeShares shares;
  shares.boundary_lookups = BudgetShare{10000, 1000};
  shares.classes["checkpoint"] = BudgetShare{5000, 500};
  std::string error;
  ASSERT_TRUE(h.state().set_shares(shares, &error)) << error;
  f = h.state().figures();
  EXPECT_EQ(f.boundary_lookups_per_sec, 40000u);  // the fleet's budget
  EXPECT_EQ(f.boundary_lookups_enforced, 10000u);
  EXPECT_EQ(f.boundary_packets_enforced, f.boundary_packets_per_sec);
  EXPECT_EQ(enforced_class("checkpoint"), 5000u);
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  ASSERT_TRUE(h.state().set_adaptive_rate(4321, &error)) << error;
  EXPECT_EQ(h.state().figures().boundary_lookups_enforced, 4321u);
  EXPECT_EQ(h.state().figures().boundary_lookups_enforced, running_rate(h));
}

TEST(AdaptiveControl, TheCeilingStaysTheOperators) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  std::string error;
  ASSERT_TRUE(h.state().set_adaptive_rate(30000, &error)) << error;
  // A lower ceiling holds the rate under it at once.
  ASSERT_TRUE(h.call(set_request({{"boundary.lookups_per_sec", "20000"}}))["ok"].get<bool>());
  EXPECT_EQ(running_rate(h), 20000u);
  EXPECT_EQ(h.state().adaptive_bounds().ceiling, 20000);
}

TEST(AdaptiveControl, TurningItOffFreezesTheLearnedRate) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  std::string error;
  ASSERT_TRUE(h.state().set_adaptive_rate(12345.4, &error)) << error;
  const json r = h.call(set_request({{"boundary.adaptive", "false"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["generation"], 3);
  EXPECT_EQ(h.value("boundary.lookups_per_sec"), "12345");
  EXPECT_EQ(running_rate(h), 12345u);
  EXPECT_NE(r["notes"].dump().find("learned rate 12345"), std::string::npos) << r.dump();
  EXPECT_FALSE(h.state().adaptive_rate().has_value());
  const std::vector<json> audit = test::read_audit(h.audit_path());
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_NE(audit[1]["diff"].dump().find("boundary.lookups_per_sec"), std::string::npos);

  // Naming a ceiling in the same change sets that instead.
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  ASSERT_TRUE(h.state().set_adaptive_rate(5000, &error)) << error;
  ASSERT_TRUE(h.call(set_request(
      {{"boundary.adaptive", "false"}, {"boundary.lookups_per_sec", "7000"}}))["ok"]
                  .get<bool>());
  EXPECT_EQ(h.value("boundary.lookups_per_sec"), "7000");
}

// The agent reads adaptive on, then stores its step's rate: a turn off
// landing between the two leaves no rate behind, so turning adaptive on
// again runs the ceiling until the agent's first step, not that old rate.
// Before, the stale rate was kept (and ran at the next turn on).
TEST(AdaptiveControl, ARateStoredAfterTurningItOffIsNotKept) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  ASSERT_TRUE(h.call(set_request(
      {{"boundary.adaptive", "false"}, {"boundary.lookups_per_sec", "40000"}}))["ok"]
                  .get<bool>());
  const std::size_t swaps = h.dataplane().applied().size();
  std::string error;
  ASSERT_TRUE(h.state().set_adaptive_rate(4321, &error)) << error;  // the agent's late step
  EXPECT_FALSE(h.state().adaptive_rate().has_value());
  EXPECT_EQ(h.dataplane().applied().size(), swaps);  // nothing reached the dataplane
  EXPECT_EQ(running_rate(h), 40000u);
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  EXPECT_EQ(running_rate(h), 40000u);  // the ceiling, not 4321
}

// sluiced's start: the first profile already runs the learned rate, which
// is kept without a swap; a fleet's first shares then run with it. Before,
// the rate was applied again before the shares: a moment with the tables'
// budgets instead of this edge's shares.
TEST(AdaptiveControl, ASeededRateIsKeptWithoutASwapAndRunsWithTheFirstShares) {
  ControlHarness h;
  const std::size_t swaps = h.dataplane().applied().size();
  h.state().seed_adaptive_rate(1234);  // adaptive off: ignored
  EXPECT_FALSE(h.state().adaptive_rate().has_value());
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  const std::size_t after_change = h.dataplane().applied().size();
  ASSERT_GT(after_change, swaps);
  h.state().seed_adaptive_rate(1234);
  EXPECT_EQ(h.state().adaptive_rate(), 1234.0);
  EXPECT_EQ(h.dataplane().applied().size(), after_change);  // no swap
  EdgeShares shares;
  shares.boundary_lookups = BudgetShare{20000, 2000};
  std::string error;
  ASSERT_TRUE(h.state().set_shares(shares, &error)) << error;
  EXPECT_EQ(running_rate(h), 1234u);
}

// An explicit burst scales with the learned rate while adaptive runs
// (20000 at the ceiling of 40000, 500 at 1000/s); turning adaptive off
// freezes that burst with the rate. Before, the rate froze at 1000/s with
// the ceiling's burst of 20000: 20 s of lookups at once.
TEST(AdaptiveControl, TurningItOffFreezesTheBurstItRanWith) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request(
      {{"boundary.adaptive", "true"}, {"boundary.lookups_burst", "20000"}}))["ok"]
                  .get<bool>());
  std::string error;
  ASSERT_TRUE(h.state().set_adaptive_rate(1000, &error)) << error;
  EXPECT_EQ(h.dataplane().last_profile().boundary_lookups.cap_nt / SL_TOKEN, 500u);
  const json r = h.call(set_request({{"boundary.adaptive", "false"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(h.value("boundary.lookups_per_sec"), "1000");
  EXPECT_EQ(h.value("boundary.lookups_burst"), "500");
  EXPECT_EQ(h.dataplane().last_profile().boundary_lookups.cap_nt / SL_TOKEN, 500u);
  EXPECT_NE(r["notes"].dump().find("burst it ran with, 500"), std::string::npos) << r.dump();
}

// Under a profile that sets the ceiling higher than the learned rate,
// turning adaptive off would run the profile's rate: refused, naming the
// profile, with nothing changed. Below it, the freeze holds as without one.
TEST(AdaptiveControl, AFreezeAProfileWouldOverrideIsRefused) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  ASSERT_TRUE(h.call({{"op", "profile"}, {"name", "surge-1"}})["ok"].get<bool>());
  std::string error;
  ASSERT_TRUE(h.state().set_adaptive_rate(12345, &error)) << error;
  const uint64_t generation = h.state().generation();
  const json r = h.call(set_request({{"boundary.adaptive", "false"}}));
  ASSERT_FALSE(r["ok"].get<bool>()) << r.dump();
  EXPECT_NE(r["error"].get<std::string>().find("profile surge-1 sets boundary.lookups_per_sec = "
                                               "30000"),
            std::string::npos)
      << r.dump();
  EXPECT_NE(r["error"].get<std::string>().find("learned rate 12345/s"), std::string::npos);
  EXPECT_EQ(h.state().generation(), generation);
  EXPECT_TRUE(h.state().config().boundary.adaptive);
  EXPECT_EQ(running_rate(h), 12345u);

  // Out of the profile, the freeze keeps the learned rate, and the audit
  // line carries the note that says so.
  ASSERT_TRUE(h.call({{"op", "profile"}, {"name", "none"}})["ok"].get<bool>());
  ASSERT_TRUE(h.state().set_adaptive_rate(12345, &error)) << error;
  const json off = h.call(set_request({{"boundary.adaptive", "false"}}));
  ASSERT_TRUE(off["ok"].get<bool>()) << off.dump();
  EXPECT_EQ(running_rate(h), 12345u);
  const std::vector<json> audit = test::read_audit(h.audit_path());
  EXPECT_NE(audit.back().value("notes", json()).dump().find("learned rate 12345"),
            std::string::npos)
      << audit.back().dump();
}

TEST(AdaptiveControl, BadAdaptiveConfigsAreRefusedWhole) {
  ControlHarness h;
  const json floor = h.call(
      set_request({{"boundary.adaptive", "true"}, {"boundary.adaptive_min_per_sec", "50000"}}));
  EXPECT_FALSE(floor["ok"].get<bool>());
  EXPECT_NE(floor["error"].get<std::string>().find("boundary.adaptive_min_per_sec"),
            std::string::npos)
      << floor.dump();
  const json no_ceiling = h.call(set_request({{"boundary.adaptive", "1"}}));
  EXPECT_FALSE(no_ceiling["ok"].get<bool>());
  EXPECT_NE(no_ceiling["error"].get<std::string>().find("boolean"), std::string::npos);
  EXPECT_EQ(h.state().generation(), 1u);

  // Host mode sees no replies.
  std::string text(test::kControlTestConfig);
  text.replace(text.find("inside = \"eth1\"\n"), 16, "");
  LoadResult host = load_config_string(text + "\n", "host.toml");
  ASSERT_TRUE(host.ok());
  LoadResult adaptive = apply_overrides(host.text, "host.toml", {{"boundary.adaptive", "true"}});
  ASSERT_FALSE(adaptive.ok());
  EXPECT_NE(adaptive.errors[0].to_string().find("inline mode only"), std::string::npos)
      << adaptive.errors[0].to_string();
}

TEST(AdaptiveRate, ReplacesTheRateAndScalesTheBurst) {
  ControlHarness h;
  Config c = h.state().config();
  c.boundary.lookups_burst = 4000;
  const Config r = with_adaptive_rate(c, 1000);
  EXPECT_EQ(r.boundary.lookups_per_sec, 1000u);
  EXPECT_EQ(r.boundary.lookups_burst, 100u);
  EXPECT_EQ(with_adaptive_rate(c, 1e9).boundary.lookups_per_sec, 40000u);  // the ceiling
  EXPECT_EQ(with_adaptive_rate(c, 0.2).boundary.lookups_per_sec, 1u);
  // Not below kMinAdaptiveBurst (the reserves need tokens to keep), nor
  // above the configured burst when that is smaller.
  EXPECT_EQ(with_adaptive_rate(c, 0.2).boundary.lookups_burst, kMinAdaptiveBurst);
  EXPECT_EQ(with_adaptive_rate(c, 27).boundary.lookups_burst, kMinAdaptiveBurst);
  c.boundary.lookups_burst = 5;
  EXPECT_EQ(with_adaptive_rate(c, 27).boundary.lookups_burst, 5u);
}

// The reserves of the scaled burst keep at least kMinReserveTokens for the
// priorities above (a percent of 8 tokens is less than one).
TEST(AdaptiveRate, TheReservesKeepTokensAtALowRate) {
  ControlHarness h;
  Config c = h.state().config();
  c.boundary.lookups_per_sec = 1000;
  c.boundary.lookups_burst = 100;
  const CompiledProfile p = compile_profile(with_adaptive_rate(c, 27));
  EXPECT_EQ(p.prof.boundary_lookups.cap_nt, kMinAdaptiveBurst * SL_TOKEN);
  EXPECT_EQ(p.prof.lookups_reserve_nt[0], 0u);  // 0% stays 0
  EXPECT_EQ(p.prof.lookups_reserve_nt[1], kMinReserveTokens * SL_TOKEN);
  // 43% of 8 is 3.44 tokens: above the least, kept.
  EXPECT_EQ(p.prof.lookups_reserve_nt[7], 8 * SL_TOKEN / 100 * 43);
}

TEST(AdaptiveAgentParts, TheLearnedRateFileAndTheTick) {
  const std::string dir = ::testing::TempDir() + "/adaptive-state";
  const std::string path = dir + "/adaptive.json";
  std::string error;
  ASSERT_TRUE(keep_learned_rate(path, 321.6, &error)) << error;
  EXPECT_EQ(load_learned_rate(path, 3600), 322.0);
  EXPECT_FALSE(load_learned_rate(path, -100).has_value());  // older than allowed
  EXPECT_FALSE(load_learned_rate(dir + "/missing.json", 3600).has_value());
  EXPECT_FALSE(load_learned_baseline(path, 3600).has_value());  // none kept
  ASSERT_TRUE(keep_learned_rate(path, 100, &error, 0.0421)) << error;
  EXPECT_EQ(load_learned_rate(path, 3600), 100.0);
  EXPECT_NEAR(load_learned_baseline(path, 3600).value_or(0), 0.0421, 1e-9);
  EXPECT_FALSE(load_learned_baseline(path, -100).has_value());

  DataplaneStats a, b;
  a.classes.resize(1);
  b.classes.resize(1);
  a.backend.requests = 10;
  b.backend.requests = 25;
  b.backend.hist[7] = 3;
  a.classes[0].lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 100;
  b.classes[0].lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 160;
  b.classes[0].lookups[SL_VERDICT_SHED][SL_REASON_BOUNDARY_LOOKUPS] = 4;
  b.classes[0].lookups[SL_VERDICT_SHED][SL_REASON_STICKY] = 5;
  b.classes[0].lookups[SL_VERDICT_SHED][SL_REASON_CLASS_RATE] = 6;  // not the boundary's
  const AdaptiveTick t = adaptive_tick(a, b, 0.1);
  EXPECT_EQ(t.signal.requests, 15u);
  EXPECT_EQ(t.signal.hist[7], 3u);
  EXPECT_EQ(t.admitted_lookups, 60u);
  EXPECT_EQ(t.boundary_shed, 9u);
  // Counters that went backwards (state made anew) count nothing.
  EXPECT_EQ(adaptive_tick(b, a, 0.1).signal.requests, 0u);
}

// A step's rate the dataplane refuses is not published as the edge's rate
// (sluice_adaptive_rate, status): the agent says what runs. Before, the
// controller's refused rate was reported, and kept for the next start.
TEST(AdaptiveAgentParts, ARefusedRateIsNotReportedAsRunning) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  AdaptiveAgent agent(h.state(), "", 2);
  auto wait_for = [](auto done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return done();
  };
  ASSERT_TRUE(wait_for([&] { return agent.figures().has_value(); }));
  EXPECT_EQ(agent.figures()->rate, 40000);  // the ceiling
  h.dataplane().set_refusing(true);
  const uint64_t calls = h.dataplane().apply_calls();
  // A fleet's re-split moves the controller halfway to 10000: 25000, refused.
  h.state().set_adaptive_fair(10000);
  // Refused twice: the first refusal's step has been reported.
  ASSERT_TRUE(wait_for([&] { return h.dataplane().apply_calls() >= calls + 2; }));
  EXPECT_EQ(agent.figures()->rate, 40000);
  EXPECT_EQ(agent.status()["rate"], 40000);
  EXPECT_EQ(running_rate(h), 40000u);
  h.dataplane().set_refusing(false);
  ASSERT_TRUE(wait_for([&] { return running_rate(h) == 25000u; }));
  ASSERT_TRUE(wait_for([&] { return agent.figures()->rate == 25000; }));
}

// The learned-rate file's time says when its rate was last in force, not
// when it last moved: a rate that held (at the floor through a long
// outage, say) is kept again, so a restart within the hour starts from it.
// Before, a rate unchanged for an hour was too old for the next start,
// which began at the ceiling.
TEST(AdaptiveAgentParts, ARateThatHoldsIsKeptAsInForce) {
  ControlHarness h;
  ASSERT_TRUE(h.call(set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  const std::string path = h.dir().file("adaptive.json");
  const double stamped =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() -
      1800;  // kept half an hour ago
  test::write_text(path, json{{"rate", 5000}, {"unix", stamped}}.dump() + "\n");
  auto file_time = [&] {
    std::ifstream in(path);
    const json j = json::parse(in, nullptr, false);
    return j.is_object() ? j.value("unix", 0.0) : 0.0;
  };
  {
    AdaptiveAgent agent(h.state(), path, 2);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (file_time() < stamped + 1000 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_GE(file_time(), stamped + 1000) << "the held rate's time was not refreshed";
    ASSERT_TRUE(agent.figures().has_value());
    EXPECT_EQ(agent.figures()->rate, 5000);
  }
  EXPECT_EQ(load_learned_rate(path, 3600), 5000.0);
}

// A restarted inline edge runs its learned rate from its first packet: the
// first profile has it (within the floor), not the ceiling.
TEST(AdaptiveAgentParts, AnInlineEdgeStartsAtItsLearnedRate) {
  ControlHarness h;
  Config c = h.state().config();
  ASSERT_FALSE(c.dataplane.inside.empty());
  c.boundary.adaptive = true;
  c.boundary.lookups_per_sec = 1000;
  c.boundary.lookups_burst = 100;
  const std::string dir = ::testing::TempDir() + "/adaptive-start";
  const std::string path = dir + "/adaptive.json";
  std::string error;
  ASSERT_TRUE(keep_learned_rate(path, 123, &error)) << error;
  const CompiledProfile ceiling = compile_profile(c);
  const CompiledProfile at_123 = compile_profile(with_adaptive_rate(c, 123));
  ASSERT_NE(ceiling.prof.boundary_lookups.cap_nt, at_123.prof.boundary_lookups.cap_nt);
  auto same_boundary = [](const CompiledProfile& a, const CompiledProfile& b) {
    return std::memcmp(&a.prof.boundary_lookups, &b.prof.boundary_lookups,
                       sizeof(a.prof.boundary_lookups)) == 0;
  };

  CompiledProfile first = compile_profile(c);
  EXPECT_EQ(start_at_learned_rate(c, nullptr, path, &first), 123.0);
  EXPECT_TRUE(same_boundary(first, at_123));
  // Below the floor (a tenth of the ceiling): the floor.
  ASSERT_TRUE(keep_learned_rate(path, 5, &error)) << error;
  first = compile_profile(c);
  EXPECT_EQ(start_at_learned_rate(c, nullptr, path, &first), 100.0);
  EXPECT_TRUE(same_boundary(first, compile_profile(with_adaptive_rate(c, 100))));
  // Host mode, adaptive off, no rate kept: the ceiling, untouched.
  for (int i = 0; i < 3; i++) {
    Config other = c;
    std::string where = path;
    if (i == 0) other.dataplane.inside.clear();
    if (i == 1) other.boundary.adaptive = false;
    if (i == 2) where = dir + "/missing.json";
    first = compile_profile(other);
    EXPECT_FALSE(start_at_learned_rate(other, nullptr, where, &first).has_value()) << i;
    EXPECT_TRUE(same_boundary(first, compile_profile(other))) << i;
  }
}

}  // namespace
}  // namespace sluice
