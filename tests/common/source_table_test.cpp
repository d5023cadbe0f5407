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

#include "dataplane/common/source_table.hpp"
#include "dataplane/model/bucket.h"

namespace sluice {
namespace {

TEST(SourceTable, IsExactlyAnLru) {
  const sl_bucket_params params = sl_bucket_params_make(10, 7);  // a new entry holds 7 tokens
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
      sl_source_state* st = table.find_or_insert(key, params, 1);
      auto it = naive.find(id);
      if (it != naive.end()) {
        ASSERT_EQ(st->bucket.tokens_nt, it->second.second)
            << "capacity " << capacity << " op " << op;
        lru.erase(it->second.first);
        lru.push_front(id);
        it->second.first = lru.begin();
      } else {
        ASSERT_EQ(st->bucket.tokens_nt, params.cap_nt) << "a new source starts full";
        if (naive.size() == capacity) {
          naive.erase(lru.back());
          lru.pop_back();
          evictions++;
        }
        lru.push_front(id);
        naive[id] = {lru.begin(), 0};
        it = naive.find(id);
      }
      st->bucket.tokens_nt = ++mark;  // remembers which entry this is
      it->second.second = mark;
      ASSERT_EQ(table.size(), naive.size());
      ASSERT_EQ(table.evictions(), evictions);
    }
  }
}

}  // namespace
}  // namespace sluice
