// SPDX-License-Identifier: Apache-2.0
// Ordered first-match classification: prefixes (LPM, nested), protocol, port
// ranges, DSCP, IPv4 and IPv6, the implied default, and scale.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "dataplane/model/classify.h"
#include "dataplane/reference/reference.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/profile_from_toml.hpp"

namespace sluice {
namespace {

using test::kAck;
using test::kSyn;
using test::PacketBuilder;

constexpr const char* kConfig = R"(
[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24", "2001:2:0:10::/64"], proto = "tcp", dst_ports = ["443", "8000-8100"] }

[[class]]
name = "voice"
match = { dscp = [46, 34] }

[[class]]
name = "dns"
match = { proto = "udp", dst_ports = 53 }

[[class]]
name = "staff"
match = { src = "198.18.0.0/16", dst = ["198.19.5.0/24", "2001:2:0:5::/64"] }

[[class]]
name = "ping"
match = { proto = "icmp" }

[[class]]
name = "citizen"
match = { src = ["198.18.0.0/15", "2001:2::/48"] }
)";

struct ClassCase {
  std::string name;
  std::vector<uint8_t> frame;
  std::string expected;
};

TEST(Classify, FirstMatchWinsAcrossFields) {
  ReferenceModel model(test::profile_from_toml(kConfig));
  const std::vector<ClassCase> cases = {
      {"checkpoint_v4_443",
       PacketBuilder().ipv4("198.18.10.7", "198.19.0.1").tcp(1, 443, kSyn).build(), "checkpoint"},
      {"checkpoint_v4_port_range",
       PacketBuilder().ipv4("198.18.10.7", "198.19.0.1").tcp(1, 8050, kSyn).build(), "checkpoint"},
      {"checkpoint_v6",
       PacketBuilder().ipv6("2001:2:0:10::99", "2001:2:0:1::1").tcp(1, 8100, kSyn).build(),
       "checkpoint"},
      {"checkpoint_continuation_same_class",
       PacketBuilder().ipv4("198.18.10.7", "198.19.0.1").tcp(1, 443, kAck).build(), "checkpoint"},
      {"checkpoint_src_wrong_port_falls_through",
       PacketBuilder().ipv4("198.18.10.7", "198.19.0.1").tcp(1, 80, kSyn).build(), "citizen"},
      {"checkpoint_src_udp_falls_through",
       PacketBuilder().ipv4("198.18.10.7", "198.19.0.1").udp(1, 443).build(), "citizen"},
      {"port_range_end_exclusive",
       PacketBuilder().ipv4("198.18.10.7", "198.19.0.1").tcp(1, 8101, kSyn).build(), "citizen"},
      {"dscp_ef", PacketBuilder().ipv4("198.18.10.7", "198.19.0.1", 46).tcp(1, 80, kSyn).build(),
       "voice"},
      {"dscp_v6_af41", PacketBuilder().ipv6("2001:2::1", "2001:2::2", 34).udp(1, 9).build(),
       "voice"},
      {"dscp_earlier_class_wins",
       PacketBuilder().ipv4("198.18.10.7", "198.19.0.1", 46).tcp(1, 443, kSyn).build(),
       "checkpoint"},
      {"dns", PacketBuilder().ipv4("198.19.200.1", "198.19.0.1").udp(1, 53).build(), "dns"},
      {"staff_nested_in_citizen_src",
       PacketBuilder().ipv4("198.18.10.7", "198.19.5.9").tcp(1, 80, kSyn).build(), "staff"},
      {"staff_v6_dst_any_src",
       PacketBuilder().ipv6("2001:2:0:77::1", "2001:2:0:5::9").tcp(1, 80, kSyn).build(), "citizen"},
      {"ping_v4", PacketBuilder().ipv4("198.19.1.1", "198.19.0.1").icmp(8).build(), "ping"},
      {"ping_v6", PacketBuilder().ipv6("2001:2::1", "2001:2::2").icmp(128).build(), "ping"},
      {"citizen_v4", PacketBuilder().ipv4("198.19.200.1", "198.19.0.1").tcp(1, 443, kSyn).build(),
       "citizen"},
      {"citizen_v6",
       PacketBuilder().ipv6("2001:2:0:ffff::1", "2001:2::2").tcp(1, 443, kSyn).build(), "citizen"},
      {"default_v6_outside",
       PacketBuilder().ipv6("2001:3::1", "2001:2::2").tcp(1, 443, kSyn).build(), "default"},
      {"vlan_tagged_checkpoint",
       PacketBuilder().vlan(10).ipv4("198.18.10.7", "198.19.0.1").tcp(1, 443, kSyn).build(),
       "checkpoint"},
  };
  for (const ClassCase& c : cases) {
    sl_decision d = model.decide(c.frame.data(), static_cast<uint32_t>(c.frame.size()), 1);
    EXPECT_EQ(model.profile().class_names[d.class_id], c.expected) << c.name;
  }
}

// A shorter prefix of an earlier class still matches inside a longer prefix
// of a later class (the LPM value carries covering prefixes' classes).
TEST(Classify, NestedPrefixesAcrossClasses) {
  ReferenceModel model(test::profile_from_toml(R"(
[[class]]
name = "wide"
match = { src = "198.18.0.0/16", dst_ports = "80" }

[[class]]
name = "narrow"
match = { src = "198.18.10.0/24" }
)"));
  auto at = [&](const char* src, uint16_t port) {
    auto f = PacketBuilder().ipv4(src, "198.19.0.1").tcp(1, port, kSyn).build();
    return model.profile()
        .class_names[model.decide(f.data(), static_cast<uint32_t>(f.size()), 1).class_id];
  };
  EXPECT_EQ(at("198.18.10.5", 80), "wide");
  EXPECT_EQ(at("198.18.10.5", 81), "narrow");
  EXPECT_EQ(at("198.18.11.5", 80), "wide");
  EXPECT_EQ(at("198.18.11.5", 81), "default");
}

// 100k prefixes: every one of them classifies, neighbours outside do not.
TEST(Classify, HundredThousandPrefixes) {
  std::string list;
  for (int i = 0; i < 100000; i++) {
    if (i) list += ",";
    list += "\"2001:2:" + std::to_string(i / 10000) + ":" + std::to_string(i % 10000) + "::/64\"";
  }
  ReferenceModel model(
      test::profile_from_toml("[[class]]\nname = \"many\"\nmatch = { src = [" + list + "] }\n"));
  EXPECT_EQ(model.profile().src_prefixes.size(), 100000u);
  for (int i = 0; i < 100000; i += 997) {
    std::string a =
        "2001:2:" + std::to_string(i / 10000) + ":" + std::to_string(i % 10000) + "::42";
    auto f = PacketBuilder().ipv6(a, "2001:2::1").udp(1, 53).build();
    EXPECT_EQ(model.decide(f.data(), static_cast<uint32_t>(f.size()), 1).class_id, 0) << a;
  }
  auto f = PacketBuilder().ipv6("2001:2:9:9999:1::1", "2001:2::1").udp(1, 53).build();
  EXPECT_EQ(model.decide(f.data(), static_cast<uint32_t>(f.size()), 1).class_id, 0);
  f = PacketBuilder().ipv6("2001:2:10::1", "2001:2::1").udp(1, 53).build();
  EXPECT_EQ(model.decide(f.data(), static_cast<uint32_t>(f.size()), 1).class_id, 1);
}

// The first matching class is the mask's lowest bit: the BPF program's
// halving and the C++ dataplanes' one instruction give the same index as
// a count, for every single bit and for 100,000 random masks.
TEST(Classify, LowestBitByHalvingAndByInstructionAgree) {
  const auto count = [](uint32_t x) {
    uint32_t n = 0;
    while (!(x & 1U)) {
      x >>= 1;
      n++;
    }
    return n;
  };
  std::vector<uint32_t> masks;
  for (uint32_t b = 0; b < 32; b++) masks.push_back(1U << b);
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; i++) {
    const uint32_t x = static_cast<uint32_t>(rng()) >> (rng() % 32);
    masks.push_back(x != 0 ? x : 0x80000000U);
  }
  for (uint32_t x : masks) {
    ASSERT_EQ(sl_lowest_bit_halving(x), count(x)) << std::hex << x;
    ASSERT_EQ(sl_lowest_bit(x), count(x)) << std::hex << x;
  }
}

}  // namespace
}  // namespace sluice
