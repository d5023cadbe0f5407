// SPDX-License-Identifier: Apache-2.0
// Cheap frame templates for model tests that push hundreds of thousands of
// packets: build once, patch the source address in place.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tests/support/packet_builder.hpp"

namespace sluice::test {

inline constexpr uint32_t kNet198_18 = 0xC6120000;  // 198.18.0.0, host order
inline constexpr std::size_t kIpv4SrcOffset = 14 + 12;
inline constexpr uint64_t kSecond = 1000000000ULL;

inline void set_src_v4(std::vector<uint8_t>& f, uint32_t src) {
  f[kIpv4SrcOffset] = static_cast<uint8_t>(src >> 24);
  f[kIpv4SrcOffset + 1] = static_cast<uint8_t>(src >> 16);
  f[kIpv4SrcOffset + 2] = static_cast<uint8_t>(src >> 8);
  f[kIpv4SrcOffset + 3] = static_cast<uint8_t>(src);
}

inline std::vector<uint8_t> syn_v4(uint32_t src, uint16_t dport = 443) {
  auto f = PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").tcp(40000, dport, kSyn).build();
  set_src_v4(f, src);
  return f;
}

// frame (a plain IPv4 TCP segment, syn_v4's) with only the ACK flag set: a
// continuation of the flow its SYN opened, or of no flow.
inline std::vector<uint8_t> as_ack(std::vector<uint8_t> frame) {
  frame[14 + 20 + 13] = kAck;  // TCP flags
  return frame;
}

inline std::vector<uint8_t> udp_v4(uint32_t src, uint16_t dport = 53) {
  auto f = PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").udp(40000, dport).build();
  set_src_v4(f, src);
  return f;
}

// Poisson arrivals: the gap to the next arrival at rate_per_sec, in ns.
inline uint64_t poisson_gap_ns(std::mt19937_64& rng, double rate_per_sec) {
  std::exponential_distribution<double> gap(rate_per_sec);
  return static_cast<uint64_t>(gap(rng) * 1e9) + 1;
}

}  // namespace sluice::test
