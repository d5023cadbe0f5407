// SPDX-License-Identifier: Apache-2.0
// Builds Ethernet frames for tests: VLAN tags, IPv4 (options, fragments),
// IPv6 (extension headers, fragments), TCP, UDP, ICMP/ICMPv6, with correct
// lengths and checksums unless a test corrupts them on purpose afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::test {

inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kFin = 0x01;

class PacketBuilder {
 public:
  PacketBuilder& vlan(uint16_t vid, uint16_t tpid = 0x8100);
  PacketBuilder& non_ip(uint16_t ethertype, std::size_t payload = 28);
  PacketBuilder& ipv4(const std::string& src, const std::string& dst, uint8_t dscp = 0);
  PacketBuilder& ipv4_options(std::size_t bytes);  // multiple of 4, <= 40
  // IPv4 flags, or an IPv6 Fragment header after the ipv6_ext() calls before it
  PacketBuilder& fragment(uint16_t offset_8b, bool more);
  PacketBuilder& ipv6(const std::string& src, const std::string& dst, uint8_t dscp = 0);
  PacketBuilder& ipv6_ext(uint8_t type, std::size_t bytes = 8);  // 0, 43, 60 (multiple of 8)
  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq = 1000,
                     std::size_t option_bytes = 0);
  PacketBuilder& udp(uint16_t sport, uint16_t dport);
  PacketBuilder& icmp(uint8_t type);  // ICMPv6 under IPv6
  PacketBuilder& l4_raw(uint8_t proto, std::size_t bytes);
  PacketBuilder& payload(std::size_t bytes);
  // IPv6 hop limit or IPv4 TTL (default 64).
  PacketBuilder& hop_limit(uint8_t hops);
  // IP identification (IPv4: low 16 bits; IPv6: the fragment header's).
  PacketBuilder& ip_id(uint32_t id);
  // TCP acknowledgment number (default: 1 with the ACK flag, else 0).
  PacketBuilder& ack_number(uint32_t ack);
  // ICMP error body: the IP header and first 8 L4 bytes of `frame` (an
  // Ethernet frame without VLAN tags), as a router quotes what it drops.
  PacketBuilder& icmp_quote(const std::vector<uint8_t>& frame);

  std::vector<uint8_t> build() const;

 private:
  struct Ext {
    uint8_t type;
    std::size_t bytes;
  };
  std::vector<uint16_t> vlans_;
  std::vector<uint16_t> tpids_;
  uint16_t ethertype_ = 0x0800;
  int family_ = 0;
  uint8_t src_[16] = {};
  uint8_t dst_[16] = {};
  uint8_t dscp_ = 0;
  uint8_t hop_limit_ = 64;
  std::size_t ip_options_ = 0;
  bool fragmented_ = false;
  uint16_t frag_offset_ = 0;
  bool frag_more_ = false;
  std::size_t frag_at_ = 0;  // IPv6: the extension headers before the Fragment header
  std::vector<Ext> exts_;
  uint8_t proto_ = 59;
  uint16_t sport_ = 0;
  uint16_t dport_ = 0;
  uint8_t flags_ = 0;
  uint32_t seq_ = 0;
  uint32_t ack_ = 0;
  bool ack_set_ = false;
  std::size_t tcp_options_ = 0;
  uint8_t icmp_type_ = 0;
  std::size_t raw_l4_ = 0;
  bool raw_ = false;
  std::size_t payload_ = 0;
  std::size_t non_ip_payload_ = 0;
  uint32_t ip_id_ = 0;
  bool ip_id_set_ = false;
  std::vector<uint8_t> quote_;
};

// Internet checksum helpers for verifying rewritten frames.
uint16_t ones_complement_sum(const uint8_t* p, std::size_t len, uint32_t initial = 0);

}  // namespace sluice::test
