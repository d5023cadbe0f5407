// SPDX-License-Identifier: Apache-2.0
// The XDP program's flow table (sets of our own, bpf/shared_state.h) as
// stats and packets see it: entries kept across a retune that moves a
// class, and what a full set recycles.
#include <gtest/gtest.h>

#include <string>

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
  EXPECT_EQ(st.flow_table_capacity, 8u * 8192 * 8);  // 8192 sets of 8 ways a partition
}

// A partition of 4096 entries: 1024 sets of 8 ways, with "web" (priority 0)
// opening flows from a new source each, on the tests' clock.
class XdpFlowTable : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_ROOT();
    XdpProgramOptions o;
    o.fake_clock = true;
    o.record_decision = true;
    o.flow_table_size = 8 * 4096;
    std::string error;
    p_ = XdpProgram::load(o, &error);
    ASSERT_TRUE(p_) << error;
    ASSERT_TRUE(p_->write_profile(
        test::profile_from_toml("[admission]\nflow_learn_sec = 0\n[[class]]\nname = \"web\"\n"
                                "priority = 0\nmatch = { src = \"198.18.0.0/15\" }\n"),
        1, &error))
        << error;
  }
  // SYNs of n new flows, one from each of the next n sources.
  void open_flows(uint32_t n) {
    std::string error;
    for (uint32_t i = 0; i < n; i++, made_++) {
      XdpTestResult r;
      ASSERT_TRUE(p_->test_run(test::syn_v4(test::kNet198_18 + made_), &r, &error)) << error;
    }
  }
  // Of the flows [first, first + n), those an ACK finds verified.
  uint32_t verified(uint32_t first, uint32_t n) {
    auto ack = test::PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").tcp(40000, 443, kAck).build();
    std::string error;
    uint32_t hits = 0;
    for (uint32_t i = first; i < first + n; i++) {
      test::set_src_v4(ack, test::kNet198_18 + i);
      XdpTestResult r;
      EXPECT_TRUE(p_->test_run(ack, &r, &error)) << error;
      hits += r.decision.reason == SL_REASON_CONTINUATION;
    }
    return hits;
  }
  std::unique_ptr<XdpProgram> p_;
  uint32_t made_ = 0;
};

// The program counts what a full set recycles: below capacity nothing, then
// exactly the live flows that made room for others, every one of which a
// later ACK finds gone; the entries (from its events) are exactly the flows
// an ACK finds.
TEST_F(XdpFlowTable, EvictionsAreExactlyTheLiveFlowsLost) {
  p_->set_clock(kT0);
  ASSERT_NO_FATAL_FAILURE(open_flows(100));
  DataplaneStats st = p_->stats();
  EXPECT_EQ(st.flow_table_capacity, 8u * 1024 * 8);
  EXPECT_EQ(st.flow_entries[0], 100u);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_CREATED], 100u);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_EVICTED], 0u);
  // 20000 flows more in 8192 ways, all live (a SYN's entry lives 10 s).
  ASSERT_NO_FATAL_FAILURE(open_flows(20000));
  st = p_->stats();
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_CREATED], made_);
  EXPECT_EQ(st.flow_events[0][SL_FLOW_EV_EXPIRED], 0u);
  const uint64_t evicted = st.flow_events[0][SL_FLOW_EV_EVICTED];
  EXPECT_EQ(evicted + st.flow_entries[0], made_);
  EXPECT_GE(st.flow_entries[0], 8000u) << "the sets fill up before they recycle";
  EXPECT_EQ(verified(0, made_), st.flow_entries[0]);
  for (int i = 0; i < 3; i++) EXPECT_EQ(p_->stats().flow_events[0][SL_FLOW_EV_EVICTED], evicted);
}

// A set recycles an empty way first, then an entry past its life (a closed
// flow, a SYN never answered), counted expired, not evicted: only the live
// flows lost are evictions. A table full of dead flows takes new ones as an
// empty one would. Counted as evictions, recycled dead flows made
// SluiceFlowTableFull fire for good on any busy edge.
TEST_F(XdpFlowTable, RecycledDeadFlowsAreNoEvictions) {
  p_->set_clock(kT0);
  ASSERT_NO_FATAL_FAILURE(open_flows(6000));  // 3 ways in 4 taken
  const DataplaneStats full = p_->stats();
  ASSERT_GE(full.flow_entries[0], 5500u);
  const uint64_t evicted_before = full.flow_events[0][SL_FLOW_EV_EVICTED];
  // Past the SYN entries' life (10 s): 3000 new flows, many of them in a
  // dead flow's way.
  p_->set_clock(kT0 + 11 * kSecond);
  ASSERT_NO_FATAL_FAILURE(open_flows(3000));
  const DataplaneStats after = p_->stats();
  const uint64_t evicted = after.flow_events[0][SL_FLOW_EV_EVICTED] - evicted_before;
  EXPECT_GE(after.flow_events[0][SL_FLOW_EV_EXPIRED], 500u) << "dead ways recycled, counted";
  const uint32_t kept = verified(6000, 3000);
  EXPECT_EQ(evicted, 3000u - kept) << "only new flows that met 8 newer ones in their set count";
  // 3000 flows in 1024 sets: a few meet 8 others in theirs.
  EXPECT_LE(evicted, 30u);
  // ACKs of the first flows find them past their life (and empty their
  // ways): what is left is the new flows an ACK found.
  EXPECT_EQ(verified(0, 6000), 0u) << "the first flows are past their life";
  EXPECT_EQ(p_->stats().flow_entries[0], kept);
}

}  // namespace
}  // namespace sluice
