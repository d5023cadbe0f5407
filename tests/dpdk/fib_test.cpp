// SPDX-License-Identifier: Apache-2.0
// The DPDK dataplane's prefix tables (dataplane/dpdk/fib.hpp, rte_fib and
// rte_fib6) against the reference model's LpmTable, the oracle: the same
// class mask for every address, one at a time and in bursts.
#include "dataplane/dpdk/fib.hpp"

#include <gtest/gtest.h>

#include <random>

#include "dataplane/common/lpm.hpp"
#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/engine.hpp"
#include "tests/support/privileges.hpp"

namespace sluice {
namespace {

void start_eal() {
  std::string error;
  ASSERT_TRUE(dpdk::eal_start({"--no-huge", "--no-pci", "-m", "512", "--log-level=lib.eal:warning"},
                              1, &error))
      << error;
}

LpmEntry prefix(uint8_t family, uint8_t len, const std::array<uint8_t, 16>& addr, uint32_t mask) {
  LpmEntry e;
  e.family = family;
  e.len = len;
  e.addr_be = addr;
  e.class_mask = mask;
  return e;
}

// Addresses near the prefixes (inside, at their edges, just outside) and
// anywhere, so that every length and every miss is met.
std::vector<sl_meta> probes(const std::vector<LpmEntry>& entries, std::mt19937_64& rng, size_t n) {
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

void expect_same(const std::vector<LpmEntry>& entries, size_t n_probes) {
  std::string error;
  auto fib = dpdk::Fib::build(entries, &error);
  ASSERT_TRUE(fib) << error;
  const LpmTable oracle(entries);
  std::mt19937_64 rng(7);
  const std::vector<sl_meta> ms = probes(entries, rng, n_probes);
  size_t hits = 0, differ = 0;
  for (size_t i = 0; i < ms.size(); i += dpdk::kBurst) {
    const uint16_t n = static_cast<uint16_t>(std::min<size_t>(dpdk::kBurst, ms.size() - i));
    bool want[dpdk::kBurst];
    uint32_t got[dpdk::kBurst];
    for (uint16_t k = 0; k < n; k++) {
      want[k] = k % 7 != 3;  // some left alone
      got[k] = 0xDEADu;
    }
    fib->lookup_burst(&ms[i], want, n, i % 2 == 0, got);
    for (uint16_t k = 0; k < n; k++) {
      const sl_meta& m = ms[i + k];
      const uint32_t expect = oracle.lookup(m.family, m.src_be);
      hits += expect != 0;
      differ += fib->lookup(m.family, m.src_be) != expect;
      if (want[k]) {
        differ += got[k] != expect;
      } else {
        differ += got[k] != 0xDEADu;
      }
    }
  }
  EXPECT_EQ(differ, 0U);
  EXPECT_GT(hits, ms.size() / 2) << "the probes should mostly fall under a prefix";
}

TEST(DpdkFib, MatchesTheReferenceTablesOnEveryLength) {
  SLUICE_REQUIRE_ROOT();
  start_eal();
  // Every length of both families, nested and overlapping, the same
  // prefix twice with two masks (one prefix with both), and a default route.
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
  expect_same(entries, 200'000);
}

TEST(DpdkFib, MatchesTheReferenceTablesWithAHundredThousandPrefixes) {
  SLUICE_REQUIRE_ROOT();
  start_eal();
  // The benchmark's size (bench (b)): IPv4 /16 to /32 anywhere; IPv6 /40
  // to /64 under one /32, as allocations are, and some /128s.
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
  expect_same(entries, 100'000);
}

TEST(DpdkFib, NoPrefixesFindNothing) {
  SLUICE_REQUIRE_ROOT();
  start_eal();
  std::string error;
  auto fib = dpdk::Fib::build({}, &error);
  ASSERT_TRUE(fib) << error;
  const uint8_t addr[16] = {198, 18, 0, 1};
  EXPECT_EQ(fib->lookup(4, addr), 0U);
  EXPECT_EQ(fib->lookup(6, addr), 0U);
}

}  // namespace
}  // namespace sluice
