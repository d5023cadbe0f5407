// SPDX-License-Identifier: Apache-2.0
// The XDP program on this kernel: it loads with every knob combination, and
// BPF_PROG_TEST_RUN fixtures show every semantic of the brief, each checked
// against the reference model on the same frames at the same times; then a
// randomized differential trace of 100,000 packets.
#include <gtest/gtest.h>

#include <linux/bpf.h>
#include <cstring>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/model/parse.h"
#include "tests/support/flow_fixtures.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/privileges.hpp"
#include "tests/support/scoped_pins.hpp"
#include "tests/support/traffic.hpp"
#include "tests/support/xdp_harness.hpp"

namespace sluice {
namespace {

using test::kAck;
using test::kSecond;
using test::kSyn;
using test::PacketBuilder;

constexpr uint64_t kT0 = 1000 * kSecond;

TEST(XdpVerifier, LoadsWithEveryKnobCombination) {
  SLUICE_REQUIRE_ROOT();
  for (int mask = 0; mask < 8; mask++) {
    XdpProgramOptions o;
    o.inline_mode = mask & 1;
    o.fake_clock = mask & 2;
    o.record_decision = mask & 4;
    std::string error;
    auto p = XdpProgram::load(o, &error);
    ASSERT_TRUE(p) << "knobs " << mask << ": " << error;
    EXPECT_GT(p->verified_insns(), 0u);
    if (mask == 0 || mask == 1)
      std::printf("verified instructions (inline=%d): %u\n", mask & 1, p->verified_insns());
  }
  // The per-source table size is the one map size the config sets.
  for (uint64_t size : {1024ULL, 1ULL << 20}) {
    XdpProgramOptions o;
    o.source_table_size = size;
    std::string error;
    EXPECT_TRUE(XdpProgram::load(o, &error)) << error;
  }
}

// One step of a fixture: a frame at a time, and what must come out.
struct Step {
  std::vector<uint8_t> frame;
  uint64_t at_ns;
  const char* cls;
  int verdict;
  int reason;
  int xdp_action;
};

struct Fixture {
  std::string name;
  std::string toml;
  std::vector<Step> steps;
};

void PrintTo(const Fixture& f, std::ostream* os) { *os << f.name; }

std::vector<uint8_t> syn_from(const char* src, uint16_t port = 443) {
  return PacketBuilder().ipv4(src, "198.19.0.1").tcp(40000, port, kSyn, 1234).build();
}

std::vector<Fixture> fixtures() {
  const std::string classes = R"(
[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24", "2001:2:0:10::/64"], proto = "tcp", dst_ports = ["443", "8000-8100"] }

[[class]]
name = "voice"
match = { dscp = 46 }

[[class]]
name = "citizen"
match = { src = ["198.18.0.0/15", "2001:2::/48"] }
)";
  const std::string limited = R"(
[[class]]
name = "web"
rate_per_sec = 10
burst = 2
shed_order = "random"
on_shed = "ON_SHED"
MARK
)";
  auto with = [&](std::string t, const char* action) {
    t.replace(t.find("ON_SHED"), 7, action);
    t.replace(t.find("MARK"), 4, std::string(action) == "mark" ? "mark_dscp = 10" : "");
    return t;
  };
  const auto ack =
      PacketBuilder().ipv4("198.18.10.5", "198.19.0.1").tcp(40000, 443, kAck).payload(60).build();
  const auto udp = PacketBuilder().ipv4("198.18.1.1", "198.19.0.1").udp(5000, 53).build();
  auto bad = syn_from("198.18.1.1");
  bad[14] = 0x44;  // IHL 4
  return {
      {"classes",
       classes,
       {{syn_from("198.18.10.5"), kT0, "checkpoint", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP,
         XDP_PASS},
        {syn_from("198.18.10.5", 8080), kT0, "checkpoint", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP,
         XDP_PASS},
        {syn_from("198.18.10.5", 80), kT0, "citizen", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP,
         XDP_PASS},
        {PacketBuilder().ipv4("198.19.9.9", "198.19.0.1", 46).udp(1, 9).build(), kT0, "voice",
         SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {PacketBuilder().ipv6("2001:2:0:10::7", "2001:2::1").tcp(1, 8100, kSyn).build(), kT0,
         "checkpoint", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {PacketBuilder().ipv6("2001:2:0:99::7", "2001:2::1").tcp(1, 443, kSyn).build(), kT0,
         "citizen", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {PacketBuilder().ipv6("2001:3::7", "2001:2::1").tcp(1, 443, kSyn).build(), kT0, "default",
         SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {PacketBuilder().vlan(10).ipv4("198.18.10.5", "198.19.0.1").tcp(1, 443, kSyn).build(), kT0,
         "checkpoint", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {PacketBuilder()
             .vlan(100, 0x88A8)
             .vlan(10)
             .ipv6("2001:2::5", "2001:2::1")
             .ipv6_ext(0, 8)
             .ipv6_ext(60, 16)
             .udp(1, 53)
             .build(),
         kT0, "citizen", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS}}},
      {"bucket_refills_with_time",
       with(limited, "drop"),
       {{syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.2"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.3"), kT0, "web", SL_VERDICT_SHED, SL_REASON_CLASS_RATE, XDP_DROP},
        {syn_from("198.18.1.4"), kT0 + kSecond / 10 - 1, "web", SL_VERDICT_SHED,
         SL_REASON_CLASS_RATE, XDP_DROP},
        {syn_from("198.18.1.5"), kT0 + kSecond / 10, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP,
         XDP_PASS},
        {syn_from("198.18.1.6"), kT0 + kSecond / 10, "web", SL_VERDICT_SHED, SL_REASON_CLASS_RATE,
         XDP_DROP}}},
      {"continuations_are_not_charged",
       with(limited, "drop"),
       {{syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {ack, kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_CONTINUATION, XDP_PASS},
        {ack, kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_CONTINUATION, XDP_PASS},
        {syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_SHED, SL_REASON_CLASS_RATE, XDP_DROP}}},
      {"reset_answers_a_syn_drops_the_rest",
       with(limited, "reset"),
       {{syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_SHED, SL_REASON_CLASS_RATE, XDP_TX},
        {PacketBuilder()
             .vlan(5)
             .ipv6("2001:2::9", "2001:2::1")
             .ipv6_ext(0, 8)
             .tcp(7, 443, kSyn, 99, 12)
             .build(),
         kT0, "web", SL_VERDICT_SHED, SL_REASON_CLASS_RATE, XDP_TX},
        {udp, kT0, "web", SL_VERDICT_SHED, SL_REASON_CLASS_RATE, XDP_DROP}}},
      {"mark_passes_with_dscp",
       with(limited, "mark"),
       {{udp, kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {udp, kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {udp, kT0, "web", SL_VERDICT_SHED, SL_REASON_CLASS_RATE, XDP_PASS}}},
      {"shadow_admits_and_counts",
       "[admission]\nshadow = true\n" + with(limited, "reset"),
       {{syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.1"), kT0, "web", SL_VERDICT_ADMITTED, SL_REASON_CLASS_RATE, XDP_PASS},
        {bad, kT0, "default", SL_VERDICT_ADMITTED, SL_REASON_MALFORMED, XDP_PASS}}},
      {"reserves_keep_the_boundary_for_higher_priorities",
       R"(
[boundary]
lookups_per_sec = 1
lookups_burst = 10
lookups_reserve_pct = [0, 10, 20, 30, 40, 50, 60, 70]

[[class]]
name = "high"
priority = 0
match = { dst_ports = "443" }

[[class]]
name = "low"
priority = 7
shed_order = "random"
)",
       {{syn_from("198.18.1.1", 80), kT0, "low", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.1", 80), kT0, "low", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.1", 80), kT0, "low", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.1", 80), kT0, "low", SL_VERDICT_SHED, SL_REASON_BOUNDARY_LOOKUPS,
         XDP_DROP},
        {syn_from("198.18.1.1", 443), kT0, "high", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP,
         XDP_PASS}}},
      {"per_source_budget",
       R"(
[[class]]
name = "c"
shed_order = "random"
per_source = { rate_per_sec = 1, burst = 2, prefix_v4 = 24 }
)",
       {{syn_from("198.18.1.1"), kT0, "c", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.2"), kT0, "c", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.3"), kT0, "c", SL_VERDICT_SHED, SL_REASON_PER_SOURCE, XDP_DROP},
        {syn_from("198.18.2.1"), kT0, "c", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {syn_from("198.18.1.3"), kT0 + kSecond, "c", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP,
         XDP_PASS}}},
      {"malformed_and_non_ip",
       classes,
       {{bad, kT0, "default", SL_VERDICT_SHED, SL_REASON_MALFORMED, XDP_DROP},
        {PacketBuilder().ipv6("2001:2::1", "2001:2::2").ipv6_ext(60, 8).udp(1, 53).build(), kT0,
         "citizen", SL_VERDICT_ADMITTED, SL_REASON_LOOKUP, XDP_PASS},
        {PacketBuilder().non_ip(0x0806).build(), kT0, "default", SL_VERDICT_ADMITTED,
         SL_REASON_NON_IP, XDP_PASS},
        // Neighbour discovery from the link passes like ARP; the same type
        // routed here (hop limit below 255) is charged as any ICMPv6.
        {PacketBuilder().ipv6("2001:2::1", "2001:2::2").hop_limit(255).icmp(135).build(), kT0,
         "default", SL_VERDICT_ADMITTED, SL_REASON_NON_IP, XDP_PASS},
        {PacketBuilder().ipv6("2001:2::1", "2001:2::2").hop_limit(64).icmp(135).build(), kT0,
         "citizen", SL_VERDICT_ADMITTED, SL_REASON_UNVERIFIED, XDP_PASS},
        // So does the link's control plane (no router forwards it: OSPF to
        // 224.0.0.5, OSPFv3 to ff02::5); the same protocol to an address
        // is charged as any unverified packet.
        {PacketBuilder().ipv4("198.18.1.1", "224.0.0.5").hop_limit(1).l4_raw(89, 44).build(), kT0,
         "default", SL_VERDICT_ADMITTED, SL_REASON_NON_IP, XDP_PASS},
        {PacketBuilder().ipv6("fe80::1", "ff02::5").hop_limit(1).l4_raw(89, 40).build(), kT0,
         "default", SL_VERDICT_ADMITTED, SL_REASON_NON_IP, XDP_PASS},
        {PacketBuilder().ipv4("198.18.1.1", "198.19.0.1").hop_limit(1).l4_raw(89, 44).build(), kT0,
         "citizen", SL_VERDICT_ADMITTED, SL_REASON_UNVERIFIED, XDP_PASS},
        {PacketBuilder()
             .ipv4("198.18.1.1", "198.19.0.1")
             .fragment(100, false)
             .payload(40)
             .udp(1, 53)
             .build(),
         // A later fragment whose first one the edge never saw has earned
         // nothing: charged as a lookup of its class.
         kT0, "citizen", SL_VERDICT_ADMITTED, SL_REASON_UNVERIFIED, XDP_PASS}}},
      {"link_control_passes_where_unverified_packets_drop",
       "[admission]\nunverified = \"drop\"\n" + classes,
       {{PacketBuilder().ipv4("198.18.1.1", "224.0.0.18").hop_limit(255).l4_raw(112, 20).build(),
         kT0, "default", SL_VERDICT_ADMITTED, SL_REASON_NON_IP, XDP_PASS},
        {PacketBuilder().ipv4("198.18.1.1", "198.19.0.1").hop_limit(255).l4_raw(112, 20).build(),
         kT0, "citizen", SL_VERDICT_SHED, SL_REASON_UNVERIFIED, XDP_DROP}}},
      {"malformed_pass",
       "[admission]\nmalformed = \"pass\"\n",
       {{bad, kT0, "default", SL_VERDICT_ADMITTED, SL_REASON_MALFORMED, XDP_PASS}}},
  };
}

class XdpFixtures : public ::testing::TestWithParam<Fixture> {};

TEST_P(XdpFixtures, MatchTheModel) {
  SLUICE_REQUIRE_ROOT();
  const Fixture& f = GetParam();
  test::XdpHarness h;
  ASSERT_TRUE(h.load(f.toml));
  for (std::size_t i = 0; i < f.steps.size(); i++) {
    const Step& s = f.steps[i];
    SCOPED_TRACE("step " + std::to_string(i));
    test::BothResult r = h.run(s.frame, s.at_ns);
    const auto& names = h.model().profile().class_names;
    EXPECT_EQ(names[r.xdp.decision.class_id], s.cls);
    EXPECT_EQ(r.xdp.decision.verdict, s.verdict);
    EXPECT_EQ(r.xdp.decision.reason, s.reason);
    EXPECT_EQ(r.xdp.action, s.xdp_action);
    // The same decision and bytes as the reference model.
    EXPECT_EQ(r.xdp.decision.class_id, r.model.class_id);
    EXPECT_EQ(r.xdp.decision.verdict, r.model.verdict);
    EXPECT_EQ(r.xdp.decision.reason, r.model.reason);
    EXPECT_EQ(r.xdp.decision.action, r.model.action);
    if (r.xdp.action != XDP_DROP) EXPECT_EQ(r.xdp.frame, r.model_frame);
    if (r.xdp.action == XDP_TX) {  // a RST+ACK answering the SYN
      sl_meta m;
      ASSERT_EQ(sl_parse(r.xdp.frame.data(), r.xdp.frame.data() + r.xdp.frame.size(), &m),
                SL_PARSE_OK);
      EXPECT_EQ(m.tcp_flags, SL_TCP_RST | SL_TCP_ACK);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Xdp, XdpFixtures, ::testing::ValuesIn(fixtures()),
                         [](const auto& info) { return info.param.name; });

// The flow-state tables (tests/support/flow_fixtures.hpp): the program's
// decisions match the table and the model, inside frames included.
class XdpFlowFixtures : public ::testing::TestWithParam<test::FlowFixture> {};

TEST_P(XdpFlowFixtures, MatchTheModel) {
  SLUICE_REQUIRE_ROOT();
  const test::FlowFixture& f = GetParam();
  test::XdpHarness h;
  ASSERT_TRUE(h.load(f.toml));
  for (const test::FlowStep& s : f.steps) {
    SCOPED_TRACE(s.what);
    if (s.inside) {
      h.run_inside(s.frame, s.at_ns);
      continue;
    }
    test::BothResult r = h.run(s.frame, s.at_ns);
    const auto& names = h.model().profile().class_names;
    EXPECT_EQ(names[r.xdp.decision.class_id], s.cls);
    EXPECT_EQ(r.xdp.decision.verdict, s.verdict);
    EXPECT_EQ(r.xdp.decision.reason, s.reason);
    const bool passes = s.verdict == SL_VERDICT_ADMITTED || r.model.action == SL_ACTION_MARK;
    EXPECT_EQ(r.xdp.action, passes                              ? XDP_PASS
                            : r.model.action == SL_ACTION_RESET ? XDP_TX
                                                                : XDP_DROP);
    EXPECT_EQ(r.xdp.decision.action, r.model.action);
    EXPECT_EQ(r.xdp.decision.reason, r.model.reason);
    EXPECT_EQ(r.xdp.decision.verdict, r.model.verdict);
    EXPECT_EQ(r.xdp.decision.flow_ops, r.model.flow_ops);
  }
  // The same events, counted per CPU in the maps.
  const DataplaneStats st = h.program().stats();
  for (uint32_t p = 0; p < SL_PRIORITIES; p++)
    for (uint32_t e :
         {SL_FLOW_EV_CREATED, SL_FLOW_EV_EXPIRED, SL_FLOW_EV_LEARNED, SL_FLOW_EV_CONFIRMED})
      EXPECT_EQ(st.flow_events[p][e], h.model().counters().flow_events[p][e])
          << "priority " << p << " event " << e;
  // And the same backend signal (the adaptive boundary's; zero elsewhere).
  const sl_backend_signal& m = h.model().counters().backend;
  EXPECT_EQ(st.backend.requests, m.requests);
  EXPECT_EQ(st.backend.responses, m.responses);
  EXPECT_EQ(st.backend.sum_us, m.sum_us);
  EXPECT_EQ(st.backend.resets, m.resets);
  EXPECT_EQ(st.backend.zero_windows, m.zero_windows);
  EXPECT_EQ(st.backend.syn_again, m.syn_again);
  EXPECT_EQ(0, std::memcmp(st.backend.hist, m.hist, sizeof(m.hist)));
}

INSTANTIATE_TEST_SUITE_P(Xdp, XdpFlowFixtures, ::testing::ValuesIn(test::flow_fixtures()),
                         [](const auto& info) { return info.param.name; });

// What stats (and so /metrics and status) say a bucket holds: refilled to
// now, as the next decision would find it, and full before its state is
// made. It said 0 for every bucket after a start and kept an idle bucket at
// the level of its last decision.
TEST(XdpStats, BucketsReadRefilledToNowAndFullBeforeTheFirstLookup) {
  SLUICE_REQUIRE_ROOT();
  XdpProgramOptions o;
  o.fake_clock = true;
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(test::profile_from_toml(R"(
[boundary]
lookups_per_sec = 2
lookups_burst = 20
[[class]]
name = "a"
rate_per_sec = 1
burst = 10
)"),
                               1, &error))
      << error;
  p->set_clock(kT0);
  DataplaneStats st = p->stats();
  EXPECT_EQ(st.classes[0].bucket_tokens, 10u);
  EXPECT_EQ(st.boundary_lookup_tokens, 20u);
  // Before its first lookup a class admits every source (sticky), as DPDK says.
  EXPECT_EQ(st.classes[0].sticky_threshold, SL_RANK_ONE);
  EXPECT_EQ(st.classes[1].sticky_threshold, SL_RANK_ONE);  // default: no lookup ever
  XdpTestResult r;
  for (uint32_t i = 0; i < 6; i++)
    ASSERT_TRUE(p->test_run(test::syn_v4(test::kNet198_18 + i), &r, &error)) << error;
  st = p->stats();
  EXPECT_EQ(st.classes[0].bucket_tokens, 4u);
  EXPECT_EQ(st.boundary_lookup_tokens, 14u);
  p->set_clock(kT0 + 3 * kSecond);  // idle: 3 tokens came due, 6 at the boundary
  st = p->stats();
  EXPECT_EQ(st.classes[0].bucket_tokens, 7u);
  EXPECT_EQ(st.boundary_lookup_tokens, 20u);
}

// A class of 1/s per IPv6 source (a /128 each), for floods of sources.
constexpr const char* kFloodClass = R"(
[[class]]
name = "flood"
match = { src = "2001:2::/48" }
shed_order = "random"
per_source = { rate_per_sec = 1, burst = 1, prefix_v6 = 128 }
)";

// The flood's i-th source: the last 32 bits of the IPv6 source address.
void flood_source(std::vector<uint8_t>* frame, uint32_t i) {
  for (int b = 0; b < 4; b++) (*frame)[14 + 8 + 12 + b] = static_cast<uint8_t>(i >> (24 - 8 * b));
}

// Counters in the maps agree with the model's.
// A flood of distinct sources recycles table entries instead of growing.
TEST(XdpSources, FloodRecyclesEntriesAndCountsEvictions) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  ASSERT_TRUE(h.load(kFloodClass, 1024));
  auto f = PacketBuilder().ipv6("2001:2::1", "2001:2::2").udp(1, 53).build();
  for (uint32_t i = 0; i < 5000; i++) {
    flood_source(&f, i);
    test::BothResult r = h.run(f, kT0 + i * 1000);
    ASSERT_EQ(r.xdp.decision.verdict, SL_VERDICT_ADMITTED) << i;  // each a new source
  }
  // 1024 asked for: 512 sets of 4 ways. 5000 sources fill nearly every way
  // (about 10 per set); each one past a full set took the way of another.
  const DataplaneStats s = h.program().stats();
  EXPECT_EQ(s.source_table_capacity, 2048u);
  EXPECT_LE(s.source_table_entries, 2048u);
  EXPECT_GE(s.source_table_entries, 2048u * 98 / 100);
  EXPECT_EQ(s.source_table_entries + s.source_table_evictions, 5000u);
}

// A flood of new sources takes the ways its own sources used least
// recently, never the way of a source that keeps sending: a host over its
// budget gets its rate and no more (an eviction would give it a full bucket
// again). 10,000 new sources a second, ten times the table a second (the
// default table at 640,000 a second); the host sends once a millisecond.
// A table that evicted any other way of the set (the first, a random one)
// would give the host a token at each of its set's ~40 new sources.
TEST(XdpSources, FloodKeepsAnActiveSourcesBucket) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  ASSERT_TRUE(h.load(kFloodClass, 1024));
  const auto host = PacketBuilder().ipv6("2001:2::ffff:1", "2001:2::2").udp(1, 53).build();
  auto f = PacketBuilder().ipv6("2001:2::1", "2001:2::2").udp(1, 53).build();
  uint32_t host_xdp = 0, host_model = 0;
  for (uint32_t i = 0; i < 20000; i++) {
    const uint64_t at = kT0 + uint64_t{i} * 100000;  // 100 us apart: 2 s
    if (i % 10 == 0) {
      const test::BothResult r = h.run(host, at);
      host_xdp += r.xdp.decision.verdict == SL_VERDICT_ADMITTED;
      host_model += r.model.verdict == SL_VERDICT_ADMITTED;
    }
    flood_source(&f, i);
    ASSERT_EQ(h.run(f, at + 50000).xdp.decision.verdict, SL_VERDICT_ADMITTED) << i;
  }
  EXPECT_EQ(host_model, 2u);  // its burst, then 1/s: one more before 2 s
  EXPECT_EQ(host_xdp, host_model);
  EXPECT_GT(h.program().stats().source_table_evictions, 20000u - 2048u);
}

// The same host once every 50 ms (after a first lookup and one more 1 ms
// later), the flood three times as fast: 30,000 new sources a second, ~59
// a second into each set of 4 ways, so a third of the host's gaps see four
// of them. Each would have taken its way if the set's least recently used
// way went, for a fresh full budget: the host got 9-17 lookups in 2 s (8
// runs) where its bound is 2 (its burst, then 1/s). A source that came back
// keeps its way against sources seen once (decide.h,
// sl_source_evict_order). (Before its first return it can lose it: a host
// whose first two lookups are 50 ms apart got 3-9 in 25 runs. The model's
// table, one LRU over 1024 entries that this flood turns over every 34 ms,
// gives it every lookup.)
TEST(XdpSources, FloodOfSourcesSeenOnceLeavesAReturningSourceItsDebt) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  ASSERT_TRUE(h.load(kFloodClass, 1024));
  const auto host = PacketBuilder().ipv6("2001:2::ffff:1", "2001:2::2").udp(1, 53).build();
  auto f = PacketBuilder().ipv6("2001:2::1", "2001:2::2").udp(1, 53).build();
  uint32_t host_admitted = 0;
  for (uint32_t i = 0; i < 60000; i++) {
    const uint64_t at = kT0 + uint64_t{i} * 100000 / 3;  // 30,000 a second: 2 s
    if (i % 1500 == 0 || i == 30)
      host_admitted += h.run(host, at).xdp.decision.verdict == SL_VERDICT_ADMITTED;
    flood_source(&f, i);
    ASSERT_EQ(h.run(f, at + 10000).xdp.decision.verdict, SL_VERDICT_ADMITTED) << i;
  }
  EXPECT_EQ(host_admitted, 2u);
}

// On the real clocks, for 250 ms: two sources, each over a budget of 1000/s
// (burst[c]) that a bucket judges on the coarse clock when its burst holds
// what 1000/s earns in a tick, else on the exact one, take turns offering
// lookups (frames[c]) far above that rate; either way each gets its rate,
// within a tick's worth (two, for a tick that runs late) of the exact
// bucket's bound b + r t.
void expect_each_gets_its_rate(XdpProgram& program, const std::vector<uint8_t> (&frames)[2],
                               const uint64_t (&burst)[2]) {
  const uint64_t tick = program.source_coarse_tick_ns();
  uint64_t admitted[2] = {0, 0}, tries[2] = {0, 0};
  // A full bucket loses what it earns until the source's next try: at most
  // 10% while tries come within 100 us, everything in a longer gap (this
  // thread preempted), which is counted.
  const auto gap = std::chrono::microseconds(100);
  std::chrono::steady_clock::duration long_gaps[2] = {};
  const auto start = std::chrono::steady_clock::now();
  auto end = start;
  std::chrono::steady_clock::time_point last[2] = {start, start};
  std::string error;
  for (uint32_t i = 0; i < 400000 && end - start < std::chrono::milliseconds(250); i++) {
    XdpTestResult r;
    ASSERT_TRUE(program.test_run(frames[i & 1], &r, &error)) << error;
    end = std::chrono::steady_clock::now();
    admitted[i & 1] += r.decision.verdict == SL_VERDICT_ADMITTED;
    tries[i & 1]++;
    if (end - last[i & 1] > gap) long_gaps[i & 1] += end - last[i & 1];
    last[i & 1] = end;
  }
  const double t = std::chrono::duration<double>(end - start).count();
  for (int c = 0; c < 2; c++) {
    const bool coarse = tick != 0 && 1000 * tick <= burst[c] * SL_TOKEN;
    const double slack = coarse ? 2e-9 * double(tick) : 0;  // seconds
    const double idle = std::chrono::duration<double>(long_gaps[c]).count();
    SCOPED_TRACE(testing::Message()
                 << "source " << c << (coarse ? " (coarse clock)" : "") << ", " << t << " s, "
                 << idle << " s in long gaps, " << tries[c] << " tries");
    ASSERT_GT(tries[c], 2 * admitted[c]);  // every source sent well above its rate
    EXPECT_LE(double(admitted[c]), double(burst[c]) + 1000 * (t + slack) + 1);
    EXPECT_GE(double(admitted[c]), 0.9 * (double(burst[c]) + 1000 * (t - slack - idle - 1e-3)) - 1);
  }
}

std::unique_ptr<XdpProgram> load_on_real_clocks(const std::string& toml) {
  CompiledProfile profile = test::profile_from_toml(toml);
  EXPECT_GT(profile.prof.n_classes, 0u);
  XdpProgramOptions o;
  o.record_decision = true;
  std::string error;
  auto program = XdpProgram::load(o, &error);
  EXPECT_TRUE(program) << error;
  if (program && !program->write_profile(profile, 1, &error)) {
    ADD_FAILURE() << error;
    return nullptr;
  }
  return program;
}

const std::vector<uint8_t> kWideAndNarrow[2] = {
    PacketBuilder().ipv4("198.18.1.7", "198.19.0.1").udp(4000, 53).build(),
    PacketBuilder().ipv4("198.18.2.7", "198.19.0.1").udp(4000, 53).build()};

// Per-source buckets: a source whose burst holds what its rate earns in a
// tick refills from the coarse clock, one with a smaller burst from the exact
// one (XDP step 5, docs/architecture.md).
TEST(XdpSources, RealClocksKeepEachSourceToItsRate) {
  SLUICE_REQUIRE_ROOT();
  auto program = load_on_real_clocks(R"(
[[class]]
name = "wide"
match = { src = "198.18.1.0/24" }
per_source = { rate_per_sec = 1000, burst = 20 }

[[class]]
name = "narrow"
match = { src = "198.18.2.0/24" }
per_source = { rate_per_sec = 1000, burst = 1 }
)");
  ASSERT_TRUE(program);
  timespec res{};
  ASSERT_EQ(clock_getres(CLOCK_MONOTONIC_COARSE, &res), 0);
  EXPECT_EQ(program->source_coarse_tick_ns(),
            res.tv_sec == 0 && res.tv_nsec <= 100000000 ? uint64_t(res.tv_nsec) : 0u);
  expect_each_gets_its_rate(*program, kWideAndNarrow, {20, 1});
}

// Class budgets shed without the lock: judged on the coarse clock when the
// class's burst holds a tick's refill (and the boundary's, unlimited here,
// does), else on the exact one; a class with a burst of 1 would otherwise
// get one lookup a tick (250/s at 4 ms) instead of its 1000/s.
TEST(XdpSheds, RealClocksKeepEachClassToItsRate) {
  SLUICE_REQUIRE_ROOT();
  auto program = load_on_real_clocks(R"(
[[class]]
name = "wide"
match = { src = "198.18.1.0/24" }
rate_per_sec = 1000
burst = 20
shed_order = "random"

[[class]]
name = "narrow"
match = { src = "198.18.2.0/24" }
rate_per_sec = 1000
burst = 1
shed_order = "random"
)");
  ASSERT_TRUE(program);
  expect_each_gets_its_rate(*program, kWideAndNarrow, {20, 1});
}

TEST(XdpCounters, SumAcrossCpusMatchesTheModel) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  ASSERT_TRUE(h.load(R"(
[[class]]
name = "web"
rate_per_sec = 100
burst = 10
)"));
  uint64_t now = kT0;
  for (int i = 0; i < 500; i++) {
    now += kSecond / 1000;
    h.run(test::syn_v4(test::kNet198_18 + static_cast<uint32_t>(i % 300)), now);
  }
  DataplaneStats s = h.program().stats();
  ASSERT_EQ(s.classes.size(), 2u);
  EXPECT_EQ(s.classes[0].name, "web");
  EXPECT_EQ(s.generation, 1u);
  const auto& mc = h.model().counters();
  for (int v = 0; v < SL_VERDICT_COUNT; v++)
    for (int r = 0; r < SL_REASON_COUNT; r++)
      EXPECT_EQ(s.classes[0].lookups[v][r], mc.lookups[0][v][r]) << v << "/" << r;
  EXPECT_GT(s.classes[0].lookups[SL_VERDICT_SHED][SL_REASON_STICKY] +
                s.classes[0].lookups[SL_VERDICT_SHED][SL_REASON_CLASS_RATE],
            300u);
}

// Randomised differential trace: 100,000 packets of mixed classes, sources,
// protocols, continuations (of admitted SYNs, and spoofed), inside replies
// and malformed frames through the program and the model at the same
// simulated times; the flow tables stay below capacity (the kernel LRU is
// approximate there). `boundary`: the [boundary] budgets; `citizen_burst`;
// `credited`: how many lookups and continuations at least the model decided
// on a per-CPU credit.
void differential(const std::string& boundary, const std::string& citizen_burst,
                  uint64_t credited) {
  test::XdpHarness h;
  ASSERT_TRUE(h.load(R"(
[admission]
flow_learn_sec = 1  # learning in the first second, verification after

[boundary]
)" + boundary + R"(

[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24", "2001:2:0:10::/64"], proto = "tcp", dst_ports = ["443", "8000-8100"] }
on_shed = "reset"
per_source = { rate_per_sec = 20, burst = 5 }

[[class]]
name = "dns"
priority = 2
match = { proto = "udp", dst_ports = 53 }
rate_per_sec = 500
on_shed = "mark"
mark_dscp = 8

[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15", "2001:2::/48"] }
rate_per_sec = 2000
)" + citizen_burst + R"(
on_shed = "reset"

[[class]]
name = "spoofed"
priority = 6
match = { src = "2001:2:0:ff00::/56" }
rate_per_sec = 300
shed_order = "random"
per_source = { rate_per_sec = 2, burst = 2, prefix_v6 = 128 }
)",
                     1 << 20));
  std::mt19937_64 rng(77);
  uint64_t now = kT0;
  int mismatches = 0;
  uint64_t admitted_xdp = 0, admitted_model = 0;
  uint64_t verified = 0, unverified = 0, inside = 0;
  std::vector<std::pair<std::string, uint16_t>> flows;  // checkpoint SYNs sent
  auto v4src = [&](bool checkpoint) {
    return checkpoint
               ? "198.18.10." + std::to_string(rng() % 50 + 1)
               : "198.19." + std::to_string(rng() % 200) + "." + std::to_string(rng() % 250 + 1);
  };
  for (int i = 0; i < 100000; i++) {
    now += test::poisson_gap_ns(rng, 20000);  // 5 s at 20k packets/s
    std::vector<uint8_t> f;
    const int kind = static_cast<int>(rng() % 100);
    const bool cp = rng() % 4 == 0;
    if (kind < 35) {
      const std::string src = v4src(cp);
      const uint16_t sport = static_cast<uint16_t>(rng());
      f = PacketBuilder()
              .ipv4(src, "198.19.0.1")
              .tcp(sport, cp ? 443 : 80, kSyn, static_cast<uint32_t>(rng()))
              .build();
      if (cp) flows.emplace_back(src, sport);
    } else if (kind < 50) {
      // Half continue a SYN sent earlier (verified if it was admitted), half
      // are spoofed; some of the earlier flows also get inside replies.
      if (!flows.empty() && rng() % 2) {
        const auto& [src, sport] = flows[rng() % flows.size()];
        if (rng() % 4 == 0) {
          h.run_inside(PacketBuilder()
                           .ipv4("198.19.0.1", src)
                           .tcp(443, sport, rng() % 8 ? kAck : test::kFin | kAck)
                           .build(),
                       now);
          inside++;
          continue;
        }
        f = PacketBuilder()
                .ipv4(src, "198.19.0.1")
                .tcp(sport, 443, kAck)
                .payload(rng() % 200)
                .build();
      } else {
        f = PacketBuilder()
                .ipv4(v4src(cp), "198.19.0.1")
                .tcp(static_cast<uint16_t>(rng()), 443, kAck)
                .payload(rng() % 200)
                .build();
      }
    } else if (kind < 62) {
      f = PacketBuilder()
              .ipv4(v4src(false), "198.19.0.1")
              .udp(static_cast<uint16_t>(rng()), 53)
              .build();
    } else if (kind < 75) {
      std::string a = "2001:2:0:" + std::string(cp ? "10" : std::to_string(rng() % 50 + 20)) +
                      "::" + std::to_string(rng() % 60 + 1);
      f = PacketBuilder()
              .ipv6(a, "2001:2::1")
              .tcp(static_cast<uint16_t>(rng()), 8080, kSyn)
              .build();
    } else if (kind < 85) {
      char a[64];
      std::snprintf(a, sizeof(a), "2001:2:0:ff%02x::%x:%x", static_cast<unsigned>(rng() % 256),
                    static_cast<unsigned>(rng() % 65536), static_cast<unsigned>(rng() % 65536));
      f = PacketBuilder().ipv6(a, "2001:2::1").udp(1, 9999).build();
    } else if (kind < 90) {
      f = PacketBuilder()
              .vlan(static_cast<uint16_t>(rng() % 4000))
              .ipv4(v4src(cp), "198.19.0.1")
              .icmp(rng() % 2 ? 8 : 0)
              .build();
    } else if (kind < 95) {
      f = PacketBuilder().ipv4(v4src(cp), "198.19.0.1").tcp(1, 443, kSyn).build();
      f.resize(14 + rng() % 30);  // truncated
      if (f.size() < 14) f.resize(14);
    } else {
      f = PacketBuilder()
              .ipv4(v4src(cp), "198.19.0.1", static_cast<uint8_t>(rng() % 64))
              .udp(2, static_cast<uint16_t>(rng()))
              .build();
      if (rng() % 2) f[14 + 2] ^= 0x40;  // inconsistent total length
    }
    test::BothResult r = h.run(f, now);
    const sl_decision& x = r.xdp.decision;
    const sl_decision& m = r.model;
    admitted_xdp += x.is_start && x.verdict == SL_VERDICT_ADMITTED;
    admitted_model += m.is_start && m.verdict == SL_VERDICT_ADMITTED;
    verified += m.reason == SL_REASON_CONTINUATION;
    unverified += m.reason == SL_REASON_UNVERIFIED;
    const bool same = x.class_id == m.class_id && x.verdict == m.verdict && x.reason == m.reason &&
                      x.action == m.action && x.is_start == m.is_start;
    if (!same && ++mismatches <= 5) {
      ADD_FAILURE() << "packet " << i << ": xdp class " << int{x.class_id} << " verdict "
                    << int{x.verdict} << " reason " << int{x.reason} << " action " << int{x.action}
                    << ", model class " << int{m.class_id} << " verdict " << int{m.verdict}
                    << " reason " << int{m.reason} << " action " << int{m.action};
    }
    if (same && r.xdp.action != XDP_DROP && r.xdp.frame != r.model_frame && ++mismatches <= 5)
      ADD_FAILURE() << "packet " << i << ": output frames differ";
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(admitted_xdp, admitted_model);
  EXPECT_GE(h.model().unlocked_decisions(), credited);
  // No recycling below capacity: the table tracked exactly the model's sources.
  const DataplaneStats st = h.program().stats();
  EXPECT_EQ(st.source_table_capacity, 1u << 21);  // 2^19 sets of 4 ways
  EXPECT_EQ(st.source_table_entries, h.model().sources().size());
  EXPECT_EQ(st.source_table_evictions, 0u);
  // The trace exercises both sides of flow state, and the flow tables agree.
  EXPECT_GT(verified, 2000u);
  EXPECT_GT(unverified, 2000u);
  // The model's partitions (exact LRU) recycle nothing this far below
  // capacity; a set of 8 ways all but never does at this load, and then
  // counts it: every entry the model holds is held or counted as evicted.
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    const uint64_t evicted = st.flow_events[p][SL_FLOW_EV_EVICTED];
    EXPECT_EQ(st.flow_entries[p] + evicted, h.model().flows().size(p)) << "priority " << p;
    EXPECT_LE(evicted * 1000, h.model().flows().size(p)) << "priority " << p;
    EXPECT_EQ(h.model().counters().flow_events[p][SL_FLOW_EV_EVICTED], 0u);
    EXPECT_EQ(st.flow_events[p][SL_FLOW_EV_CREATED],
              h.model().counters().flow_events[p][SL_FLOW_EV_CREATED]);
  }
  std::printf(
      "differential: 100000 packets, %llu lookups admitted by both, %llu verified and %llu "
      "unverified continuations, %llu inside frames, %llu decided without the lock, %d "
      "mismatches\n",
      static_cast<unsigned long long>(admitted_xdp), static_cast<unsigned long long>(verified),
      static_cast<unsigned long long>(unverified), static_cast<unsigned long long>(inside),
      static_cast<unsigned long long>(h.model().unlocked_decisions()), mismatches);
}

TEST(XdpDifferential, HundredThousandPacketsMatchTheModel) {
  SLUICE_REQUIRE_ROOT();
  differential(
      "lookups_per_sec = 3000\nlookups_burst = 300\npackets_per_sec = 8000\npackets_burst = 800",
      "", 0);
}

// The same with budgets large enough for per-CPU credits (1% of a burst per
// CPU is 4 tokens or more): drawn, spent, expired and given back, packet for
// packet as the model does them.
TEST(XdpDifferential, WithCreditsMatchesTheModel) {
  SLUICE_REQUIRE_ROOT();
  differential(
      "lookups_per_sec = 3000\nlookups_burst = 6000\npackets_per_sec = 8000\npackets_burst = "
      "16000",
      "burst = 4000", 5000);
}

// A surge on classes with per-source budgets, as config/sluice.toml's
// citizens have: a shed without the lock takes the source's token and gives
// it back, a source short of one is refused without its stripe's lock. The
// same decisions as the model, packet for packet: shed by rank, by the
// class's rate and by the source's own budget, and admitted.
TEST(XdpDifferential, SourcedShedsMatchTheModel) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  ASSERT_TRUE(h.load(R"(
[[class]]
name = "citizen"
match = { src = "198.18.0.0/16" }
rate_per_sec = 300
per_source = { rate_per_sec = 3, burst = 3 }

[[class]]
name = "visitor"
match = { src = "198.19.0.0/16" }
rate_per_sec = 200
shed_order = "random"
per_source = { rate_per_sec = 2, burst = 2 }
)",
                     1 << 20));
  std::mt19937_64 rng(5);
  uint64_t now = kT0;
  int mismatches = 0;
  uint64_t reasons[SL_VERDICT_COUNT][SL_REASON_COUNT] = {};
  for (int i = 0; i < 60000; i++) {
    now += test::poisson_gap_ns(rng, 20000);  // 3 s at 20k lookups/s, ~17/s per source
    const uint32_t host = static_cast<uint32_t>(rng() % 600);
    const auto f = PacketBuilder()
                       .ipv4((rng() % 2 ? "198.18." : "198.19.") + std::to_string(host / 250) +
                                 "." + std::to_string(host % 250 + 1),
                             "198.19.255.1")
                       .udp(static_cast<uint16_t>(rng()), 53)
                       .build();
    test::BothResult r = h.run(f, now);
    const sl_decision& x = r.xdp.decision;
    const sl_decision& m = r.model;
    reasons[m.verdict % SL_VERDICT_COUNT][m.reason % SL_REASON_COUNT]++;
    if ((x.class_id != m.class_id || x.verdict != m.verdict || x.reason != m.reason) &&
        ++mismatches <= 5)
      ADD_FAILURE() << "packet " << i << ": xdp class " << int{x.class_id} << " verdict "
                    << int{x.verdict} << " reason " << int{x.reason} << ", model class "
                    << int{m.class_id} << " verdict " << int{m.verdict} << " reason "
                    << int{m.reason};
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(reasons[SL_VERDICT_SHED][SL_REASON_STICKY], 2000u);
  EXPECT_GT(reasons[SL_VERDICT_SHED][SL_REASON_CLASS_RATE], 2000u);
  EXPECT_GT(reasons[SL_VERDICT_SHED][SL_REASON_PER_SOURCE], 1000u);  // a shed spends no token
  EXPECT_GT(reasons[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP], 1000u);
  std::printf("sourced sheds: %llu by rank, %llu by class rate, %llu by source, %llu admitted\n",
              static_cast<unsigned long long>(reasons[SL_VERDICT_SHED][SL_REASON_STICKY]),
              static_cast<unsigned long long>(reasons[SL_VERDICT_SHED][SL_REASON_CLASS_RATE]),
              static_cast<unsigned long long>(reasons[SL_VERDICT_SHED][SL_REASON_PER_SOURCE]),
              static_cast<unsigned long long>(reasons[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP]));
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// A retune keeps the state and counters of classes it does not touch, and
// no packet is lost or misjudged while profiles are swapped underneath.
// A capture whose reader falls behind: sl_capture_ring holds ~14,000 frames;
// every frame it had no room for is counted, so what arrived and what was
// lost add up to what the capture asked for, and a new capture starts at 0.
TEST(XdpCapture, FramesTheRingHadNoRoomForAreCounted) {
  SLUICE_REQUIRE_ROOT();
  XdpProgramOptions o;
  o.fake_clock = true;
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(test::profile_from_toml("[[class]]\nname = \"all\"\n"), 1, &error))
      << error;
  p->set_clock(kT0);
  ASSERT_TRUE(p->capture_start(CaptureFilter{}, &error)) << error;
  constexpr uint64_t kFrames = 20000;  // more than the ring holds, none read meanwhile
  const std::vector<uint8_t> f = syn_from("198.18.1.1", 80);
  XdpTestResult r;
  for (uint64_t i = 0; i < kFrames; i++) ASSERT_TRUE(p->test_run(f, &r, &error)) << error;
  std::vector<CaptureRecord> got;
  uint64_t lost = 0;
  for (int i = 0; i < 100 && got.size() + lost < kFrames; i++) p->capture_read(&got, &lost, 10);
  EXPECT_GT(lost, 0u);
  EXPECT_GT(got.size(), 10000u);
  EXPECT_EQ(got.size() + lost, kFrames);
  RecordProperty("captured", std::to_string(got.size()));
  RecordProperty("lost", std::to_string(lost));
  p->capture_stop();

  // The next capture counts from zero.
  ASSERT_TRUE(p->capture_start(CaptureFilter{}, &error)) << error;
  for (int i = 0; i < 10; i++) ASSERT_TRUE(p->test_run(f, &r, &error)) << error;
  got.clear();
  lost = 1;
  p->capture_read(&got, &lost, 10);
  EXPECT_EQ(got.size(), 10u);
  EXPECT_EQ(lost, 0u);
  p->capture_stop();
}

// A capture is leased: the control plane renews it as it reads, and one
// nobody read for 5 s (its sluiced killed by signal 9, which no handler
// sees) samples nothing more. Before, it went on offering every frame it
// asked for to a ring nobody read, until the next start.
TEST(XdpCapture, ACaptureNobodyReadsStopsAtItsLease) {
  SLUICE_REQUIRE_ROOT();
  XdpProgramOptions o;
  o.fake_clock = true;
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(test::profile_from_toml("[[class]]\nname = \"all\"\n"), 1, &error))
      << error;
  p->set_clock(kT0);
  ASSERT_TRUE(p->capture_start(CaptureFilter{}, &error)) << error;
  const std::vector<uint8_t> f = syn_from("198.18.1.1", 80);
  XdpTestResult r;
  auto sampled = [&](uint64_t now) {
    p->set_clock(now);
    for (int i = 0; i < 10; i++) EXPECT_TRUE(p->test_run(f, &r, &error)) << error;
    std::vector<CaptureRecord> got;
    p->capture_read(&got, nullptr, 10);
    return got.size();
  };
  EXPECT_EQ(sampled(kT0 + 4 * kSecond), 10u);  // within the lease (renewed by this read)
  EXPECT_EQ(sampled(kT0 + 8 * kSecond), 10u);  // within the renewed one
  EXPECT_EQ(sampled(kT0 + 14 * kSecond), 0u) << "past the lease: nothing sampled";
  EXPECT_EQ(sampled(kT0 + 15 * kSecond), 10u) << "the read renewed it";
  EXPECT_EQ(r.action, XDP_PASS) << "the frames were decided all along";
  p->capture_stop();
}

TEST(XdpApply, UntouchedClassesKeepStateAndCounters) {
  SLUICE_REQUIRE_ROOT();
  const char* v1 = R"(
[[class]]
name = "a"
match = { dst_ports = "80" }
rate_per_sec = 1
burst = 10
shed_order = "random"

[[class]]
name = "b"
match = { dst_ports = "81" }
rate_per_sec = 1000
)";
  const char* v2 = R"(
[[class]]
name = "new"
match = { dst_ports = "82" }

[[class]]
name = "b"
match = { dst_ports = "81" }
rate_per_sec = 5

[[class]]
name = "a"
match = { dst_ports = "80" }
rate_per_sec = 1
burst = 10
shed_order = "random"
)";
  XdpProgramOptions o;
  o.fake_clock = true;
  o.record_decision = true;
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(test::profile_from_toml(v1), 1, &error)) << error;
  p->set_clock(kT0);
  XdpTestResult r;
  for (int i = 0; i < 6; i++) ASSERT_TRUE(p->test_run(syn_from("198.18.1.1", 80), &r, &error));
  for (int i = 0; i < 3; i++) ASSERT_TRUE(p->test_run(syn_from("198.18.1.1", 81), &r, &error));
  DataplaneStats before = p->stats();
  ASSERT_EQ(before.classes[0].name, "a");
  EXPECT_EQ(before.classes[0].bucket_tokens, 4u);

  ASSERT_TRUE(p->write_profile(test::profile_from_toml(v2), 2, &error)) << error;
  DataplaneStats after = p->stats();
  EXPECT_EQ(after.generation, 2u);
  ASSERT_EQ(after.classes.size(), 4u);
  EXPECT_EQ(after.classes[2].name, "a");
  EXPECT_EQ(after.classes[2].bucket_tokens, 4u);  // not reset
  EXPECT_EQ(after.classes[2].lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP], 6u);
  EXPECT_EQ(after.classes[1].lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP], 3u);
  EXPECT_EQ(after.classes[0].name, "new");
  EXPECT_EQ(after.classes[0].lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP], 0u);
  // a's bucket goes on from 4 tokens: 4 more admitted, then shed.
  int admitted = 0;
  for (int i = 0; i < 6; i++) {
    ASSERT_TRUE(p->test_run(syn_from("198.18.1.1", 80), &r, &error));
    admitted += r.decision.verdict == SL_VERDICT_ADMITTED;
    EXPECT_EQ(r.decision.class_id, 2);
  }
  EXPECT_EQ(admitted, 4);
}

