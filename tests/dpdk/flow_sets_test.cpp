// SPDX-License-Identifier: Apache-2.0
// A DPDK worker's flow table shard in sets (dataplane/dpdk/flow_sets.hpp):
// below a full set it holds, finds, rewrites and expires exactly what the
// reference's exact LRU does; a full set recycles the way that expires
// first; the events account for every entry in a flood. No EAL: the table
// needs none.
#include "dataplane/dpdk/flow_sets.hpp"
#include "dataplane/dpdk/flow_shards.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <future>
#include <random>
#include <vector>

#include "dataplane/common/flow_table.hpp"
#include "dataplane/common/set_shape.hpp"

namespace sluice::dpdk {
namespace {

constexpr uint64_t kSec = 1'000'000'000ULL;
constexpr uint64_t kT0 = 1'700'000'000ULL * kSec;

// Key k: IPv4 or IPv6 (every other one), a TCP flow or a fragment's.
sl_flow_key key_of(uint32_t k) {
  sl_flow_key key{};
  key.family = k % 2 ? SL_FAMILY_V6 : SL_FAMILY_V4;
  key.outer_be[0] = 198;
  key.outer_be[1] = 18;
  std::memcpy(&key.outer_be[12], &k, sizeof(k));
  key.inner_be[0] = 198;
  key.inner_be[1] = 19;
  key.outer_port = static_cast<uint16_t>(40000 + k % 7);
  key.inner_port = 443;
  if (k % 5 == 0) {
    key.kind = SL_FLOW_KIND_FRAG;
    key.frag_id = k;
    key.proto = SL_IPPROTO_UDP;
  } else {
    key.kind = SL_FLOW_KIND_TCP;
    key.proto = SL_IPPROTO_TCP;
  }
  return key;
}

sl_flow flow_until(uint64_t expires_ns, uint8_t state = SL_FLOW_OPEN) {
  sl_flow f{};
  f.expires_ns = expires_ns;
  f.state = state;
  return f;
}

bool same(const sl_flow* a, const sl_flow* b) {
  if (a == nullptr || b == nullptr) return a == b;
  return std::memcmp(a, b, sizeof(*a)) == 0;
}

// Random puts and finds of 3,000 keys over every partition, with lives
// that end while they run: each answer, each event count and each
// partition's size as the reference's. The sets hold 16,384 ways a
// partition; no set fills (the test checks that nothing was evicted, or it
// would prove nothing about the order).
TEST(DpdkFlowSets, BelowAFullSetItHoldsWhatTheReferenceHolds) {
  constexpr std::size_t kCapacity = 65536;
  FlowTable reference(kCapacity);
  FlowSets sets(kCapacity);
  FlowEvents want{}, got{};
  std::mt19937_64 rng(11);
  uint64_t now = kT0;
  uint64_t hits = 0, expired = 0, rewrites = 0;
  for (int op = 0; op < 60000; op++) {
    now += rng() % (kSec / 1000);  // up to 1 ms a step: 30 s in all
    const sl_flow_key key = key_of(static_cast<uint32_t>(rng() % 3000));
    const uint64_t hash = rng() % 2 ? FlowSets::hash(key) : 0;  // known or not
    if (rng() % 3 == 0) {
      const uint32_t p = static_cast<uint32_t>(rng() % SL_PRIORITIES);
      const sl_flow f = flow_until(now + (1 + rng() % 4000) * kSec / 1000,
                                   rng() % 2 ? SL_FLOW_SYN : SL_FLOW_OPEN);
      const bool a = reference.put(p, key, f, now, want);
      const bool b = sets.put(p, key, f, now, got, nullptr, hash);
      ASSERT_EQ(a, b) << "put " << op;
      rewrites += !a;
    } else {
      const uint32_t parts = static_cast<uint32_t>(rng() % 255) + 1;
      const sl_flow* a = reference.find(parts, key, now, want);
      const sl_flow* b = sets.find(parts, key, now, got, hash);
      ASSERT_TRUE(same(a, b)) << "find " << op;
      hits += a != nullptr;
    }
    ASSERT_EQ(std::memcmp(want, got, sizeof(want)), 0) << "events after op " << op;
  }
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    EXPECT_EQ(sets.size(p), reference.size(p)) << "priority " << p;
    EXPECT_EQ(got[p][SL_FLOW_EV_EVICTED], 0u) << "a set filled: the test proves less";
    expired += got[p][SL_FLOW_EV_EXPIRED];
  }
  EXPECT_GT(hits, 1000u) << "and finds live flows";
  EXPECT_GT(expired, 100u) << "and removes ones past their life";
  EXPECT_GT(rewrites, 1000u) << "and rewrites ones already there";
}

// Nine keys of one set (found by their hash, which is keyed per process):
// the ninth takes the way that expires first, counted evicted while it
// lives and expired once its life has ended; the other eight stay.
TEST(DpdkFlowSets, AFullSetRecyclesTheWayThatExpiresFirst) {
  constexpr std::size_t kCapacity = 8192;
  FlowSets sets(kCapacity);
  const uint64_t n_sets = sets_for(flow_partition_size(kCapacity), kFlowWays);
  std::vector<sl_flow_key> one_set;
  for (uint32_t k = 0; one_set.size() < 2 * kFlowWays; k++) {
    const sl_flow_key key = key_of(k);
    if ((FlowSets::hash(key) & (n_sets - 1)) == 0) one_set.push_back(key);
  }
  FlowEvents ev{};
  // Lives of 10 s, 20 s, ... except way 3's, which ends first (5 s).
  for (uint32_t i = 0; i < kFlowWays; i++)
    ASSERT_TRUE(
        sets.put(2, one_set[i], flow_until(kT0 + (i == 3 ? 5 : 10 * (i + 1)) * kSec), kT0, ev));
  EXPECT_EQ(sets.size(2), kFlowWays);
  ASSERT_TRUE(sets.put(2, one_set[8], flow_until(kT0 + 100 * kSec), kT0 + kSec, ev));
  EXPECT_EQ(ev[2][SL_FLOW_EV_EVICTED], 1u);
  EXPECT_EQ(ev[2][SL_FLOW_EV_EXPIRED], 0u);
  EXPECT_EQ(sets.size(2), kFlowWays);
  EXPECT_EQ(sets.find(1U << 2, one_set[3], kT0 + kSec, ev), nullptr) << "recycled";
  for (uint32_t i = 0; i <= kFlowWays; i++)
    if (i != 3) EXPECT_NE(sets.find(1U << 2, one_set[i], kT0 + kSec, ev), nullptr) << i;
  // At 15 s the way of 10 s (way 0) has ended: the tenth key takes it, counted expired.
  ASSERT_TRUE(sets.put(2, one_set[9], flow_until(kT0 + 100 * kSec), kT0 + 15 * kSec, ev));
  EXPECT_EQ(ev[2][SL_FLOW_EV_EVICTED], 1u);
  EXPECT_EQ(ev[2][SL_FLOW_EV_EXPIRED], 1u);
  EXPECT_EQ(sets.find(1U << 2, one_set[0], kT0 + 15 * kSec, ev), nullptr);
  EXPECT_NE(sets.find(1U << 2, one_set[9], kT0 + 15 * kSec, ev), nullptr);
  // Another partition's set of the same index is its own.
  EXPECT_EQ(sets.find(1U << 3, one_set[9], kT0 + 15 * kSec, ev), nullptr);
}

// A flood of new flows, five times the ways: every entry created is held,
// or counted evicted; the sets fill before they recycle; what is held is
// found.
TEST(DpdkFlowSets, AFloodRecyclesWithinItsWaysAndCountsEveryEntry) {
  constexpr std::size_t kCapacity = 8192;
  FlowSets sets(kCapacity);
  const uint64_t ways = sets.capacity() / SL_PRIORITIES;
  FlowEvents ev{};
  uint64_t created = 0;
  const uint32_t n = static_cast<uint32_t>(5 * ways);
  for (uint32_t k = 0; k < n; k++)
    created += sets.put(0, key_of(k), flow_until(kT0 + (100 + k) * kSec), kT0, ev);
  EXPECT_EQ(created, n);
  EXPECT_EQ(created - ev[0][SL_FLOW_EV_EVICTED] - ev[0][SL_FLOW_EV_EXPIRED], sets.size(0));
  EXPECT_EQ(sets.size(0), ways) << "every way holds a flow";
  uint64_t found = 0;
  for (uint32_t k = 0; k < n; k++) found += sets.find(1U, key_of(k), kT0, ev) != nullptr;
  EXPECT_EQ(found, ways);
  // The latest of each set stay: the last key in is always found.
  EXPECT_NE(sets.find(1U, key_of(n - 1), kT0, ev), nullptr);
}

// Two workers' shards: a lookup that misses takes no other worker's lock.
// Worker 0 holds its shard (a guard keeps the lock of its last write while
// it lives); worker 1's misses return at once, and its lookup of worker
// 0's flow finds it once worker 0 lets go. Before, every miss waited on
// worker 0's lock (and under a flood of ACKs of no flow two workers
// decided a third of what one did).
TEST(DpdkFlowShards, AMissTakesNoOtherWorkersLock) {
  FlowShards table(8192, 2);
  FlowEvents ev{};
  std::future<std::pair<uint32_t, bool>> other;
  {
    FlowShards::Guard w0 = table.of(0).holder(key_of(1));
    ASSERT_TRUE(w0.put(3, key_of(1), flow_until(kT0 + 100 * kSec), kT0, ev));
    other = std::async(std::launch::async, [&table] {
      FlowEvents mine{};
      uint32_t misses = 0;
      for (uint32_t k = 2; k < 1000; k++) {
        if (k % 5 == 0) continue;  // fragments' keys aside: TCP flows only
        FlowShards::Guard w1 = table.of(1).holder(key_of(k));
        misses += w1.find(1U << 3, key_of(k), kT0, mine) == nullptr;
      }
      return std::make_pair(misses, true);
    });
    ASSERT_EQ(other.wait_for(std::chrono::seconds(5)), std::future_status::ready)
        << "a miss waited on worker 0's lock";
  }
  EXPECT_EQ(other.get().first, 998u - 199u);
  FlowShards::Guard w1 = table.of(1).holder(key_of(1));
  EXPECT_NE(w1.find(1U << 3, key_of(1), kT0, ev), nullptr);
}

}  // namespace
}  // namespace sluice::dpdk
