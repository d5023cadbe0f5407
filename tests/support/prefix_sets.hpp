// SPDX-License-Identifier: Apache-2.0
// Prefix lists and the addresses to probe them with, for the tests of the
// dataplanes' prefix tables (DPDK's rte_fib, XDP's prefix arrays) against
// LpmTable, the oracle.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "dataplane/common/profile.hpp"
#include "dataplane/model/abi.h"

namespace sluice::test {

inline LpmEntry prefix(uint8_t family, uint8_t len, const std::array<uint8_t, 16>& addr,
                       uint32_t mask) {
  LpmEntry e;
  e.family = family;
  e.len = len;
  e.addr_be = addr;
  e.class_mask = mask;
  return e;
}

// Every length of both families, nested and overlapping, the same prefix
// twice with two masks (one prefix with both), and a default route. Host
// bits are random (tables must ignore them).
inline std::vector<LpmEntry> every_length_prefixes() {
  std::mt19937_64 rng(42);
  std::vector<LpmEntry> entries;
  std::array<uint8_t, 16> a{};
  entries.push_back(prefix(4, 0, a, 1U << 9));
  entries.push_back(prefix(6, 0, a, 1U << 10));
  for (unsigned len = 1; len <= 128; len++) {
    for (int k = 0; k < 6; k++) {
      for (auto& b : a) b = static_cast<uint8_t>(rng());
      if (k % 2) a[0] = 198;  // nested under one another
      const uint32_t mask = 1U << (rng() % 8);
      if (len <= 32) entries.push_back(prefix(4, static_cast<uint8_t>(len), a, mask));
      entries.push_back(prefix(6, static_cast<uint8_t>(len), a, mask << 1));
    }
  }
  entries.push_back(entries[40]);
  entries.back().class_mask = 1U << 12;
  return entries;
}

// The benchmark's size (bench (b)): IPv4 /16 to /32 anywhere; IPv6 /40 to
// /64 under one /32, as allocations are, and some /128s.
inline std::vector<LpmEntry> hundred_thousand_prefixes() {
  std::mt19937_64 rng(1);
  std::vector<LpmEntry> entries;
  for (int i = 0; i < 100'000; i++) {
    std::array<uint8_t, 16> a{};
    for (auto& b : a) b = static_cast<uint8_t>(rng());
    const bool v6 = i % 4 == 0;
    uint8_t len = static_cast<uint8_t>(16 + rng() % 17);
    if (v6) {
      a[0] = 0x20, a[1] = 0x01, a[2] = 0x00, a[3] = 0x02;
      len = static_cast<uint8_t>(i % 50 == 0 ? 128 : 40 + rng() % 25);
    }
    entries.push_back(prefix(v6 ? 6 : 4, len, a, 1U << (rng() % 16)));
  }
  return entries;
}

// Addresses near the prefixes (inside, at their edges, just outside) and
// anywhere, so that every length and every miss is met; as a packet's
// source, and the same as its destination.
inline std::vector<sl_meta> prefix_probes(const std::vector<LpmEntry>& entries,
                                          std::mt19937_64& rng, size_t n) {
  std::vector<sl_meta> out;
  for (size_t i = 0; i < n; i++) {
    sl_meta m{};
    const LpmEntry& e = entries[rng() % entries.size()];
    m.family = rng() % 8 == 0 ? (e.family == 4 ? 6 : 4) : e.family;
    for (auto& b : m.src_be) b = static_cast<uint8_t>(rng());
    if (rng() % 4 != 0) {  // under the prefix, the rest random (or its first/last address)
      const unsigned len = e.len, edge = rng() % 3;
      for (unsigned b = 0; b < 16; b++) {
        for (unsigned bit = 0; bit < 8; bit++) {
          const unsigned at = 8 * b + bit;
          const uint8_t mbit = static_cast<uint8_t>(0x80 >> bit);
          uint8_t v = at < len ? e.addr_be[b] & mbit : (edge == 0 ? 0 : edge == 1 ? mbit : 0);
          if (at >= len && edge == 2) v = m.src_be[b] & mbit;
          m.src_be[b] = static_cast<uint8_t>((m.src_be[b] & ~mbit) | v);
        }
      }
      if (rng() % 5 == 0 && len > 0)
        m.src_be[(len - 1) / 8] ^= 0x80 >> ((len - 1) % 8);  // next door
    }
    std::memcpy(m.dst_be, m.src_be, 16);
    out.push_back(m);
  }
  return out;
}

}  // namespace sluice::test
