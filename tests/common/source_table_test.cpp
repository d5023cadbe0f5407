// SPDX-License-Identifier: Apache-2.0
// The per-source table (dataplane/reference/source_table.*), shared by the
// reference model and the DPDK dataplane: exactly a least-recently-used
// cache of its capacity, checked step by step against a plain list-based
// LRU over random keys (many collisions and evictions, small and odd
// capacities).
#include <gtest/gtest.h>

#include <list>
#include <map>
#include <random>
#include <set>
#include <vector>

#include <arpa/inet.h>

#include "dataplane/common/source_table.hpp"
#include "dataplane/model/bucket.h"
#include "dataplane/model/gcra.h"
#include "dataplane/model/sticky.h"

namespace sluice {
namespace {

TEST(SourceTable, IsExactlyAnLru) {
  std::mt19937_64 rng(11);
  for (std::size_t capacity : {1u, 2u, 3u, 17u, 64u, 1000u}) {
    SourceTable table(capacity);
    std::list<uint32_t> lru;  // front = most recent
    std::map<uint32_t, std::pair<std::list<uint32_t>::iterator, uint64_t>> naive;  // key -> mark
    uint64_t evictions = 0, mark = 1000;
    const uint32_t universe = static_cast<uint32_t>(capacity * 3 + 5);
    for (int op = 0; op < 200000; op++) {
      const uint32_t id = static_cast<uint32_t>(rng() % universe);
      sl_source_key key{};
      std::memcpy(key.addr_be, &id, sizeof(id));
      key.family = SL_FAMILY_V4;
      sl_source_state* st = table.find_or_insert(key);
      auto it = naive.find(id);
      if (it != naive.end()) {
        ASSERT_EQ(st->tat_u, it->second.second) << "capacity " << capacity << " op " << op;
        lru.erase(it->second.first);
        lru.push_front(id);
        it->second.first = lru.begin();
      } else {
        ASSERT_EQ(st->tat_u, SL_GCRA_FULL) << "a new source starts full";
        if (naive.size() == capacity) {
          naive.erase(lru.back());
          lru.pop_back();
          evictions++;
        }
        lru.push_front(id);
        naive[id] = {lru.begin(), 0};
        it = naive.find(id);
      }
      st->tat_u = ++mark;  // remembers which entry this is
      it->second.second = mark;
      ASSERT_EQ(table.size(), naive.size());
      ASSERT_EQ(table.evictions(), evictions);
    }
  }
}

// Spoofed sources are the sender's to pick: sources chosen offline to share
// one probe run of a fixed hash (here the one the table had, a public salt)
// spread over the table's slots, because its hash is keyed per process
// (dataplane/common/keyed_hash.hpp).
TEST(SourceTable, SourcesPickedToCollideUnderAFixedHashSpreadOut) {
  const uint32_t mask = 2047;  // the slots of a 1024-entry table
  std::vector<sl_source_key> picked;
  for (uint32_t i = 0; picked.size() < 64 && i < (1u << 22); i++) {
    sl_source_key key{};
    const uint8_t prefix[] = {0x20, 0x01, 0x00, 0x02};  // 2001:2::/48
    std::memcpy(key.addr_be, prefix, sizeof(prefix));
    const uint32_t low = htonl(i);
    std::memcpy(key.addr_be + 12, &low, sizeof(low));
    key.family = SL_FAMILY_V6;
    key.prefix_len = 128;
    if ((sl_key_hash(&key, 0x51ce) & mask) == 7) picked.push_back(key);
  }
  ASSERT_EQ(picked.size(), 64u);
  std::set<uint32_t> slots;
  for (const sl_source_key& key : picked) slots.insert(SourceTable::Hash{}(key)&mask);
  // 64 keys in 2048 slots land in ~63 distinct ones; a fixed hash in 1.
  EXPECT_GE(slots.size(), 48u);
}

}  // namespace
}  // namespace sluice
