// SPDX-License-Identifier: Apache-2.0
// The budgets' bounds with two DPDK workers deciding at once: net_ring ports
// of two queues; once both workers poll, each worker's rx ring gets a whole
// batch of lookups at once, so they decide through their batches together.
// Each budget holds more than half of what is offered, so both workers take
// from it together for most of their batch. Budgets refill at 1 token/s: in
// the milliseconds this takes, each admits its burst and at most the token
// that came due. Root only.
#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/dpdk/dpdk_dataplane.hpp"
#include "dataplane/dpdk/eal.hpp"
#include "tests/dpdk/dpdk_test_env.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/privileges.hpp"
#include "tests/support/profile_from_toml.hpp"

namespace sluice::test {
namespace {

constexpr uint32_t kWorkers = 2;
constexpr uint32_t kPerWorker = 6000;  // lookups in each worker's rx ring

struct Outcome {
  uint64_t offered = 0, admitted = 0;
  double seconds = 0;  // from the start until every lookup was decided
};

// Starts two workers with `toml`, feeds kPerWorker UDP lookups into each rx
// queue of the outside port (from 198.18.1.<worker + 1>, or all from
// 198.18.1.1 with one_source) and waits until all are decided.
void run(const std::string& toml, bool one_source, Outcome* out) {
  DataplaneSettings s = dpdk_settings("", "");
  s.dpdk_args = {"--no-huge", "--no-pci", "-m", "512", "--log-level=lib.eal:warning"};
  s.dpdk_workers = kWorkers;
  s.dpdk_mbufs = 16383;  // the ports' descriptors and caches of two workers, and room
  std::string error;
  ASSERT_TRUE(dpdk::eal_start(s.dpdk_args, s.dpdk_workers, &error)) << error;
  rte_mempool* pool = rte_pktmbuf_pool_create("test_pkts", 2 * kPerWorker + 1023, 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  ASSERT_NE(pool, nullptr);
  rte_ring* rings[4][kWorkers];  // outside rx, outside tx, inside rx, inside tx
  for (int r = 0; r < 4; r++)
    for (uint32_t q = 0; q < kWorkers; q++) {
      const std::string name = "t_ring" + std::to_string(r) + "_" + std::to_string(q);
      rings[r][q] = rte_ring_create(name.c_str(), 16384, SOCKET_ID_ANY, 0);
      ASSERT_NE(rings[r][q], nullptr);
    }
  const int outside = rte_eth_from_rings("sl_test_out", rings[0], kWorkers, rings[1], kWorkers, 0);
  const int inside = rte_eth_from_rings("sl_test_in", rings[2], kWorkers, rings[3], kWorkers, 0);
  ASSERT_GE(outside, 0);
  ASSERT_GE(inside, 0);
  char name[RTE_ETH_NAME_MAX_LEN];
  ASSERT_EQ(rte_eth_dev_get_name_by_port(static_cast<uint16_t>(outside), name), 0);
  s.outside = name;
  ASSERT_EQ(rte_eth_dev_get_name_by_port(static_cast<uint16_t>(inside), name), 0);
  s.inside = name;

  std::vector<std::vector<void*>> mbufs(kWorkers);
  for (uint32_t q = 0; q < kWorkers; q++) {
    const std::vector<uint8_t> f =
        PacketBuilder()
            .ipv4("198.18.1." + std::to_string(one_source ? 1 : q + 1), "198.19.0.1")
            .udp(40000, 53)
            .build();
    for (uint32_t i = 0; i < kPerWorker; i++) {
      rte_mbuf* m = rte_pktmbuf_alloc(pool);
      ASSERT_NE(m, nullptr);
      std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
      mbufs[q].push_back(m);
    }
  }

  DpdkDataplane dp(s);
  ASSERT_TRUE(dp.start(profile_from_toml(toml), 1, &error)) << error;
  // Every worker polls before the lookups arrive, then each ring gets its
  // whole batch at once (microseconds apart): the workers decide together.
  ASSERT_TRUE(await([&] {
    for (uint64_t loops : dp.worker_loops())
      if (loops == 0) return false;
    return dp.worker_loops().size() == kWorkers;
  }));
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t q = 0; q < kWorkers; q++)
    ASSERT_EQ(rte_ring_enqueue_bulk(rings[0][q], mbufs[q].data(), kPerWorker, nullptr), kPerWorker);
  auto offered = [&dp] {
    uint64_t n = 0;
    for (const ClassStats& c : dp.stats().classes)
      for (const auto& v : c.lookups)
        for (uint64_t x : v) n += x;
    return n;
  };
  ASSERT_TRUE(await([&] { return offered() == kWorkers * kPerWorker; })) << describe(dp.stats());
  out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const DataplaneStats st = dp.stats();
  out->offered = offered();
  for (const ClassStats& c : st.classes)
    for (uint64_t x : c.lookups[SL_VERDICT_ADMITTED]) out->admitted += x;
  // Both workers decided their own ring's lookups.
  for (uint32_t q = 0; q < kWorkers; q++) EXPECT_EQ(rte_ring_count(rings[0][q]), 0u);
  dp.stop();
}

void expect_within(const Outcome& o, uint64_t burst, const char* what) {
  // Refill at 1/s: whole tokens that came due while it ran.
  const auto refill = static_cast<uint64_t>(std::ceil(o.seconds));
  EXPECT_EQ(o.offered, uint64_t{kWorkers} * kPerWorker);
  EXPECT_GE(o.admitted, burst) << what;
  EXPECT_LE(o.admitted, burst + refill) << what << ", " << o.seconds << " s";
  std::printf("%s: %u workers at once, admitted %llu (burst %llu) in %.3f s\n", what, kWorkers,
              static_cast<unsigned long long>(o.admitted), static_cast<unsigned long long>(burst),
              o.seconds);
}

TEST(DpdkWorkers, TwoAtOnceKeepTheBoundaryExact) {
  SLUICE_REQUIRE_ROOT();
  Outcome o;
  ASSERT_NO_FATAL_FAILURE(run(R"(
[boundary]
lookups_per_sec = 1
lookups_burst = 8000
lookups_reserve_pct = [0, 0, 0, 0, 0, 0, 0, 0]
[[class]]
name = "web"
on_shed = "drop"
)",
                              false, &o));
  expect_within(o, 8000, "boundary lookups");
}

TEST(DpdkWorkers, TwoAtOnceKeepAClassExact) {
  SLUICE_REQUIRE_ROOT();
  Outcome o;
  ASSERT_NO_FATAL_FAILURE(run(R"(
[[class]]
name = "web"
rate_per_sec = 1
burst = 7000
on_shed = "drop"
)",
                              false, &o));
  expect_within(o, 7000, "class");
}

TEST(DpdkWorkers, TwoAtOnceKeepOneSourceExact) {
  SLUICE_REQUIRE_ROOT();
  Outcome o;
  ASSERT_NO_FATAL_FAILURE(run(R"(
[[class]]
name = "web"
on_shed = "drop"
per_source = { rate_per_sec = 1, burst = 6500 }
)",
                              true, &o));
  expect_within(o, 6500, "one source on both workers");
}

}  // namespace
}  // namespace sluice::test
