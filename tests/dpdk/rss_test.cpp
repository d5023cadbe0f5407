// SPDX-License-Identifier: Apache-2.0
// The DPDK ports' RSS key (port.hpp): a 16-bit pattern repeated, drawn from
// sluiced's secret seed (the same at a restart), so that a flood cannot be
// aimed at one worker's queue (and flow-table shard) by a published key;
// symmetric, so that a flow's two directions reach the same worker;
// spreading tuples evenly.
#include <gtest/gtest.h>
#include <rte_thash.h>

#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "dataplane/dpdk/port.hpp"

namespace sluice::dpdk {
namespace {

uint32_t rss(const std::vector<uint8_t>& key, uint32_t src, uint32_t dst, uint16_t sport,
             uint16_t dport) {
  uint32_t tuple[3] = {src, dst, static_cast<uint32_t>(sport) << 16 | dport};
  return rte_softrss(tuple, 3, key.data());
}

TEST(DpdkRss, AKeyOfItsSeedIsSymmetricSpreadsAndSecret) {
  std::set<uint16_t> drawn;
  for (uint64_t seed = 1; seed <= 16; seed++) {
    const uint16_t p = rss_pattern_for(seed * 0x12345);
    EXPECT_TRUE(rss_pattern_spreads(p)) << std::hex << p;
    EXPECT_EQ(rss_pattern_for(seed * 0x12345), p) << "a restart with the same seed: the same key";
    drawn.insert(p);
  }
  EXPECT_GE(drawn.size(), 12u) << "16 seeds' 16-bit patterns: nearly all different";
  for (int i = 0; i < 8; i++) {  // no seed: at random
    const uint16_t p = rss_pattern_for(0);
    EXPECT_TRUE(rss_pattern_spreads(p)) << std::hex << p;
    drawn.insert(p);
  }
  EXPECT_GE(drawn.size(), 18u);
  std::mt19937 rng(7);
  for (uint16_t pattern : drawn) {
    SCOPED_TRACE(testing::Message() << "pattern 0x" << std::hex << pattern);
    for (std::size_t size : {40U, 52U}) {
      const std::vector<uint8_t> key = rss_key_of(pattern, size);
      std::array<uint32_t, 4> per_queue{};
      constexpr int kTuples = 8000;
      for (int t = 0; t < kTuples; t++) {
        const uint32_t src = 0xc6120000U | (rng() & 0x1ffffU);  // 198.18.0.0/15
        const uint32_t dst = 0xc6120000U | (rng() & 0x1ffffU);
        const auto sport = static_cast<uint16_t>(rng()), dport = static_cast<uint16_t>(rng());
        const uint32_t h = rss(key, src, dst, sport, dport);
        ASSERT_EQ(h, rss(key, dst, src, dport, sport)) << "not symmetric";
        per_queue[h % 4]++;  // the 4 queues of a 4-worker reta, roughly
      }
      for (uint32_t n : per_queue) {
        EXPECT_GT(n, kTuples / 4 * 0.8);
        EXPECT_LT(n, kTuples / 4 * 1.2);
      }
    }
  }
  // Patterns of a short period hash to few values: never drawn.
  for (uint16_t p : {0x0000, 0xffff, 0xaaaa, 0x5555, 0xcccc, 0xf0f0, 0xff00, 0x0101})
    EXPECT_FALSE(rss_pattern_spreads(p)) << std::hex << p;
  EXPECT_TRUE(rss_pattern_spreads(0x6d5a));
}

}  // namespace
}  // namespace sluice::dpdk
