// SPDX-License-Identifier: Apache-2.0
// Shed-action rewrites: the RST+ACK built from a SYN (IPv4 and IPv6, with
// options, extension headers and VLAN tags) and DSCP marking, byte by byte.
#include <gtest/gtest.h>

#include <vector>

#include "dataplane/model/parse.h"
#include "dataplane/model/rewrite.h"
#include "tests/support/packet_builder.hpp"

namespace sluice {
namespace {

using test::kSyn;
using test::ones_complement_sum;
using test::PacketBuilder;

uint16_t rd16(const std::vector<uint8_t>& f, std::size_t at) {
  return static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
}
uint32_t rd32(const std::vector<uint8_t>& f, std::size_t at) {
  return static_cast<uint32_t>(rd16(f, at)) << 16 | rd16(f, at + 2);
}

// Parses the RST and checks it answers the SYN.
void expect_reset_answers(const std::vector<uint8_t>& syn, std::vector<uint8_t> f) {
  sl_meta in;
  ASSERT_EQ(sl_parse(syn.data(), syn.data() + syn.size(), &in), SL_PARSE_OK);
  uint32_t len = sl_build_reset(f.data(), f.data() + f.size(), &in);
  ASSERT_GT(len, 0u);
  f.resize(len);
  // MACs swapped, VLAN tags kept.
  EXPECT_TRUE(std::equal(f.begin(), f.begin() + 6, syn.begin() + 6));
  EXPECT_TRUE(std::equal(f.begin() + 6, f.begin() + 12, syn.begin()));
  EXPECT_TRUE(std::equal(f.begin() + 12, f.begin() + in.l3_off, syn.begin() + 12));
  sl_meta out;
  ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &out), SL_PARSE_OK);
  EXPECT_EQ(out.family, in.family);
  EXPECT_EQ(out.l4_proto, 6);
  EXPECT_EQ(out.tcp_flags, 0x14);  // RST|ACK
  EXPECT_EQ(out.sport, in.dport);
  EXPECT_EQ(out.dport, in.sport);
  EXPECT_EQ(out.is_start, 0);
  EXPECT_TRUE(std::equal(out.src_be, out.src_be + 16, in.dst_be));
  EXPECT_TRUE(std::equal(out.dst_be, out.dst_be + 16, in.src_be));
  const std::size_t ip = out.l3_off;
  const std::size_t tcp = out.l4_off;
  EXPECT_EQ(rd32(f, tcp + 4), 0u);              // seq
  EXPECT_EQ(rd32(f, tcp + 8), in.tcp_seq + 1);  // ack = SYN seq + 1
  EXPECT_EQ(f.size() - tcp, 20u);               // no options, no payload
  uint32_t pseudo;
  if (out.family == SL_FAMILY_V4) {
    EXPECT_EQ(f.size() - ip, 40u);
    EXPECT_EQ(ones_complement_sum(&f[ip], 20), 0xffff) << "IPv4 header checksum";
    pseudo = ones_complement_sum(&f[ip + 12], 8);
  } else {
    EXPECT_EQ(rd16(f, ip + 4), 20);
    EXPECT_EQ(f[ip + 6], 6);  // extension headers dropped
    pseudo = ones_complement_sum(&f[ip + 8], 32);
  }
  pseudo += 6 + 20;
  EXPECT_EQ(ones_complement_sum(&f[tcp], 20, pseudo), 0xffff) << "TCP checksum";
}

TEST(Reset, Ipv4Syn) {
  auto syn =
      PacketBuilder().ipv4("198.18.10.1", "198.19.0.1").tcp(40001, 443, kSyn, 0xfffffffe).build();
  expect_reset_answers(syn, syn);
}

TEST(Reset, Ipv4SynWithIpAndTcpOptionsAndPayload) {
  auto syn = PacketBuilder()
                 .vlan(10)
                 .ipv4("198.18.10.1", "198.19.0.1")
                 .ipv4_options(12)
                 .tcp(40001, 8080, kSyn, 77, 20)
                 .payload(30)
                 .build();
  expect_reset_answers(syn, syn);
}

TEST(Reset, Ipv6SynWithExtensionHeadersQinQ) {
  auto syn = PacketBuilder()
                 .vlan(100, 0x88A8)
                 .vlan(10)
                 .ipv6("2001:2:0:10::5", "2001:2:0:1::1")
                 .ipv6_ext(0, 8)
                 .ipv6_ext(60, 16)
                 .tcp(50000, 443, kSyn, 123456, 12)
                 .build();
  expect_reset_answers(syn, syn);
}

TEST(Reset, RefusesNonSyn) {
  for (auto f : {PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").udp(1, 53).build(),
                 PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").tcp(1, 2, test::kAck).build(),
                 PacketBuilder()
                     .ipv4("198.18.0.1", "198.19.0.1")
                     .fragment(0, true)
                     .tcp(1, 2, kSyn)
                     .build()}) {
    sl_meta m;
    ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
    auto copy = f;
    EXPECT_EQ(sl_build_reset(copy.data(), copy.data() + copy.size(), &m), 0u);
    EXPECT_EQ(copy, f);
  }
}

TEST(Mark, Ipv4KeepsEcnAndChecksum) {
  auto f = PacketBuilder().ipv4("198.18.0.1", "198.19.0.1", 0).ipv4_options(4).udp(1, 53).build();
  f[15] |= 0x02;  // ECT(0)
  f[24] = f[25] = 0;
  uint16_t c = static_cast<uint16_t>(~ones_complement_sum(&f[14], 24));
  f[24] = static_cast<uint8_t>(c >> 8);
  f[25] = static_cast<uint8_t>(c);
  sl_meta m;
  ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
  sl_mark_dscp(f.data(), f.data() + f.size(), &m, 10);
  EXPECT_EQ(f[15], (10 << 2) | 0x02);
  EXPECT_EQ(ones_complement_sum(&f[14], 24), 0xffff);
  ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
  EXPECT_EQ(m.dscp, 10);
}

TEST(Mark, Ipv6TrafficClass) {
  auto f = PacketBuilder().vlan(3).ipv6("2001:2::1", "2001:2::2", 46).udp(1, 53).build();
  // ECN CE (traffic class low bits) and a flow label that must survive.
  f[18 + 1] |= 0x30;  // ECN = 0b11 sits in bits 5-4 of byte 1
  f[18 + 1] = static_cast<uint8_t>((f[18 + 1] & 0xf0) | 0x0a);
  f[18 + 2] = 0xbc;
  f[18 + 3] = 0xde;
  const std::vector<uint8_t> before = f;
  sl_meta m;
  ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
  sl_mark_dscp(f.data(), f.data() + f.size(), &m, 9);
  ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
  EXPECT_EQ(m.dscp, 9);
  EXPECT_EQ(f[18] >> 4, 6);                            // version untouched
  EXPECT_EQ(f[18 + 1] & 0x3f, before[18 + 1] & 0x3f);  // ECN + flow label high nibble
  EXPECT_EQ(f[18 + 2], 0xbc);
  EXPECT_EQ(f[18 + 3], 0xde);
  for (std::size_t i = 22; i < f.size(); i++) ASSERT_EQ(f[i], before[i]) << i;
}

}  // namespace
}  // namespace sluice
