// SPDX-License-Identifier: Apache-2.0
// The XDP program parses the common frames (IPv4 without options, untagged
// or under one 802.1Q tag) inline and every other frame through its global
// parser functions (bpf/sluice.bpf.c, sl_parse_outside). Both must give the
// model's meta:
// every frame shape on either side of that line, cut short at every length
// and with inconsistent lengths, is decided as the reference model decides
// it, under a profile whose classes read every field the parse fills.
#include <gtest/gtest.h>

#include <linux/bpf.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/support/packet_builder.hpp"
#include "tests/support/privileges.hpp"
#include "tests/support/xdp_harness.hpp"

namespace sluice {
namespace {

using test::kAck;
using test::kSyn;
using test::PacketBuilder;

constexpr uint64_t kT0 = 1'000'000'000'000ULL;

// Classes by source prefix, protocol, destination port and DSCP; DNS and
// citizens over their budgets (a frame a millisecond), marked and reset,
// so that a field parsed wrong shows in the class, the verdict or the
// rewritten frame.
constexpr const char* kProfile = R"(
[admission]
flow_learn_sec = 0

[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24"], proto = "tcp", dst_ports = ["443"] }
on_shed = "reset"
per_source = { rate_per_sec = 1000, burst = 1000 }

[[class]]
name = "voice"
priority = 1
match = { dscp = [46] }
rate_per_sec = 1000000

[[class]]
name = "dns"
priority = 2
match = { proto = "udp", dst_ports = 53 }
rate_per_sec = 200
on_shed = "mark"
mark_dscp = 8

[[class]]
name = "ping"
priority = 3
match = { proto = "icmp" }
rate_per_sec = 1000000

[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15"] }
rate_per_sec = 200
on_shed = "reset"
)";

struct Shape {
  std::string name;
  std::vector<uint8_t> frame;
  // From the inside: a reset that closes the flow the frame continues, so
  // that the frame is decided again with its flow gone (a flow key the
  // outside's parse made wrong, its VLAN say, is not the inside's).
  std::vector<uint8_t> inside_reset = {};
};

// The shapes: a frame of each L4 kind, without IP options and untagged or
// under one 802.1Q tag (the inline paths), with IP options, under two VLAN
// tags, fragmented, and to the link's own control groups.
std::vector<Shape> shapes() {
  std::vector<Shape> out;
  for (std::size_t options : {0, 4, 12, 40}) {
    for (int tags = 0; tags <= 2; tags++) {
      auto base = [&](const std::string& src, uint8_t dscp = 0) {
        PacketBuilder b;
        if (tags >= 1) b.vlan(10);
        if (tags >= 2) b.vlan(20);
        b.ipv4(src, "198.19.0.1", dscp);
        if (options) b.ipv4_options(options);
        return b;
      };
      const std::string tag =
          " (options " + std::to_string(options) + ", tags " + std::to_string(tags) + ")";
      PacketBuilder reset;
      if (tags >= 1) reset.vlan(10);
      if (tags >= 2) reset.vlan(20);
      reset.ipv4("198.19.0.1", "198.18.10.7").tcp(443, 40000, test::kRst);
      out.push_back({"checkpoint SYN" + tag, base("198.18.10.7").tcp(40000, 443, kSyn, 7).build()});
      out.push_back(
          {"SYN with TCP options" + tag, base("198.18.10.8").tcp(40001, 443, kSyn, 9, 20).build()});
      out.push_back({"citizen SYN" + tag, base("198.19.4.4").tcp(40002, 80, kSyn, 11).build()});
      out.push_back({"ACK with data" + tag,
                     base("198.18.10.7").tcp(40000, 443, kAck).payload(100).build(),
                     reset.build()});
      out.push_back({"citizen UDP" + tag, base("198.19.3.4").udp(5000, 53).build()});
      out.push_back({"voice UDP" + tag, base("198.19.3.5", 46).udp(5000, 5004).build()});
      out.push_back({"ICMP echo" + tag, base("198.19.3.6").icmp(8).build()});
      out.push_back({"GRE" + tag, base("198.19.3.7").l4_raw(47, 24).build()});
      out.push_back({"first fragment" + tag,
                     base("198.19.3.8").fragment(0, true).udp(5000, 53).payload(64).build()});
      out.push_back(
          {"later fragment" + tag, base("198.19.3.8").fragment(9, false).l4_raw(17, 40).build()});
    }
  }
  out.push_back({"RIP to 224.0.0.9 (link control)",
                 PacketBuilder().ipv4("198.19.3.9", "224.0.0.9").udp(520, 520).build()});
  out.push_back(
      {"IGMP with TTL 1 (link control)",
       PacketBuilder().ipv4("198.19.3.9", "239.1.1.1").hop_limit(1).l4_raw(2, 8).build()});
  return out;
}

TEST(XdpParsePaths, EveryShapeCutAtEveryLengthIsDecidedAsTheModel) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  ASSERT_TRUE(h.load(kProfile));
  uint64_t now = kT0;
  int mismatches = 0;
  std::size_t frames = 0, inline_shaped = 0, parsed_ok = 0;
  auto check = [&](const std::string& what, const std::vector<uint8_t>& f) -> sl_decision {
    now += 1'000'000;  // 1 ms apart: every budget has room
    test::BothResult r = h.run(f, now);
    frames++;
    inline_shaped += (f.size() >= 38 && f[12] == 0x08 && f[13] == 0x00 && f[14] == 0x45) ||
                     (f.size() >= 38 && f[12] == 0x81 && f[13] == 0x00 && f[16] == 0x08 &&
                      f[17] == 0x00 && f[18] == 0x45);
    const sl_decision& x = r.xdp.decision;
    const sl_decision& m = r.model;
    parsed_ok += m.reason != SL_REASON_MALFORMED && m.reason != SL_REASON_NON_IP;
    const bool same = x.class_id == m.class_id && x.verdict == m.verdict && x.reason == m.reason &&
                      x.action == m.action && x.is_start == m.is_start;
    if (!same && ++mismatches <= 8)
      ADD_FAILURE() << what << " (" << f.size() << " bytes): xdp class " << int{x.class_id}
                    << " verdict " << int{x.verdict} << " reason " << int{x.reason} << " action "
                    << int{x.action} << ", model class " << int{m.class_id} << " verdict "
                    << int{m.verdict} << " reason " << int{m.reason} << " action " << int{m.action};
    if (same && r.xdp.action != XDP_DROP && r.xdp.frame != r.model_frame && ++mismatches <= 8)
      ADD_FAILURE() << what << " (" << f.size() << " bytes): output frames differ";
    return m;
  };
  std::size_t resets = 0, closed = 0;
  for (const auto& [name, frame, inside_reset] : shapes()) {
    check(name, frame);
    if (!inside_reset.empty()) {
      // The reset leaves the flow SL_FLOW_CLOSING_NS to live, the open
      // flow it would otherwise be lives on: past that, the frame is a
      // verified continuation only where the reset missed its flow.
      now += 1'000'000;
      h.run_inside(inside_reset, now);
      now += SL_FLOW_CLOSING_NS;
      resets++;
      closed += check(name + " after the inside's reset", frame).reason != SL_REASON_CONTINUATION;
    }
    // Cut short at every length down to an Ethernet header (the least a
    // test run takes).
    for (std::size_t len = frame.size(); len-- > 14;)
      check(name + " cut", std::vector<uint8_t>(frame.begin(), frame.begin() + len));
    // The IPv4 total length past the frame, short of the header, short of
    // the L4 header, and one byte short of the whole datagram.
    std::size_t ip = 14;  // past the VLAN tags
    while (frame[ip - 2] == 0x81 && frame[ip - 1] == 0x00) ip += 4;
    const uint16_t total = static_cast<uint16_t>(frame[ip + 2] << 8 | frame[ip + 3]);
    for (uint16_t t : {static_cast<uint16_t>(total + 1), uint16_t{19}, uint16_t{24},
                       static_cast<uint16_t>(total - 1)}) {
      std::vector<uint8_t> g = frame;
      g[ip + 2] = static_cast<uint8_t>(t >> 8);
      g[ip + 3] = static_cast<uint8_t>(t);
      check(name + " total " + std::to_string(t), g);
    }
    // Not version 4, and a header length under 20 bytes.
    for (uint8_t v : {uint8_t{0x65}, uint8_t{0x44}}) {
      std::vector<uint8_t> g = frame;
      g[ip] = v;
      check(name + " version/ihl", g);
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(closed, resets);  // the model's flows were closed: the step tests something
  // Both parse paths carried many frames, and most of the whole frames
  // parsed: the comparison is of real decisions, not of refusals alone.
  EXPECT_GT(inline_shaped, 350u);
  EXPECT_GT(frames - inline_shaped, 8000u);
  EXPECT_GT(parsed_ok, 150u);
  std::printf("parse paths: %zu frames (%zu of the inline shape), %zu parsed, %d mismatches\n",
              frames, inline_shaped, parsed_ok, mismatches);
}

}  // namespace
}  // namespace sluice
