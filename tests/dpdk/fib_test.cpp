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
#include "tests/support/prefix_sets.hpp"
#include "tests/support/privileges.hpp"

namespace sluice {
namespace {

void start_eal() {
  std::string error;
  ASSERT_TRUE(dpdk::eal_start({"--no-huge", "--no-pci", "-m", "512", "--log-level=lib.eal:warning"},
                              1, &error))
      << error;
}

void expect_same(const std::vector<LpmEntry>& entries, size_t n_probes) {
  std::string error;
  auto fib = dpdk::Fib::build(entries, &error);
  ASSERT_TRUE(fib) << error;
  const LpmTable oracle(entries);
  std::mt19937_64 rng(7);
  const std::vector<sl_meta> ms = test::prefix_probes(entries, rng, n_probes);
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
  expect_same(test::every_length_prefixes(), 200'000);
}

TEST(DpdkFib, MatchesTheReferenceTablesWithAHundredThousandPrefixes) {
  SLUICE_REQUIRE_ROOT();
  start_eal();
  expect_same(test::hundred_thousand_prefixes(), 100'000);
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