// A profile of more prefixes than a slot holds (SL_LPM_MAX_ENTRIES / 2 a
// direction) is refused before anything is written: the live profile and
// its generation stay, and later writes still fit. Written, it would have
// filled the tries past half, and every later write of it (a retune of any
// other key) would have been refused for want of room.
TEST(XdpApply, AProfileOfTooManyPrefixesIsRefusedAndChangesNothing) {
  SLUICE_REQUIRE_ROOT();
  const char* v1 = R"(
[[class]]
name = "a"
match = { src = "198.18.0.0/15" }
rate_per_sec = 10
)";
  XdpProgramOptions o;
  o.fake_clock = true;
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(test::profile_from_toml(v1), 1, &error)) << error;
  CompiledProfile big = test::profile_from_toml(v1);
  const uint32_t kTooMany = SL_LPM_MAX_ENTRIES / 2 + 1 - big.src_prefixes.size();
  for (uint32_t i = 0; i < kTooMany; i++) {
    LpmEntry e;
    e.family = 6;
    e.len = 128;
    e.addr_be = {0x20, 0x01, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int b = 0; b < 4; b++) e.addr_be[12 + b] = static_cast<uint8_t>(i >> (24 - 8 * b));
    e.class_mask = 1;
    big.src_prefixes.push_back(e);
  }
  EXPECT_FALSE(p->write_profile(big, 2, &error));
  EXPECT_NE(error.find(std::to_string(SL_LPM_MAX_ENTRIES / 2 + 1) + " distinct source prefixes"),
            std::string::npos)
      << error;
  EXPECT_EQ(p->stats().generation, 1u);
  big.src_prefixes.pop_back();  // exactly a slot's worth: written, and again
  ASSERT_TRUE(p->write_profile(big, 2, &error)) << error;
  ASSERT_TRUE(p->write_profile(big, 3, &error)) << error;
  EXPECT_EQ(p->stats().generation, 3u);
}

