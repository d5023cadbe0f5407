// SPDX-License-Identifier: Apache-2.0
// The XDP program's flow table as stats see it: entries kept across a
// retune that moves a class, and evictions, which the kernel's LRU does not
// report, derived from counts of the partitions.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/support/flow_fixtures.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/privileges.hpp"
#include "tests/support/traffic.hpp"
#include "tests/support/xdp_harness.hpp"

namespace sluice {
namespace {

using test::kAck;
using test::kSecond;
using test::kSyn;

constexpr uint64_t kT0 = 1000 * kSecond;

// A retune that moves a class to another priority keeps its flows verified
// in the program too (the slot assignment carries the partitions it used).
TEST(XdpFlows, RetuneMovingAClassKeepsItsFlows) {
  SLUICE_REQUIRE_ROOT();
  auto config = [](int prio) {
    return "[admission]\nflow_learn_sec = 0\n[[class]]\nname = \"web\"\npriority = " +
           std::to_string(prio) + "\nmatch = { src = \"198.18.0.0/15\" }\n";
  };
  test::XdpHarness h;
  ASSERT_TRUE(h.load(config(5)));
  h.run(test::seg4("198.18.1.1", 40000, "198.19.0.1", 443, kSyn), kT0);
  std::string error;
  ASSERT_TRUE(h.program().write_profile(test::profile_from_toml(config(0)), 2, &error)) << error;
  const test::BothResult r =
      h.run(test::seg4("198.18.1.1", 40000, "198.19.0.1", 443, kAck), kT0 + 1000);
  EXPECT_EQ(r.xdp.decision.reason, SL_REASON_CONTINUATION);
  const DataplaneStats st = h.program().stats();
  EXPECT_EQ(st.flow_entries[5], 1u);
  EXPECT_EQ(st.flow_table_capacity, 262144u);
}

// The kernel's LRU recycles flow entries without telling: the evicted count
// comes from each count of the entries (at most once a second), never runs
// ahead of the true count and never goes down. Before, it set the live
// count of entries made against a count of entries up to a second old: 20
// flows made since that count showed as 20 evictions in a table far from
// full, then went back to 0.
TEST(XdpFlows, EvictionsAreCountedFromEachCountAndNeverGoDown) {
  SLUICE_REQUIRE_ROOT();
  XdpProgramOptions o;
  o.fake_clock = true;
  o.flow_table_size = 8 * 4096;  // 4096 a partition
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(
      test::profile_from_toml("[admission]\nflow_learn_sec = 0\n[[class]]\nname = \"web\"\n"
                              "priority = 0\nmatch = { src = \"198.18.0.0/15\" }\n"),
      1, &error))
      << error;
  p->set_clock(kT0);
  uint32_t made = 0;
  auto open_flows = [&](uint32_t n) {
    for (uint32_t i = 0; i < n; i++, made++) {
      XdpTestResult r;
      ASSERT_TRUE(p->test_run(test::syn_v4(test::kNet198_18 + made), &r, &error)) << error;
    }
  };
  auto entries_become = [&](auto done) {  // the next count, within 5 s
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    DataplaneStats st = p->stats();
    while (!done(st) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      st = p->stats();
    }
    return st;
  };
  ASSERT_NO_FATAL_FAILURE(open_flows(100));
  DataplaneStats st = p->stats();
  EXPECT_EQ(st.flow_entries[0], 100u);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_CREATED], 100u);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_EVICTED], 0u);
  ASSERT_NO_FATAL_FAILURE(open_flows(20));
  st = p->stats();  // the count is the one of a moment ago
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_CREATED], 120u);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_EVICTED], 0u);
  st = entries_become([](const DataplaneStats& s) { return s.flow_entries[0] == 120; });
  ASSERT_EQ(st.flow_entries[0], 120u);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_EVICTED], 0u);
  // Past the partition's 4096: the LRU recycles; once counted, every flow
  // made and not there is an eviction, and the count stays.
  ASSERT_NO_FATAL_FAILURE(open_flows(5000));
  st = entries_become([](const DataplaneStats& s) { return s.flow_entries[0] != 120; });
  ASSERT_NE(st.flow_entries[0], 120u);
  EXPECT_LE(st.flow_entries[0], 4096u);
  const uint64_t evicted = st.flow_events[0][SL_FLOW_EV_EVICTED];
  EXPECT_EQ(evicted, made - st.flow_entries[0]);
  EXPECT_GE(evicted, made - 4096u);
  for (int i = 0; i < 3; i++) EXPECT_EQ(p->stats().flow_events[0][SL_FLOW_EV_EVICTED], evicted);
}

// A partition full of flows past their life (closed, or SYNs never
// answered) is not full: the LRU recycles those first, and that is no
// eviction. Before, each such recycled entry counted as one, and
// SluiceFlowTableFull fired for good on any busy edge once its partitions
// had filled with closed flows. Live flows recycled still count.
TEST(XdpFlows, RecycledDeadFlowsAreNoEvictions) {
  SLUICE_REQUIRE_ROOT();
  XdpProgramOptions o;
  o.fake_clock = true;
  o.flow_table_size = 8 * 4096;  // 4096 a partition
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(
      test::profile_from_toml("[admission]\nflow_learn_sec = 0\n[[class]]\nname = \"web\"\n"
                              "priority = 0\nmatch = { src = \"198.18.0.0/15\" }\n"),
      1, &error))
      << error;
  uint32_t made = 0;
  auto open_flows = [&](uint32_t n) {
    for (uint32_t i = 0; i < n; i++, made++) {
      XdpTestResult r;
      ASSERT_TRUE(p->test_run(test::syn_v4(test::kNet198_18 + made), &r, &error)) << error;
    }
  };
  auto counted = [&](uint64_t entries_not) {  // the next count, within 5 s
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    DataplaneStats st = p->stats();
    while (st.flow_entries[0] == entries_not && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      st = p->stats();
    }
    return st;
  };
  p->set_clock(kT0);
  ASSERT_NO_FATAL_FAILURE(open_flows(3000));
  DataplaneStats st = p->stats();  // a count: 3000 live entries, 10 s left
  ASSERT_EQ(st.flow_entries[0], 3000u);
  // Past the SYN entries' life (10 s), with no count in between: 3000
  // flows more, about 1904 past the 4096 recycled, all of them entries
  // whose life ran out since the last count.
  p->set_clock(kT0 + 11 * kSecond);
  ASSERT_NO_FATAL_FAILURE(open_flows(3000));
  st = counted(3000);
  ASSERT_NE(st.flow_entries[0], 3000u);
  EXPECT_LE(st.flow_entries[0], 4096u);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_CREATED], 6000u);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_EVICTED], 0u);
  // 5000 more, all live: once the dead ones left (at most 3000) are
  // used up, every one recycled is an eviction.
  const uint64_t before = st.flow_entries[0];
  ASSERT_NO_FATAL_FAILURE(open_flows(5000));
  st = counted(before);
  const uint64_t evicted = st.flow_events[0][SL_FLOW_EV_EVICTED];
  EXPECT_GE(evicted, 5000u - 3000u);
  EXPECT_LE(evicted, 5000u);
  for (int i = 0; i < 3; i++) EXPECT_EQ(p->stats().flow_events[0][SL_FLOW_EV_EVICTED], evicted);
}

}  // namespace
}  // namespace sluice
