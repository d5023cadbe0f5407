// SPDX-License-Identifier: Apache-2.0
#include "tests/support/packet_builder.hpp"

#include <algorithm>

#include <arpa/inet.h>

#include <stdexcept>

namespace sluice::test {
namespace {

void put16(std::vector<uint8_t>& b, std::size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

void put32(std::vector<uint8_t>& b, std::size_t at, uint32_t v) {
  put16(b, at, static_cast<uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<uint16_t>(v));
}

}  // namespace

uint16_t ones_complement_sum(const uint8_t* p, std::size_t len, uint32_t initial) {
  uint32_t sum = initial;
  for (std::size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

PacketBuilder& PacketBuilder::vlan(uint16_t vid, uint16_t tpid) {
  vlans_.push_back(vid);
  tpids_.push_back(tpid);
  return *this;
}

PacketBuilder& PacketBuilder::non_ip(uint16_t ethertype, std::size_t payload) {
  ethertype_ = ethertype;
  family_ = 0;
  non_ip_payload_ = payload;
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(const std::string& src, const std::string& dst, uint8_t dscp) {
  family_ = 4;
  ethertype_ = 0x0800;
  if (inet_pton(AF_INET, src.c_str(), src_) != 1 || inet_pton(AF_INET, dst.c_str(), dst_) != 1)
    throw std::invalid_argument("bad IPv4 address in test");
  dscp_ = dscp;
  return *this;
}

PacketBuilder& PacketBuilder::ipv4_options(std::size_t bytes) {
  ip_options_ = bytes;
  return *this;
}

PacketBuilder& PacketBuilder::fragment(uint16_t offset_8b, bool more) {
  fragmented_ = true;
  frag_at_ = exts_.size();
  frag_offset_ = offset_8b;
  frag_more_ = more;
  return *this;
}

PacketBuilder& PacketBuilder::ipv6(const std::string& src, const std::string& dst, uint8_t dscp) {
  family_ = 6;
  ethertype_ = 0x86DD;
  if (inet_pton(AF_INET6, src.c_str(), src_) != 1 || inet_pton(AF_INET6, dst.c_str(), dst_) != 1)
    throw std::invalid_argument("bad IPv6 address in test");
  dscp_ = dscp;
  return *this;
}

PacketBuilder& PacketBuilder::ipv6_ext(uint8_t type, std::size_t bytes) {
  exts_.push_back({type, bytes});
  return *this;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                                  std::size_t option_bytes) {
  proto_ = 6;
  sport_ = sport;
  dport_ = dport;
  flags_ = flags;
  seq_ = seq;
  tcp_options_ = option_bytes;
  return *this;
}

PacketBuilder& PacketBuilder::ack_number(uint32_t ack) {
  ack_ = ack;
  ack_set_ = true;
  return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
  proto_ = 17;
  sport_ = sport;
  dport_ = dport;
  return *this;
}

PacketBuilder& PacketBuilder::icmp(uint8_t type) {
  proto_ = family_ == 6 ? 58 : 1;
  icmp_type_ = type;
  return *this;
}

PacketBuilder& PacketBuilder::l4_raw(uint8_t proto, std::size_t bytes) {
  proto_ = proto;
  raw_l4_ = bytes;
  raw_ = true;
  return *this;
}

PacketBuilder& PacketBuilder::payload(std::size_t bytes) {
  payload_ = bytes;
  return *this;
}

PacketBuilder& PacketBuilder::hop_limit(uint8_t hops) {
  hop_limit_ = hops;
  return *this;
}

PacketBuilder& PacketBuilder::ip_id(uint32_t id) {
  ip_id_ = id;
  ip_id_set_ = true;
  return *this;
}

PacketBuilder& PacketBuilder::icmp_quote(const std::vector<uint8_t>& frame) {
  const std::size_t l3 = 14;
  // IPv4 routers quote the IP header and 8 bytes (RFC 792); IPv6 ones as
  // much as keeps the error within the minimum MTU, 1280 (RFC 4443).
  std::size_t n = std::min<std::size_t>(frame.size() - l3, 1280 - 48);
  if (frame.size() > l3 && (frame[l3] >> 4) == 4)
    n = std::min<std::size_t>(frame.size() - l3, (frame[l3] & 0x0fu) * 4u + 8);
  quote_.assign(frame.begin() + l3, frame.begin() + static_cast<std::ptrdiff_t>(l3 + n));
  return *this;
}

std::vector<uint8_t> PacketBuilder::build() const {
  std::vector<uint8_t> b(12, 0);
  // Locally administered MACs: 02:00:00:00:00:02 <- 02:00:00:00:00:01
  b[0] = 0x02;
  b[5] = 0x02;
  b[6] = 0x02;
  b[11] = 0x01;
  for (std::size_t i = 0; i < vlans_.size(); i++) {
    b.resize(b.size() + 4);
    put16(b, b.size() - 4, tpids_[i]);
    put16(b, b.size() - 2, vlans_[i]);
  }
  b.resize(b.size() + 2);
  put16(b, b.size() - 2, ethertype_);
  if (family_ == 0) {
    b.resize(b.size() + non_ip_payload_, 0xab);
    return b;
  }

  // L4 first, so the IP header knows its lengths.
  std::vector<uint8_t> l4;
  const bool later_fragment = fragmented_ && frag_offset_ != 0;
  if (later_fragment) {
    l4.assign(payload_ ? payload_ : 8, 0xcd);
  } else if (raw_) {
    l4.assign(raw_l4_ + payload_, 0x77);
  } else if (proto_ == 6) {
    l4.assign(20 + tcp_options_, 0);
    put16(l4, 0, sport_);
    put16(l4, 2, dport_);
    put32(l4, 4, seq_);
    put32(l4, 8, ack_set_ ? ack_ : (flags_ & kAck) ? 1 : 0);
    l4[12] = static_cast<uint8_t>(((20 + tcp_options_) / 4) << 4);
    l4[13] = flags_;
    put16(l4, 14, 64240);
    for (std::size_t i = 20; i < l4.size(); i++) l4[i] = 1;  // NOP options
    l4.resize(l4.size() + payload_, 0xee);
  } else if (proto_ == 17) {
    l4.assign(8 + (payload_ ? payload_ : 8), 0x5a);
    put16(l4, 0, sport_);
    put16(l4, 2, dport_);
    put16(l4, 4, static_cast<uint16_t>(l4.size()));
    put16(l4, 6, 0);
  } else if (proto_ == 1 || proto_ == 58) {
    l4.assign(8 + payload_, 0);
    l4[0] = icmp_type_;
    l4.insert(l4.begin() + 8, quote_.begin(), quote_.end());
  }

  // Upper-layer checksums with the pseudo header.
  auto l4_checksum = [&](std::size_t at) {
    uint32_t pseudo = 0;
    const std::size_t alen = family_ == 4 ? 4 : 16;
    pseudo += ones_complement_sum(src_, alen);
    pseudo += ones_complement_sum(dst_, alen);
    pseudo += proto_ + static_cast<uint32_t>(l4.size());
    if (family_ == 4 && proto_ == 1) pseudo = 0;  // ICMPv4 has no pseudo header
    put16(l4, at, static_cast<uint16_t>(~ones_complement_sum(l4.data(), l4.size(), pseudo)));
  };
  if (!fragmented_ && !raw_) {
    if (proto_ == 6) l4_checksum(16);
    if (proto_ == 17) l4_checksum(6);
    if (proto_ == 1 || proto_ == 58) l4_checksum(2);
  }

  const std::size_t l3 = b.size();
  if (family_ == 4) {
    const std::size_t ihl = 20 + ip_options_;
    b.resize(l3 + ihl, 0);
    b[l3] = static_cast<uint8_t>(0x40 | (ihl / 4));
    b[l3 + 1] = static_cast<uint8_t>(dscp_ << 2);
    put16(b, l3 + 2, static_cast<uint16_t>(ihl + l4.size()));
    put16(b, l3 + 4, ip_id_set_ ? static_cast<uint16_t>(ip_id_) : 0x1234);
    uint16_t frag =
        fragmented_ ? static_cast<uint16_t>(frag_offset_ | (frag_more_ ? 0x2000 : 0)) : 0x4000;
    put16(b, l3 + 6, frag);
    b[l3 + 8] = hop_limit_;
    b[l3 + 9] = proto_;
    for (int i = 0; i < 4; i++) {
      b[l3 + 12 + i] = src_[i];
      b[l3 + 16 + i] = dst_[i];
    }
    for (std::size_t i = 20; i < ihl; i++) b[l3 + i] = 1;  // NOP options
    put16(b, l3 + 10, static_cast<uint16_t>(~ones_complement_sum(&b[l3], ihl)));
  } else {
    std::vector<Ext> exts = exts_;
    if (fragmented_)
      exts.insert(exts.begin() + static_cast<std::ptrdiff_t>(std::min(frag_at_, exts.size())),
                  Ext{44, 8});
    std::size_t ext_len = 0;
    for (const Ext& e : exts) ext_len += e.bytes;
    b.resize(l3 + 40 + ext_len, 0);
    b[l3] = static_cast<uint8_t>(0x60 | (dscp_ >> 2));
    b[l3 + 1] = static_cast<uint8_t>((dscp_ & 3) << 6);
    put16(b, l3 + 4, static_cast<uint16_t>(ext_len + l4.size()));
    b[l3 + 6] = exts.empty() ? proto_ : exts[0].type;
    b[l3 + 7] = hop_limit_;
    for (int i = 0; i < 16; i++) {
      b[l3 + 8 + i] = src_[i];
      b[l3 + 24 + i] = dst_[i];
    }
    std::size_t at = l3 + 40;
    for (std::size_t i = 0; i < exts.size(); i++) {
      b[at] = i + 1 < exts.size() ? exts[i + 1].type : proto_;
      if (exts[i].type == 44) {
        put16(b, at + 2, static_cast<uint16_t>(frag_offset_ << 3 | (frag_more_ ? 1 : 0)));
        put32(b, at + 4, ip_id_set_ ? ip_id_ : 0xabcd);
      } else {
        b[at + 1] = static_cast<uint8_t>(exts[i].bytes / 8 - 1);
        if (exts[i].bytes >= 8) {
          b[at + 2] = 1;  // PadN option filling the header
          b[at + 3] = static_cast<uint8_t>(exts[i].bytes - 4);
        }
      }
      at += exts[i].bytes;
    }
  }
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

}  // namespace sluice::test