// The longest class name the config accepts (SL_CLASS_NAME_MAX, the one
// limit) is kept whole: its slot is found again by name at every retune, so
// its counters and bucket carry on.
TEST(XdpApply, LongestClassNameKeepsStateAcrossRetunes) {
  SLUICE_REQUIRE_ROOT();
  const std::string name(SL_CLASS_NAME_MAX, 'n');
  const std::string cls = "[[class]]\nname = \"" + name +
                          "\"\nmatch = { dst_ports = \"80\" }\nrate_per_sec = 1\nburst = 10\n"
                          "shed_order = \"random\"\n";
  XdpProgramOptions o;
  o.fake_clock = true;
  o.record_decision = true;
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(test::profile_from_toml(cls), 1, &error)) << error;
  p->set_clock(kT0);
  XdpTestResult r;
  for (int i = 0; i < 6; i++) ASSERT_TRUE(p->test_run(syn_from("198.18.1.1", 80), &r, &error));
  for (uint64_t gen = 2; gen <= 3; gen++) {
    const std::string other =
        "[[class]]\nname = \"other" + std::to_string(gen) + "\"\nmatch = { dst_ports = \"81\" }\n";
    ASSERT_TRUE(p->write_profile(test::profile_from_toml(other + cls), gen, &error)) << error;
    const DataplaneStats s = p->stats();
    ASSERT_EQ(s.classes.size(), 3u);
    EXPECT_EQ(s.classes[1].name, name) << "all " << SL_CLASS_NAME_MAX << " characters kept";
    EXPECT_EQ(s.classes[1].lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP], 6u) << "gen " << gen;
    EXPECT_EQ(s.classes[1].bucket_tokens, 4u) << "gen " << gen;
  }
  int admitted = 0;
  for (int i = 0; i < 6; i++) {
    ASSERT_TRUE(p->test_run(syn_from("198.18.1.1", 80), &r, &error));
    admitted += r.decision.verdict == SL_VERDICT_ADMITTED;
  }
  EXPECT_EQ(admitted, 4) << "the bucket went on from 4 tokens";
}

