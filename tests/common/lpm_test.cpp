// SPDX-License-Identifier: Apache-2.0
// The reference LPM table (dataplane/reference/lpm.*), used by replay and by
// the DPDK dataplane: every lookup equals a plain longest-prefix scan, over
// random nested and disjoint IPv4 prefixes of every length (/0 and /32
// included) and IPv6 prefixes, with addresses aimed at prefix edges.
#include <gtest/gtest.h>

#include <random>

#include "dataplane/common/lpm.hpp"

namespace sluice {
namespace {

uint32_t naive(const std::vector<LpmEntry>& entries, uint8_t family, const uint8_t* a) {
  int best = -1;
  uint32_t value = 0;
  for (const LpmEntry& e : entries) {
    if (e.family != family) continue;
    bool match = true;
    for (int bit = 0; bit < e.len && match; bit++)
      match = ((a[bit / 8] ^ e.addr_be[bit / 8]) & (0x80 >> (bit % 8))) == 0;
    if (!match) continue;
    if (e.len > best) {
      best = e.len;
      value = e.class_mask;
    } else if (e.len == best) {
      value |= e.class_mask;  // the same prefix twice: the table merges them
    }
  }
  return value;
}

LpmEntry entry(uint8_t family, const std::array<uint8_t, 16>& addr, uint8_t len, uint32_t mask) {
  LpmEntry e;
  e.family = family;
  e.len = len;
  e.class_mask = mask;
  for (int bit = 0; bit < 128; bit++)
    if (bit < len && (addr[bit / 8] & (0x80 >> (bit % 8))))
      e.addr_be[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
  return e;
}

TEST(Lpm, EqualsALongestPrefixScan) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 20; round++) {
    std::vector<LpmEntry> entries;
    const int n = 1 + static_cast<int>(rng() % 300);
    std::array<uint8_t, 16> base{};
    for (auto& b : base) b = static_cast<uint8_t>(rng());
    for (int i = 0; i < n; i++) {
      std::array<uint8_t, 16> a = base;  // near one base: prefixes nest often
      for (int k = 1 + static_cast<int>(rng() % 4); k < 16; k++)
        if (rng() % 3 == 0) a[k] = static_cast<uint8_t>(rng());
      const bool v6 = rng() % 4 == 0;
      const uint8_t len = static_cast<uint8_t>(rng() % ((v6 ? 128 : 32) + 1));
      const uint32_t mask = rng() % 8 == 0 ? UINT32_MAX : static_cast<uint32_t>(rng());
      entries.push_back(entry(v6 ? 6 : 4, a, len, mask));
      if (rng() % 10 == 0) entries.push_back(entries.back());  // duplicates merge
    }
    const LpmTable table(entries);
    for (int q = 0; q < 3000; q++) {
      std::array<uint8_t, 16> a{};
      if (q % 2 == 0) {
        const LpmEntry& e = entries[rng() % entries.size()];
        a = e.addr_be;  // the first address of a prefix...
        if (rng() % 2)  // ...or its last, or one past it
          for (int bit = e.len; bit < 128; bit++)
            a[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
        if (rng() % 3 == 0)
          for (int k = 15; k >= 0 && ++a[k] == 0; k--) {
          }
      } else {
        for (auto& b : a) b = static_cast<uint8_t>(rng());
      }
      for (uint8_t family : {4, 6})
        ASSERT_EQ(table.lookup(family, a.data()), naive(entries, family, a.data()))
            << "round " << round << " query " << q << " family " << int(family);
    }
  }
}

TEST(Lpm, EmptyAndEdges) {
  const LpmTable empty;
  const uint8_t zero[16] = {};
  const uint8_t ones[16] = {255, 255, 255, 255, 255, 255, 255, 255,
                            255, 255, 255, 255, 255, 255, 255, 255};
  EXPECT_EQ(empty.lookup(4, zero), 0u);
  EXPECT_EQ(empty.lookup(4, ones), 0u);
  const LpmTable all({entry(4, {}, 0, 1), entry(4, {255, 255, 255, 255}, 32, 2)});
  EXPECT_EQ(all.lookup(4, zero), 1u);
  EXPECT_EQ(all.lookup(4, ones), 2u);
}

}  // namespace
}  // namespace sluice
