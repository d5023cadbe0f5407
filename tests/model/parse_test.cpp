// SPDX-License-Identifier: Apache-2.0
// The parser, table-driven: every header case of the brief, then truncated and
// inconsistent frames, which must come back malformed without reading outside
// the frame (the fuzzer under ASan covers the "without reading outside" part).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "dataplane/model/parse.h"
#include "tests/support/packet_builder.hpp"

namespace sluice {
namespace {

using test::kAck;
using test::kFin;
using test::kRst;
using test::kSyn;
using test::PacketBuilder;

struct ParseCase {
  std::string name;
  std::function<std::vector<uint8_t>()> frame;
  int result;
  uint8_t family;
  uint8_t l4_proto;
  uint8_t is_start;
  uint16_t dport;
  uint8_t frag;
  uint8_t vlans;
  uint8_t dscp;
};

std::vector<ParseCase> cases() {
  return {
      {"ipv4_tcp_syn",
       [] {
         return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").tcp(40000, 443, kSyn).build();
       },
       SL_PARSE_OK, 4, 6, 1, 443, SL_FRAG_NONE, 0, 0},
      {"ipv4_tcp_syn_ack_continues",
       [] {
         return PacketBuilder()
             .ipv4("198.18.0.1", "198.19.0.1")
             .tcp(443, 40000, kSyn | kAck)
             .build();
       },
       SL_PARSE_OK, 4, 6, 0, 40000, SL_FRAG_NONE, 0, 0},
      {"ipv4_tcp_ack_continues",
       [] {
         return PacketBuilder()
             .ipv4("198.18.0.1", "198.19.0.1")
             .tcp(40000, 443, kAck)
             .payload(100)
             .build();
       },
       SL_PARSE_OK, 4, 6, 0, 443, SL_FRAG_NONE, 0, 0},
      {"ipv4_tcp_fin_continues",
       [] {
         return PacketBuilder()
             .ipv4("198.18.0.1", "198.19.0.1")
             .tcp(40000, 443, kFin | kAck)
             .build();
       },
       SL_PARSE_OK, 4, 6, 0, 443, SL_FRAG_NONE, 0, 0},
      {"ipv4_tcp_rst_continues",
       [] {
         return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").tcp(40000, 443, kRst).build();
       },
       SL_PARSE_OK, 4, 6, 0, 443, SL_FRAG_NONE, 0, 0},
      {"ipv4_tcp_syn_with_options",
       [] {
         return PacketBuilder()
             .ipv4("198.18.0.1", "198.19.0.1")
             .tcp(40000, 8080, kSyn, 7, 20)
             .build();
       },
       SL_PARSE_OK, 4, 6, 1, 8080, SL_FRAG_NONE, 0, 0},
      {"ipv4_options_then_udp",
       [] {
         return PacketBuilder()
             .ipv4("198.18.0.1", "198.19.0.1")
             .ipv4_options(12)
             .udp(5000, 53)
             .build();
       },
       SL_PARSE_OK, 4, 17, 1, 53, SL_FRAG_NONE, 0, 0},
      {"ipv4_max_options",
       [] {
         return PacketBuilder()
             .ipv4("198.18.0.1", "198.19.0.1")
             .ipv4_options(40)
             .tcp(1, 2, kSyn)
             .build();
       },
       SL_PARSE_OK, 4, 6, 1, 2, SL_FRAG_NONE, 0, 0},
      {"ipv4_dscp",
       [] { return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1", 46).udp(5000, 5004).build(); },
       SL_PARSE_OK, 4, 17, 1, 5004, SL_FRAG_NONE, 0, 46},
      {"ipv4_icmp_echo_request_starts",
       [] { return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").icmp(8).build(); }, SL_PARSE_OK,
       4, 1, 1, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_icmp_echo_reply_continues",
       [] { return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").icmp(0).build(); }, SL_PARSE_OK,
       4, 1, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_icmp_unreachable_continues",
       [] { return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").icmp(3).build(); }, SL_PARSE_OK,
       4, 1, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_gre_continues",
       [] { return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").l4_raw(47, 24).build(); },
       SL_PARSE_OK, 4, 47, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_first_fragment_udp_starts",
       [] {
         return PacketBuilder()
             .ipv4("198.18.0.1", "198.19.0.1")
             .fragment(0, true)
             .udp(5000, 53)
             .build();
       },
       SL_PARSE_OK, 4, 17, 1, 53, SL_FRAG_FIRST, 0, 0},
      {"ipv4_later_fragment_continues",
       [] {
         return PacketBuilder()
             .ipv4("198.18.0.1", "198.19.0.1")
             .fragment(185, false)
             .udp(5000, 53)
             .payload(40)
             .build();
       },
       SL_PARSE_OK, 4, 17, 0, 0, SL_FRAG_LATER, 0, 0},
      {"vlan_one_tag",
       [] {
         return PacketBuilder()
             .vlan(10)
             .ipv4("198.18.0.1", "198.19.0.1")
             .tcp(40000, 443, kSyn)
             .build();
       },
       SL_PARSE_OK, 4, 6, 1, 443, SL_FRAG_NONE, 1, 0},
      {"vlan_qinq",
       [] {
         return PacketBuilder()
             .vlan(100, 0x88A8)
             .vlan(10)
             .ipv6("2001:2::1", "2001:2:0:1::1")
             .udp(5000, 53)
             .build();
       },
       SL_PARSE_OK, 6, 17, 1, 53, SL_FRAG_NONE, 2, 0},
      {"vlan_qinq_0x9100",  // the pre-802.1ad QinQ type: a tag, not a non-IP frame
       [] {
         return PacketBuilder()
             .vlan(200, 0x9100)
             .vlan(20)
             .ipv4("198.18.0.1", "198.19.0.1")
             .tcp(40000, 443, kSyn)
             .build();
       },
       SL_PARSE_OK, 4, 6, 1, 443, SL_FRAG_NONE, 2, 0},
      {"vlan_0x9200_one_tag",
       [] {
         return PacketBuilder()
             .vlan(7, 0x9200)
             .ipv4("198.18.0.1", "198.19.0.1")
             .udp(5000, 53)
             .build();
       },
       SL_PARSE_OK, 4, 17, 1, 53, SL_FRAG_NONE, 1, 0},
      {"vlan_three_tags_0x9300_malformed",
       [] {
         return PacketBuilder()
             .vlan(1, 0x88A8)
             .vlan(2)
             .vlan(3, 0x9300)
             .ipv4("198.18.0.1", "198.19.0.1")
             .tcp(1, 2, kSyn)
             .build();
       },
       SL_PARSE_MALFORMED, 0, 0, 0, 0, SL_FRAG_NONE, 2, 0},
      {"vlan_three_tags_malformed",
       [] {
         return PacketBuilder()
             .vlan(1)
             .vlan(2)
             .vlan(3)
             .ipv4("198.18.0.1", "198.19.0.1")
             .tcp(1, 2, kSyn)
             .build();
       },
       SL_PARSE_MALFORMED, 0, 0, 0, 0, SL_FRAG_NONE, 2, 0},
      {"ipv6_tcp_syn",
       [] {
         return PacketBuilder().ipv6("2001:2::1", "2001:2:0:1::1").tcp(40000, 443, kSyn).build();
       },
       SL_PARSE_OK, 6, 6, 1, 443, SL_FRAG_NONE, 0, 0},
      {"ipv6_dscp",
       [] { return PacketBuilder().ipv6("2001:2::1", "2001:2:0:1::1", 34).udp(1, 2).build(); },
       SL_PARSE_OK, 6, 17, 1, 2, SL_FRAG_NONE, 0, 34},
      {"ipv6_hop_by_hop_dest_opts_then_tcp",
       [] {
         return PacketBuilder()
             .ipv6("2001:2::1", "2001:2::2")
             .ipv6_ext(0, 8)
             .ipv6_ext(60, 16)
             .tcp(40000, 443, kSyn)
             .build();
       },
       SL_PARSE_OK, 6, 6, 1, 443, SL_FRAG_NONE, 0, 0},
      {"ipv6_routing_then_udp",
       [] {
         return PacketBuilder().ipv6("2001:2::1", "2001:2::2").ipv6_ext(43, 24).udp(1, 53).build();
       },
       SL_PARSE_OK, 6, 17, 1, 53, SL_FRAG_NONE, 0, 0},
      {"ipv6_icmpv6_echo_request_starts",
       [] { return PacketBuilder().ipv6("2001:2::1", "2001:2::2").icmp(128).build(); }, SL_PARSE_OK,
       6, 58, 1, 0, SL_FRAG_NONE, 0, 0},
      // Neighbour discovery and MLD from the link itself (ND: hop limit
      // 255; MLD: hop limit 1, a link-local or unspecified source) are
      // IPv6's ARP: passed untouched, never charged. Routed here, the same
      // types are ordinary ICMPv6 packets, and no start.
      {"ipv6_neighbor_solicitation_passes_like_arp",
       [] {
         return PacketBuilder().ipv6("2001:2::1", "2001:2::2").hop_limit(255).icmp(135).build();
       },
       SL_PARSE_NON_IP, 6, 58, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_router_advertisement_passes_like_arp",
       [] { return PacketBuilder().ipv6("fe80::1", "ff02::1").hop_limit(255).icmp(134).build(); },
       SL_PARSE_NON_IP, 6, 58, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_mld_report_passes_like_arp",
       [] { return PacketBuilder().ipv6("fe80::1", "ff02::16").hop_limit(1).icmp(143).build(); },
       SL_PARSE_NON_IP, 6, 58, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_mld_report_from_unspecified_passes_like_arp",
       [] { return PacketBuilder().ipv6("::", "ff02::16").hop_limit(1).icmp(143).build(); },
       SL_PARSE_NON_IP, 6, 58, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_routed_neighbor_solicitation_is_ip",
       [] {
         return PacketBuilder().ipv6("2001:2::1", "2001:2::2").hop_limit(254).icmp(135).build();
       },
       SL_PARSE_OK, 6, 58, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_mld_query_from_a_global_source_is_ip",
       [] { return PacketBuilder().ipv6("2001:2::1", "ff02::1").hop_limit(1).icmp(130).build(); },
       SL_PARSE_OK, 6, 58, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_mld_report_with_hops_left_is_ip",
       [] { return PacketBuilder().ipv6("fe80::1", "ff02::16").hop_limit(50).icmp(143).build(); },
       SL_PARSE_OK, 6, 58, 0, 0, SL_FRAG_NONE, 0, 0},
      // The link's control plane (routing and redundancy protocols to a
      // group no router forwards; IGMP with TTL 1) came from the link
      // itself: it passes like ARP. The same protocols to a routable group
      // or address, and anything else to those groups (DNS to all hosts),
      // are IP.
      {"ipv4_ospf_hello_passes_like_arp",
       [] {
         return PacketBuilder().ipv4("198.18.0.1", "224.0.0.5").hop_limit(1).l4_raw(89, 44).build();
       },
       SL_PARSE_NON_IP, 4, 89, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_vrrp_advert_passes_like_arp",
       [] {
         return PacketBuilder()
             .vlan(30)
             .ipv4("198.18.0.2", "224.0.0.18")
             .hop_limit(255)
             .l4_raw(112, 20)
             .build();
       },
       SL_PARSE_NON_IP, 4, 112, 0, 0, SL_FRAG_NONE, 1, 0},
      {"ipv4_udp_to_the_control_block_passes_like_arp",  // RIPv2, 224.0.0.9
       [] { return PacketBuilder().ipv4("198.18.0.1", "224.0.0.9").udp(520, 520).build(); },
       SL_PARSE_NON_IP, 4, 17, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_igmp_report_ttl1_to_its_group_passes_like_arp",
       [] {
         return PacketBuilder().ipv4("198.18.0.1", "239.1.2.3").hop_limit(1).l4_raw(2, 8).build();
       },
       SL_PARSE_NON_IP, 4, 2, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_igmp_with_hops_left_is_ip",
       [] {
         return PacketBuilder().ipv4("198.18.0.1", "239.1.2.3").hop_limit(2).l4_raw(2, 8).build();
       },
       SL_PARSE_OK, 4, 2, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_igmp_ttl1_to_a_unicast_address_is_ip",
       [] {
         return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").hop_limit(1).l4_raw(2, 8).build();
       },
       SL_PARSE_OK, 4, 2, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_udp_to_a_routable_group_is_ip",  // 224.0.1.0 is past the control block
       [] { return PacketBuilder().ipv4("198.18.0.1", "224.0.1.1").udp(123, 123).build(); },
       SL_PARSE_OK, 4, 17, 1, 123, SL_FRAG_NONE, 0, 0},
      {"ipv4_dns_to_all_hosts_is_ip",  // any socket on port 53 would take it
       [] { return PacketBuilder().ipv4("198.18.0.1", "224.0.0.1").udp(5353, 53).build(); },
       SL_PARSE_OK, 4, 17, 1, 53, SL_FRAG_NONE, 0, 0},
      {"ipv4_tcp_to_the_control_block_is_ip",
       [] { return PacketBuilder().ipv4("198.18.0.1", "224.0.0.5").tcp(1, 179, kSyn).build(); },
       SL_PARSE_OK, 4, 6, 1, 179, SL_FRAG_NONE, 0, 0},
      {"ipv4_gre_to_the_control_block_is_ip",
       [] { return PacketBuilder().ipv4("198.18.0.1", "224.0.0.5").l4_raw(47, 8).build(); },
       SL_PARSE_OK, 4, 47, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_truncated_rip_is_malformed",
       [] {
         auto f = PacketBuilder().ipv4("198.18.0.1", "224.0.0.9").udp(520, 520).build();
         f.resize(14 + 20 + 4);  // half a UDP header
         f[14 + 2] = 0;
         f[14 + 3] = 24;  // the IP total length the frame holds
         f[14 + 10] = f[14 + 11] = 0;
         return f;
       },
       SL_PARSE_MALFORMED, 0, 0, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv4_malformed_to_the_control_block_is_malformed",
       [] {
         auto f = PacketBuilder().ipv4("198.18.0.1", "224.0.0.5").l4_raw(89, 44).build();
         f[14] = 0x44;  // IHL 16 bytes
         return f;
       },
       SL_PARSE_MALFORMED, 0, 0, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_ospfv3_hello_passes_like_arp",
       [] {
         return PacketBuilder().ipv6("fe80::1", "ff02::5").hop_limit(1).l4_raw(89, 40).build();
       },
       SL_PARSE_NON_IP, 6, 0, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_dhcpv6_to_relays_passes_like_arp",  // ff02::1:2, flag bits aside
       [] { return PacketBuilder().ipv6("fe80::1", "ff32::1:2").udp(546, 547).build(); },
       SL_PARSE_NON_IP, 6, 0, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_dns_to_all_nodes_is_ip",
       [] { return PacketBuilder().ipv6("fe80::1", "ff02::1").udp(5353, 53).build(); }, SL_PARSE_OK,
       6, 17, 1, 53, SL_FRAG_NONE, 0, 0},
      {"ipv6_echo_request_to_all_nodes_is_ip",
       [] { return PacketBuilder().ipv6("fe80::1", "ff02::1").icmp(128).build(); }, SL_PARSE_OK, 6,
       58, 1, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_vrrp3_after_a_hop_by_hop_header_passes_like_arp",
       [] {
         return PacketBuilder()
             .ipv6("fe80::1", "ff02::12")
             .hop_limit(255)
             .ipv6_ext(0, 8)
             .l4_raw(112, 20)
             .build();
       },
       SL_PARSE_NON_IP, 6, 112, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_udp_to_a_site_scope_group_is_ip",
       [] { return PacketBuilder().ipv6("2001:2::1", "ff05::1:3").udp(546, 547).build(); },
       SL_PARSE_OK, 6, 17, 1, 547, SL_FRAG_NONE, 0, 0},
      {"ipv6_echo_reply_is_ip",
       [] { return PacketBuilder().ipv6("2001:2::1", "2001:2::2").icmp(129).build(); }, SL_PARSE_OK,
       6, 58, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_first_fragment_tcp_syn",
       [] {
         return PacketBuilder()
             .ipv6("2001:2::1", "2001:2::2")
             .fragment(0, true)
             .tcp(40000, 443, kSyn)
             .build();
       },
       SL_PARSE_OK, 6, 6, 1, 443, SL_FRAG_FIRST, 0, 0},
      {"ipv6_later_fragment_continues",
       [] {
         return PacketBuilder()
             .ipv6("2001:2::1", "2001:2::2")
             .fragment(100, false)
             .udp(1, 53)
             .payload(32)
             .build();
       },
       SL_PARSE_OK, 6, 17, 0, 0, SL_FRAG_LATER, 0, 0},
      {"ipv6_no_next_header", [] { return PacketBuilder().ipv6("2001:2::1", "2001:2::2").build(); },
       SL_PARSE_OK, 6, 59, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_too_many_ext_headers_malformed",
       [] {
         PacketBuilder b;
         b.ipv6("2001:2::1", "2001:2::2");
         for (int i = 0; i < SL_MAX_IPV6_EXT + 1; i++) b.ipv6_ext(60, 8);
         return b.tcp(1, 2, kSyn).build();
       },
       SL_PARSE_MALFORMED, 6, 0, 0, 0, SL_FRAG_NONE, 0, 0},
      // RFC 8200: a hop-by-hop header only right after the IPv6 header,
      // one Fragment header at most (hosts drop anything else).
      {"ipv6_second_hop_by_hop_malformed",
       [] {
         return PacketBuilder()
             .ipv6("2001:2::1", "2001:2::2")
             .ipv6_ext(0, 8)
             .ipv6_ext(0, 8)
             .udp(1, 53)
             .build();
       },
       SL_PARSE_MALFORMED, 6, 0, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_hop_by_hop_after_another_header_malformed",
       [] {
         return PacketBuilder()
             .ipv6("2001:2::1", "2001:2::2")
             .ipv6_ext(60, 8)
             .ipv6_ext(0, 8)
             .udp(1, 53)
             .build();
       },
       SL_PARSE_MALFORMED, 6, 0, 0, 0, SL_FRAG_NONE, 0, 0},
      {"ipv6_second_fragment_header_malformed",
       [] {
         return PacketBuilder()
             .ipv6("2001:2::1", "2001:2::2")
             .ipv6_ext(44, 8)  // an atomic fragment's header (offset 0, no more)
             .fragment(0, true)
             .udp(1, 53)
             .build();
       },
       SL_PARSE_MALFORMED, 6, 0, 0, 0, SL_FRAG_NONE, 0, 0},
      {"arp_non_ip", [] { return PacketBuilder().non_ip(0x0806).build(); }, SL_PARSE_NON_IP, 0, 0,
       0, 0, SL_FRAG_NONE, 0, 0},
      {"lldp_non_ip", [] { return PacketBuilder().non_ip(0x88CC, 40).build(); }, SL_PARSE_NON_IP, 0,
       0, 0, 0, SL_FRAG_NONE, 0, 0},
      {"vlan_arp_non_ip", [] { return PacketBuilder().vlan(7).non_ip(0x0806).build(); },
       SL_PARSE_NON_IP, 0, 0, 0, 0, SL_FRAG_NONE, 1, 0},
  };
}

void PrintTo(const ParseCase& c, std::ostream* os) { *os << c.name; }

class ParseTable : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParseTable, Fields) {
  const ParseCase& c = GetParam();
  std::vector<uint8_t> f = c.frame();
  sl_meta m;
  ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), c.result);
  EXPECT_EQ(m.vlans, c.vlans);
  if (c.result != SL_PARSE_OK) return;
  EXPECT_EQ(m.family, c.family);
  EXPECT_EQ(m.l4_proto, c.l4_proto);
  EXPECT_EQ(m.is_start, c.is_start);
  EXPECT_EQ(m.dport, c.dport);
  EXPECT_EQ(m.frag, c.frag);
  EXPECT_EQ(m.dscp, c.dscp);
}

INSTANTIATE_TEST_SUITE_P(Model, ParseTable, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(Parse, AddressesAndOffsets) {
  auto f = PacketBuilder()
               .vlan(5)
               .ipv4("198.18.1.2", "198.19.3.4")
               .ipv4_options(8)
               .tcp(1234, 443, kSyn, 99)
               .build();
  sl_meta m;
  ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
  EXPECT_EQ(m.l3_off, 18);
  EXPECT_EQ(m.l4_off, 18 + 28);
  EXPECT_EQ(m.src_be[0], 198);
  EXPECT_EQ(m.src_be[3], 2);
  EXPECT_EQ(m.dst_be[2], 3);
  EXPECT_EQ(m.sport, 1234);
  EXPECT_EQ(m.tcp_seq, 99u);
}

// Every strict prefix of a valid frame that cuts into a header is malformed,
// never OK with garbage and never a read past the end.
TEST(Parse, EveryTruncationIsMalformed) {
  std::vector<std::vector<uint8_t>> frames = {
      PacketBuilder()
          .ipv4("198.18.0.1", "198.19.0.1")
          .ipv4_options(8)
          .tcp(1, 443, kSyn, 1, 12)
          .build(),
      PacketBuilder().vlan(3).vlan(4).ipv4("198.18.0.1", "198.19.0.1").udp(1, 53).build(),
      PacketBuilder()
          .ipv6("2001:2::1", "2001:2::2")
          .ipv6_ext(0, 8)
          .ipv6_ext(43, 16)
          .tcp(1, 443, kSyn)
          .build(),
      PacketBuilder().ipv6("2001:2::1", "2001:2::2").icmp(128).build(),
  };
  for (const auto& full : frames) {
    for (std::size_t len = 0; len < full.size(); len++) {
      std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(len));
      sl_meta m;
      EXPECT_EQ(sl_parse(cut.data(), cut.data() + cut.size(), &m), SL_PARSE_MALFORMED)
          << "truncated to " << len << " of " << full.size();
    }
  }
}

struct Corruption {
  std::string name;
  std::function<std::vector<uint8_t>()> frame;
};

void PrintTo(const Corruption& c, std::ostream* os) { *os << c.name; }

class MalformedTable : public ::testing::TestWithParam<Corruption> {};

TEST_P(MalformedTable, IsMalformed) {
  auto f = GetParam().frame();
  sl_meta m;
  EXPECT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_MALFORMED);
}

std::vector<uint8_t> v4_syn() {
  return PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").tcp(1, 443, kSyn).build();
}
std::vector<uint8_t> v6_udp() {
  return PacketBuilder().ipv6("2001:2::1", "2001:2::2").udp(1, 53).build();
}

INSTANTIATE_TEST_SUITE_P(
    Model, MalformedTable,
    ::testing::Values(
        Corruption{"ipv4_version_6_in_v4_ethertype",
                   [] {
                     auto f = v4_syn();
                     f[14] = 0x65;
                     return f;
                   }},
        Corruption{"ipv4_ihl_below_5",
                   [] {
                     auto f = v4_syn();
                     f[14] = 0x44;
                     return f;
                   }},
        Corruption{"ipv4_ihl_beyond_frame",
                   [] {
                     auto f = v4_syn();
                     f[14] = 0x4f;
                     f.resize(40);
                     return f;
                   }},
        Corruption{"ipv4_total_length_beyond_frame",
                   [] {
                     auto f = v4_syn();
                     f[16] = 0x05;
                     return f;
                   }},
        Corruption{"ipv4_total_length_below_header",
                   [] {
                     auto f = v4_syn();
                     f[16] = 0;
                     f[17] = 10;
                     return f;
                   }},
        Corruption{"ipv4_total_length_cuts_tcp",
                   [] {
                     auto f = v4_syn();
                     f[16] = 0;
                     f[17] = 30;
                     return f;
                   }},
        Corruption{"tcp_data_offset_below_5",
                   [] {
                     auto f = v4_syn();
                     f[14 + 20 + 12] = 0x40;
                     return f;
                   }},
        Corruption{"tcp_data_offset_beyond_frame",
                   [] {
                     auto f = v4_syn();
                     f[14 + 20 + 12] = 0xf0;
                     return f;
                   }},
        Corruption{"udp_length_below_header",
                   [] {
                     auto f = v6_udp();
                     f[14 + 40 + 5] = 4;
                     return f;
                   }},
        Corruption{"udp_length_beyond_payload",
                   [] {
                     auto f = v6_udp();
                     f[14 + 40 + 4] = 0x10;
                     return f;
                   }},
        Corruption{"ipv6_version_4_in_v6_ethertype",
                   [] {
                     auto f = v6_udp();
                     f[14] = 0x40;
                     return f;
                   }},
        Corruption{"ipv6_payload_beyond_frame",
                   [] {
                     auto f = v6_udp();
                     f[14 + 4] = 0x10;
                     return f;
                   }},
        Corruption{
            "ipv6_ext_length_beyond_payload",
            [] {
              auto f =
                  PacketBuilder().ipv6("2001:2::1", "2001:2::2").ipv6_ext(60, 8).udp(1, 53).build();
              f[14 + 40 + 1] = 20;
              return f;
            }},
        Corruption{"icmp_shorter_than_4_bytes",
                   [] {
                     auto f = PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").l4_raw(1, 2).build();
                     return f;
                   }},
        Corruption{"first_fragment_without_full_tcp_header",
                   [] {
                     auto f = PacketBuilder()
                                  .ipv4("198.18.0.1", "198.19.0.1")
                                  .fragment(0, true)
                                  .l4_raw(6, 8)
                                  .build();
                     return f;
                   }},
        Corruption{"runt_ethernet", [] { return std::vector<uint8_t>(13, 0); }}),
    [](const auto& info) { return info.param.name; });

TEST(Parse, EthernetPaddingIsNotPayload) {
  auto f = PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").tcp(1, 443, kSyn).build();
  f.resize(f.size() + 6, 0);  // padded to the Ethernet minimum
  sl_meta m;
  ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
  EXPECT_EQ(m.l3_len, 40);
}

}  // namespace
}  // namespace sluice