TEST(XdpApply, ThousandSwapsUnderTrafficLoseNothing) {
  SLUICE_REQUIRE_ROOT();
  // Two profiles that admit everything but differ (order, prefixes): every
  // packet must pass and be counted, whichever profile it meets.
  const char* va = R"(
[[class]]
name = "x"
match = { src = "198.18.0.0/16", dst_ports = "443" }

[[class]]
name = "y"
match = { src = "198.18.1.0/24" }
)";
  const char* vb = R"(
[[class]]
name = "y"
match = { src = ["198.18.1.0/24", "2001:2::/48"] }

[[class]]
name = "x"
match = { src = "198.18.0.0/15", dst_ports = ["443", "8443"] }
)";
  XdpProgramOptions o;
  o.record_decision = true;  // judge every packet, not a batch
  std::string error;
  auto p = XdpProgram::load(o, &error);
  ASSERT_TRUE(p) << error;
  const CompiledProfile a = test::profile_from_toml(va);
  const CompiledProfile b = test::profile_from_toml(vb);
  ASSERT_TRUE(p->write_profile(a, 1, &error)) << error;
  // Swaps run back to back in one thread while the other sends traffic,
  // until at least 1000 swaps and 20000 packets have overlapped
  // (bounded by 60 s).
  std::atomic<bool> done{false};
  std::atomic<uint64_t> swaps{0};
  std::thread swapper([&] {
    std::string e;
    while (!done.load()) {
      const uint64_t i = swaps.load();
      if (!p->write_profile(i % 2 ? a : b, 2 + i, &e)) break;
      swaps++;
    }
  });
  const auto f = syn_from("198.18.1.9", 443);
  XdpTestResult res;
  uint64_t sent = 0, passed = 0, batches = 0, misjudged = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((swaps.load() < 1000 || batches < 20000) && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(p->test_run(f, &res, &error)) << error;
    sent++;
    passed += res.action == XDP_PASS;
    // Both profiles put this packet first in line (x in one, y in the other)
    // and admit it as a lookup: anything else is a packet that saw a torn
    // or half-written profile.
    misjudged += res.decision.class_id != 0 || res.decision.verdict != SL_VERDICT_ADMITTED ||
                 res.decision.reason != SL_REASON_LOOKUP;
    batches++;
  }
  done = true;
  swapper.join();
  EXPECT_GE(swaps.load(), 1000u);
  DataplaneStats s = p->stats();
  uint64_t counted = 0;
  for (const ClassStats& c : s.classes)
    for (int v = 0; v < SL_VERDICT_COUNT; v++)
      for (int r = 0; r < SL_REASON_COUNT; r++) counted += c.packets[v][r];
  EXPECT_GE(sent, 20000u);
  EXPECT_EQ(misjudged, 0u);
  EXPECT_EQ(passed, sent);
  EXPECT_EQ(counted, sent);
  EXPECT_EQ(s.generation, 1 + swaps.load());
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// Pinned flow state survives a reload (the adopted program verifies the flow
// a SYN opened before). A reload asking for another flow_table_size is
// another pinned layout: fresh maps in their own directory (the running
// program keeps its own until the links swap), never a silent resize.
TEST(XdpPins, FlowsSurviveAdoptionAndASizeChangeIsAnotherLayout) {
  SLUICE_REQUIRE_ROOT();
  const test::ScopedPins scoped("flows");
  const std::string& pins = scoped.path;
  const CompiledProfile profile =
      test::profile_from_toml("[admission]\nflow_learn_sec = 0\nflow_table_size = 16384\n" +
                              std::string(test::kFlowClasses));
  XdpProgramOptions o;
  o.pin_path = pins;
  o.fake_clock = true;
  o.record_decision = true;
  o.flow_table_size = 16384;
  std::string error;
  {
    auto first = XdpProgram::load(o, &error);
    ASSERT_TRUE(first) << error;
    EXPECT_FALSE(first->adopted());
    ASSERT_TRUE(first->write_profile(profile, 1, &error)) << error;
    first->set_clock(kT0);
    XdpTestResult r;
    ASSERT_TRUE(
        first->test_run(test::seg4("198.18.10.5", 40000, "198.19.0.1", 443, kSyn), &r, &error))
        << error;
  }  // the process that loaded it is gone; the pins remain
  {
    auto again = XdpProgram::load(o, &error);
    ASSERT_TRUE(again) << error;
    EXPECT_TRUE(again->adopted());
    again->set_clock(kT0 + 1000);
    XdpTestResult r;
    ASSERT_TRUE(
        again->test_run(test::seg4("198.18.10.5", 40000, "198.19.0.1", 443, kAck), &r, &error))
        << error;
    EXPECT_EQ(r.decision.reason, SL_REASON_CONTINUATION);
    EXPECT_EQ(again->stats().flow_entries[0], 1u);
  }
  const std::string before = XdpProgram::layout_name(o);
  EXPECT_TRUE(std::filesystem::exists(pins + "/" + before + "/sl_flows"));
  o.flow_table_size = 32768;
  const std::string after = XdpProgram::layout_name(o);
  EXPECT_NE(before, after);
  auto resized = XdpProgram::load(o, &error);
  ASSERT_TRUE(resized) << error;
  EXPECT_FALSE(resized->adopted());
  ASSERT_TRUE(resized->write_profile(profile, 1, &error)) << error;
  // 1024 sets of 8 ways a partition
  EXPECT_EQ(resized->stats().flow_table_capacity, 8u * 1024 * 8);
  EXPECT_TRUE(std::filesystem::exists(pins + "/" + after + "/sl_flows"));
  EXPECT_TRUE(std::filesystem::exists(pins + "/" + before + "/sl_flows"));
}

