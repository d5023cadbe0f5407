// SPDX-License-Identifier: Apache-2.0
// Flow state through the reference model: the fixture tables of
// tests/support/flow_fixtures.hpp (every case of the brief: SYN, SYN-ACK,
// ACK, FIN, RST, inside-initiated, ICMP error, fragments, IPv6, VLANs, other
// protocols, expiry, the learning window), then the bounds: learning cap,
// retunes that move a class, and a flood of 1M spoofed 5-tuples.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "dataplane/model/backend_signal.h"
#include "dataplane/reference/reference.hpp"
#include "tests/support/flow_fixtures.hpp"
#include "tests/support/profile_from_toml.hpp"

namespace sluice {
namespace {

using test::kAck;
using test::kFlowT0;
using test::kSecond;
using test::kSyn;
using test::seg4;

sl_decision out(ReferenceModel& m, const std::vector<uint8_t>& f, uint64_t now) {
  return m.decide(f.data(), static_cast<uint32_t>(f.size()), now);
}

class FlowFixtures : public ::testing::TestWithParam<test::FlowFixture> {};

TEST_P(FlowFixtures, ReferenceModel) {
  const test::FlowFixture& fx = GetParam();
  ReferenceModel model(test::profile_from_toml(fx.toml));
  for (const test::FlowStep& s : fx.steps) {
    SCOPED_TRACE(s.what);
    if (s.inside) {
      model.observe_inside(s.frame.data(), static_cast<uint32_t>(s.frame.size()), s.at_ns);
      continue;
    }
    const sl_decision d = out(model, s.frame, s.at_ns);
    EXPECT_EQ(model.profile().class_names[d.class_id], s.cls);
    EXPECT_EQ(d.verdict, s.verdict);
    EXPECT_EQ(d.reason, s.reason);
    // Verified packets never count as lookups; charged ones always do.
    if (s.reason == SL_REASON_CONTINUATION) EXPECT_EQ(d.is_start, 0);
    const bool charged = fx.toml.find("unverified = \"drop\"") == std::string::npos;
    if (s.reason == SL_REASON_UNVERIFIED && charged) EXPECT_EQ(d.is_start, 1);
    if (d.verdict == SL_VERDICT_SHED && s.reason == SL_REASON_UNVERIFIED)
      EXPECT_EQ(d.action, SL_ACTION_DROP);  // never answered with a reset
  }
}

INSTANTIATE_TEST_SUITE_P(Model, FlowFixtures, ::testing::ValuesIn(test::flow_fixtures()),
                         [](const auto& info) { return info.param.name; });

// The backend signal of the backend_signal fixture, counted; and nothing at
// all without boundary.adaptive (the same frames).
TEST(BackendSignal, CountsTheFixturesSignal) {
  const test::FlowFixture fx = [] {
    for (const test::FlowFixture& f : test::flow_fixtures())
      if (f.name == "backend_signal") return f;
    return test::FlowFixture{};
  }();
  ASSERT_FALSE(fx.steps.empty());
  for (const bool adaptive : {true, false}) {
    std::string toml = fx.toml;
    if (!adaptive) toml.replace(toml.find("adaptive = true"), 15, "adaptive = false");
    ReferenceModel model(test::profile_from_toml(toml));
    EXPECT_EQ((model.profile().prof.flags & SL_PROFILE_ADAPTIVE) != 0, adaptive);
    for (const test::FlowStep& s : fx.steps) {
      if (s.inside)
        model.observe_inside(s.frame.data(), static_cast<uint32_t>(s.frame.size()), s.at_ns);
      else
        out(model, s.frame, s.at_ns);
    }
    const sl_backend_signal& b = model.counters().backend;
    const uint64_t n = adaptive ? 1 : 0;
    EXPECT_EQ(b.requests, n);
    EXPECT_EQ(b.responses, n);
    EXPECT_EQ(b.sum_us, 20000 * n);
    EXPECT_EQ(b.hist[sl_rt_bucket(20000)], n);
    EXPECT_EQ(b.syn_again, n);
    EXPECT_EQ(b.resets, n);
    EXPECT_EQ(b.zero_windows, n);
  }
}

// Histogram buckets: contiguous, 8 per octave, each sample inside its own.
TEST(BackendSignal, BucketsCoverEverySample) {
  uint32_t last = 0;
  for (uint64_t us = 0; us < (1ULL << 26); us = us < 64 ? us + 1 : us + us / 20) {
    const uint32_t b = sl_rt_bucket(us);
    EXPECT_GE(b, last) << us;
    EXPECT_LE(b, last + 1) << us;
    last = b;
    EXPECT_LE(sl_rt_bucket_low(b), us) << us;
    if (b + 1 < SL_RT_BUCKETS) EXPECT_GT(sl_rt_bucket_low(b + 1), us) << us;
  }
  EXPECT_EQ(sl_rt_bucket(~0ULL), SL_RT_BUCKETS - 1U);
  // 9% wide: 20 ms and 22 ms fall in different buckets.
  EXPECT_NE(sl_rt_bucket(20000), sl_rt_bucket(22000));
}

uint64_t events(const ReferenceModel& m, uint32_t prio, sl_flow_event e) {
  return m.counters().flow_events[prio][e];
}

// The learning window records at most half a partition: an ACK flood in the
// window does not become a table of verified flows.
TEST(FlowLearning, CappedPerPartition) {
  ReferenceModel model(test::profile_from_toml(std::string(R"(
[admission]
flow_table_size = 8192
flow_learn_sec = 10
)") + test::kFlowClasses));
  const uint64_t t = kFlowT0;
  const uint32_t cap = 8192 / SL_PRIORITIES / 2;
  ASSERT_EQ(model.profile().prof.flow_learn_max, cap);
  uint32_t learned = 0, charged = 0;
  for (uint32_t i = 0; i < 3 * cap; i++) {
    const auto f = seg4("198.18.10.9", static_cast<uint16_t>(1000 + i), "198.19.0.1", 443, kAck);
    const sl_decision d = out(model, f, t + i * 1000);
    learned += d.reason == SL_REASON_CONTINUATION;
    charged += d.reason == SL_REASON_UNVERIFIED;
  }
  EXPECT_EQ(learned, cap);
  EXPECT_EQ(charged, 2 * cap);
  EXPECT_EQ(events(model, 0, SL_FLOW_EV_LEARNED), cap);
}

// A retune that moves a class to another priority keeps its flows verified:
// the class keeps looking in the partition its flows were made in.
TEST(FlowRetune, MovingAClassKeepsItsFlows) {
  auto config = [](int prio) {
    return "[admission]\nflow_learn_sec = 0\n[[class]]\nname = \"web\"\npriority = " +
           std::to_string(prio) + "\nmatch = { src = \"198.18.0.0/15\" }\n";
  };
  ReferenceModel model(test::profile_from_toml(config(5)));
  const uint64_t t = kFlowT0;
  out(model, seg4("198.18.1.1", 40000, "198.19.0.1", 443, kSyn), t);
  model.apply(test::profile_from_toml(config(0)));
  EXPECT_EQ(model.profile().prof.classes[0].flow_parts, (1u << 0) | (1u << 5));
  const sl_decision d = out(model, seg4("198.18.1.1", 40000, "198.19.0.1", 443, kAck), t + 1000);
  EXPECT_EQ(d.reason, SL_REASON_CONTINUATION);
  // New flows land in the new partition.
  out(model, seg4("198.18.1.1", 40001, "198.19.0.1", 443, kSyn), t + 2000);
  EXPECT_EQ(model.flows().size(0), 1u);
  EXPECT_EQ(model.flows().size(5), 1u);
}

// unverified = "pass" trusts every continuation, so no flow state is kept:
// an admitted SYN writes no entry and its ACK is trusted, not verified;
// unless the adaptive boundary needs the flows for its backend signal.
TEST(FlowState, PassKeepsNoFlowsUnlessAdaptive) {
  for (const bool adaptive : {false, true}) {
    SCOPED_TRACE(adaptive ? "adaptive" : "fixed boundary");
    ReferenceModel model(test::profile_from_toml(
        std::string("[admission]\nunverified = \"pass\"\n[boundary]\nlookups_per_sec = 1000\n") +
        (adaptive ? "adaptive = true\n" : "") + test::kFlowClasses));
    const uint64_t t = kFlowT0;
    const sl_decision syn = out(model, seg4("198.18.10.5", 40000, "198.19.0.1", 443, kSyn), t);
    ASSERT_EQ(syn.reason, SL_REASON_LOOKUP);
    EXPECT_EQ(syn.flow_ops != 0, adaptive);
    EXPECT_EQ(events(model, 0, SL_FLOW_EV_CREATED), adaptive ? 1u : 0u);
    EXPECT_EQ(model.flows().size(0), adaptive ? 1u : 0u);
    const sl_decision ack =
        out(model, seg4("198.18.10.5", 40000, "198.19.0.1", 443, kAck), t + 1000);
    EXPECT_EQ(ack.verdict, SL_VERDICT_ADMITTED);
    EXPECT_EQ(ack.reason, SL_REASON_CONTINUATION);
    EXPECT_EQ(ack.verified, adaptive ? SL_FLOW_HIT : 0);
    // Nor does the inside open one.
    const auto out_syn = seg4("198.19.0.1", 5555, "198.18.20.9", 80, kSyn);
    model.observe_inside(out_syn.data(), static_cast<uint32_t>(out_syn.size()), t + 2000);
    EXPECT_EQ(model.flows().size(5), adaptive ? 1u : 0u);
  }
}

// A retune from "pass" back to "charge" finds a table that missed every flow
// opened meanwhile: it opens the learning window again (as after a start),
// so those flows are learned, not charged; without a window, charged. Also
// when every packet under "pass" was a continuation decided on a CPU's
// credit (no packet budget).
TEST(FlowState, TurningItBackOnOpensTheLearningWindow) {
  for (const bool credits : {false, true})
    for (const int learn_sec : {10, 0}) {
      SCOPED_TRACE(std::to_string(learn_sec) + (credits ? " s, credits" : " s"));
      auto config = [&](const char* unverified) {
        return std::string("[admission]\nunverified = \"") + unverified +
               "\"\nflow_learn_sec = " + std::to_string(learn_sec) + "\n" + test::kFlowClasses;
      };
      ReferenceModel model(test::profile_from_toml(config("charge")));
      if (credits) model.use_credits(2);
      out(model, seg4("198.18.10.5", 39999, "198.19.0.1", 443, kSyn), kFlowT0);
      model.apply(test::profile_from_toml(config("pass")));
      const auto ack = seg4("198.18.10.5", 40000, "198.19.0.1", 443, kAck);
      // Well past the window the first packet opened: a flow that began
      // under "pass".
      const uint64_t t = kFlowT0 + 60 * kSecond;
      for (int i = 0; i < 3; i++)
        EXPECT_EQ(out(model, ack, t + i * 1000).reason, SL_REASON_CONTINUATION);
      model.apply(test::profile_from_toml(config("charge")));
      const sl_decision d = out(model, ack, t + kSecond);
      EXPECT_EQ(d.verdict, SL_VERDICT_ADMITTED);
      EXPECT_EQ(d.reason, learn_sec ? SL_REASON_CONTINUATION : SL_REASON_UNVERIFIED);
      EXPECT_EQ(events(model, 0, SL_FLOW_EV_LEARNED), learn_sec ? 1u : 0u);
      // Learned: its next packet is verified by the entry.
      if (learn_sec) EXPECT_EQ(out(model, ack, t + 2 * kSecond).verified, SL_FLOW_HIT_LEARNED);
    }
}

// sl_flow_key_make writes the key's ports, VLANs and tail as two 8-byte
// words: each field must land where the struct puts it, as the field-by-field
// writes it replaced put it (the tables hash and compare the bytes, and
// pinned XDP tables keep keys across a restart).
TEST(FlowKey, WordsHoldEachFieldWhereTheStructPutsIt) {
  std::mt19937_64 rng(20261205);
  for (int i = 0; i < 10000; i++) {
    sl_meta m{};
    for (auto& b : m.src_be) b = static_cast<uint8_t>(rng());
    for (auto& b : m.dst_be) b = static_cast<uint8_t>(rng());
    m.sport = static_cast<uint16_t>(rng());
    m.dport = static_cast<uint16_t>(rng());
    m.vlan_id[0] = static_cast<uint16_t>(rng() & 0x0fff);
    m.vlan_id[1] = static_cast<uint16_t>(rng() & 0x0fff);
    m.frag_id = static_cast<uint32_t>(rng());
    m.family = (i & 1) ? SL_FAMILY_V4 : SL_FAMILY_V6;
    m.frag_proto = static_cast<uint8_t>(rng());

    sl_flow_key want;
    std::memset(&want, 0, sizeof(want));
    std::memcpy(want.outer_be, m.src_be, 16);
    std::memcpy(want.inner_be, m.dst_be, 16);
    want.outer_port = m.sport;
    want.inner_port = m.dport;
    want.vlan_id[0] = m.vlan_id[0];
    want.vlan_id[1] = m.vlan_id[1];
    want.family = m.family;
    want.kind = SL_FLOW_KIND_TCP;
    want.proto = SL_IPPROTO_TCP;
    sl_flow_key got;
    std::memset(&got, 0xa5, sizeof(got));  // every byte must be written
    sl_flow_key_tcp(&got, &m);
    ASSERT_EQ(std::memcmp(&got, &want, sizeof(want)), 0) << "TCP key, case " << i;

    want.outer_port = 0;
    want.inner_port = 0;
    want.frag_id = m.frag_id;
    want.kind = SL_FLOW_KIND_FRAG;
    want.proto = m.frag_proto;
    std::memset(&got, 0xa5, sizeof(got));
    sl_flow_key_frag(&got, &m);
    ASSERT_EQ(std::memcmp(&got, &want, sizeof(want)), 0) << "fragment key, case " << i;
  }
}

// 1M distinct spoofed 5-tuples of a low-priority class (admitted SYNs that
// create flows, and ACKs that try to match them) keep the table's memory
// where it was at start and evict no flow of the higher-priority class.
TEST(FlowFlood, MillionSpoofedTuplesEvictNoHigherPriorityFlow) {
  ReferenceModel model(test::profile_from_toml(std::string(R"(
[admission]
flow_table_size = 65536
flow_learn_sec = 0

[[class]]
name = "checkpoint"
priority = 0
match = { src = "198.18.10.0/24" }

[[class]]
name = "citizen"
priority = 5
match = { src = "198.18.0.0/15" }
)")));
  const uint64_t t0 = kFlowT0;
  const std::size_t memory = model.flows().memory_bytes();
  // 500 checkpoint flows, handshakes completed.
  for (uint16_t i = 0; i < 500; i++) {
    out(model, seg4("198.18.10.7", static_cast<uint16_t>(20000 + i), "198.19.0.1", 443, kSyn),
        t0 + i);
    out(model, seg4("198.18.10.7", static_cast<uint16_t>(20000 + i), "198.19.0.1", 443, kAck),
        t0 + 1000 + i);
  }
  ASSERT_EQ(model.flows().size(0), 500u);
  // The flood: 500k SYNs and 500k ACKs, every one a new 5-tuple, over 10 s.
  auto syn = seg4("198.18.20.1", 1, "198.19.0.1", 443, kSyn);
  auto ack = seg4("198.18.20.1", 1, "198.19.0.1", 443, kAck);
  uint64_t now = t0 + kSecond;
  for (uint32_t i = 0; i < 1'000'000; i++) {
    auto& f = i % 2 ? ack : syn;
    const uint32_t src = test::kNet198_18 | 0x10000u | (i >> 4 & 0xffff);  // 198.19.x.y
    test::set_src_v4(f, src);
    f[14 + 20] = static_cast<uint8_t>(i & 0xf);  // source port
    f[14 + 21] = static_cast<uint8_t>(i >> 20);
    now += 10'000;
    out(model, f, now);
  }
  EXPECT_EQ(model.flows().memory_bytes(), memory);
  EXPECT_EQ(model.flows().size(0), 500u);
  EXPECT_EQ(model.flows().size(5), model.flows().partition_capacity());
  EXPECT_GT(events(model, 5, SL_FLOW_EV_EVICTED), 400'000u);
  EXPECT_EQ(events(model, 0, SL_FLOW_EV_EVICTED), 0u);
  // Every checkpoint flow is still verified.
  for (uint16_t i = 0; i < 500; i++) {
    const sl_decision d =
        out(model, seg4("198.18.10.7", static_cast<uint16_t>(20000 + i), "198.19.0.1", 443, kAck),
            now + 1000 + i);
    ASSERT_EQ(d.reason, SL_REASON_CONTINUATION) << "flow " << i;
  }
}

// With per_source on the protected class, spoofed continuations from inside
// its own prefix are charged to the sources they claim: one address can take
// no more than its per-source budget from the class.
TEST(FlowFlood, PerSourceBoundsAnUnverifiedFloodFromInsideThePrefix) {
  ReferenceModel model(test::profile_from_toml(R"(
[admission]
flow_learn_sec = 0

[[class]]
name = "checkpoint"
priority = 0
match = { src = "198.18.10.0/24" }
rate_per_sec = 1000
per_source = { rate_per_sec = 5, burst = 10 }
)"));
  auto ack = seg4("198.18.10.66", 1, "198.19.0.1", 443, kAck);
  uint64_t admitted = 0;
  const uint64_t t0 = kFlowT0;
  for (uint32_t i = 0; i < 100'000; i++) {  // 10 s at 10k packets/s, one address
    ack[14 + 21] = static_cast<uint8_t>(i);
    admitted += out(model, ack, t0 + i * 100'000ULL).verdict == SL_VERDICT_ADMITTED;
  }
  EXPECT_LE(admitted, 10u + 5u * 10u + 1u);  // burst + rate * 10 s
  EXPECT_GE(admitted, 10u + 5u * 10u - 1u);
}

// A flood of ACKs forged from a priority-0 prefix next to its real SYNs and
// a sticky citizen class over its share: the forged ones take only what no
// real lookup uses. Counted as priority-0 lookups, they made the citizens'
// sticky controller leave them room: a live check's citizens got 295 of
// their 800 lookups/s, and fewer every epoch.
TEST(FlowFlood, ForgedAcksFromAProtectedPrefixLeaveAStickyClassItsShare) {
  ReferenceModel model(test::profile_from_toml(R"(
[admission]
flow_learn_sec = 0
[boundary]
lookups_per_sec = 1000
lookups_burst = 100

[[class]]
name = "checkpoint"
priority = 0
match = { src = "198.18.10.0/24" }

[[class]]
name = "citizen"
priority = 5
match = { src = "198.18.16.0/22" }
)"));
  std::mt19937 rng(7);
  uint64_t checkpoint = 0, citizen = 0, forged = 0;
  const uint64_t t0 = kFlowT0;
  uint16_t port = 1;
  for (uint32_t ms = 0; ms < 20'000; ms++) {  // 20 s
    const uint64_t now = t0 + ms * 1'000'000ULL;
    const bool late = ms >= 10'000;  // counted: the last 10 s
    auto src = [](int net, uint32_t host) {
      return "198.18." + std::to_string(net + host / 254) + "." + std::to_string(1 + host % 254);
    };
    if (ms % 5 == 0) {  // 200 real checkpoint SYNs/s from 40 sources
      const auto f = seg4(src(10, ms / 5 % 40).c_str(), port++, "198.19.0.1", 443, kSyn);
      checkpoint += late && out(model, f, now).verdict == SL_VERDICT_ADMITTED;
    }
    for (int k = 0; k < (ms % 2 == 0 ? 2 : 1); k++) {  // 1,500 citizen SYNs/s from 19 sources
      const auto f = seg4(src(16, (ms * 3 + k) % 19).c_str(), port++, "198.19.0.1", 443, kSyn);
      citizen += late && out(model, f, now).verdict == SL_VERDICT_ADMITTED;
    }
    for (int k = 0; k < (ms % 2 == 0 ? 3 : 2); k++) {  // 2,500 forged ACKs/s
      const auto f =
          seg4(src(10, rng() % 254).c_str(), static_cast<uint16_t>(rng()), "198.19.0.1", 443, kAck);
      forged += late && out(model, f, now).verdict == SL_VERDICT_ADMITTED;
    }
  }
  // Before: citizens 2,891, forged 5,165. Now 7,138 and 918: the forged
  // take the margin the sticky controller leaves under its target.
  EXPECT_GE(checkpoint, 1990u);         // all 2,000
  EXPECT_GE(citizen, 0.85 * 800 * 10);  // its share, 800/s
  EXPECT_LE(forged, 0.15 * 1000 * 10);  // what no real lookup used
}

// The same forged flood against a protected class with a rate of its own
// (300/s, sticky by default) and no boundary: the forged ACKs take its
// tokens only above the charged reserve, and their sheds there move no
// sticky controller, so its 200 real SYNs/s all get in. Before, they spent
// the class's rate, and its controller shed real sources by rank (a live
// check: 103 of 200/s).
TEST(FlowFlood, ForgedAcksFromAProtectedPrefixLeaveItsOwnRate) {
  ReferenceModel model(test::profile_from_toml(R"(
[admission]
flow_learn_sec = 0

[[class]]
name = "checkpoint"
priority = 0
match = { src = "198.18.10.0/24" }
rate_per_sec = 300
)"));
  std::mt19937 rng(11);
  uint64_t checkpoint = 0, forged = 0;
  const uint64_t t0 = kFlowT0;
  uint16_t port = 1;
  for (uint32_t ms = 0; ms < 20'000; ms++) {  // 20 s
    const uint64_t now = t0 + ms * 1'000'000ULL;
    const bool late = ms >= 10'000;  // counted: the last 10 s
    if (ms % 5 == 0) {               // 200 real SYNs/s from 40 sources
      const std::string src = "198.18.10." + std::to_string(1 + ms / 5 % 40);
      checkpoint +=
          late && out(model, seg4(src.c_str(), port++, "198.19.0.1", 443, kSyn), now).verdict ==
                      SL_VERDICT_ADMITTED;
    }
    for (int k = 0; k < (ms % 2 == 0 ? 3 : 2); k++) {  // 2,500 forged ACKs/s
      const std::string src = "198.18.10." + std::to_string(1 + rng() % 254);
      const auto f = seg4(src.c_str(), static_cast<uint16_t>(rng()), "198.19.0.1", 443, kAck);
      forged += late && out(model, f, now).verdict == SL_VERDICT_ADMITTED;
    }
  }
  EXPECT_GE(checkpoint, 1990u);          // all 2,000
  EXPECT_LE(forged, 100u * 10u + 300u);  // what the real ones left of 300/s
  EXPECT_GE(forged, 100u * 10u - 300u);
}

}  // namespace
}  // namespace sluice