// A source's bucket survives a reload: the adopted table keeps its salt, so
// the source is found in the same set, still out of tokens (a new salt would
// look in another set and give it a full bucket).
TEST(XdpPins, SourcesKeepTheirBucketsAcrossAdoption) {
  SLUICE_REQUIRE_ROOT();
  const test::ScopedPins scoped("sources");
  const std::string& pins = scoped.path;
  const CompiledProfile profile = test::profile_from_toml(R"(
[[class]]
name = "hosts"
match = { src = "198.18.0.0/15" }
per_source = { rate_per_sec = 1, burst = 1 }
)");
  XdpProgramOptions o;
  o.pin_path = pins;
  o.fake_clock = true;
  o.record_decision = true;
  std::string error;
  auto syn = [&](XdpProgram& p, uint16_t port, uint64_t at) {
    p.set_clock(at);
    XdpTestResult r;
    EXPECT_TRUE(p.test_run(test::seg4("198.18.10.5", port, "198.19.0.1", 443, kSyn), &r, &error))
        << error;
    return r.decision.reason;
  };
  {
    auto first = XdpProgram::load(o, &error);
    ASSERT_TRUE(first) << error;
    ASSERT_TRUE(first->write_profile(profile, 1, &error)) << error;
    EXPECT_EQ(syn(*first, 40000, kT0), SL_REASON_LOOKUP);
    EXPECT_EQ(syn(*first, 40001, kT0 + 1000), SL_REASON_PER_SOURCE);
  }
  auto again = XdpProgram::load(o, &error);
  ASSERT_TRUE(again) << error;
  ASSERT_TRUE(again->adopted());
  EXPECT_EQ(syn(*again, 40002, kT0 + 2000), SL_REASON_PER_SOURCE);
  EXPECT_EQ(again->stats().source_table_entries, 1u);
  EXPECT_EQ(syn(*again, 40003, kT0 + 1000002000), SL_REASON_LOOKUP);  // a second later
}

}  // namespace
}  // namespace sluice
