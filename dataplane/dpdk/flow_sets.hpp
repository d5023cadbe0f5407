// SPDX-License-Identifier: Apache-2.0
// A DPDK worker's flow table shard (flow_shards.hpp): the entries and
// events of the reference's FlowTable (dataplane/common/flow_table.hpp), on
// sets of kFlowWays ways per priority partition, as the XDP program keeps
// them (bpf/flows.h). A key's keyed hash picks its set and a 32-bit tag;
// a lookup reads the set (one cache line of tags and entry numbers) and the
// entry whose tag matches (key and flow in one cache line), where the exact
// LRU also wrote its neighbours' links on every hit (docs/performance.md:
// the largest part of an admitted SYN's cost).
//
// Below a full set it holds exactly what the reference holds: a key is
// found, rewritten in place or removed when found expired as there. A key
// new to a full set recycles the way that expires first (counted evicted,
// or expired when its life had ended), where the reference recycles its
// partition's least recently used entry once the partition is full. Sets
// are sized as XDP's (2-4 ways per entry of the partition's share), so few
// sets are full before the partition would be. Not thread-safe: one worker
// at a time, under its shard's lock.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "dataplane/common/flow_table.hpp"
#include "dataplane/common/keyed_hash.hpp"
#include "dataplane/model/abi.h"

namespace sluice::dpdk {

inline constexpr uint32_t kFlowWays = 8;  // bpf/shared_state.h: SL_FLOW_WAYS

class FlowSets {
 public:
  // capacity: the entries of all partitions together this shard is sized for.
  explicit FlowSets(std::size_t capacity);

  // FlowTable's contract (dataplane/common/flow_table.hpp); hash:
  // FlowSets::hash(key) when the caller has it, else 0.
  sl_flow* find(uint32_t parts, const sl_flow_key& key, uint64_t now_ns, FlowEvents& events,
                uint64_t hash = 0);
  bool put(uint32_t p, const sl_flow_key& key, const sl_flow& f, uint64_t now_ns,
           FlowEvents& events, const sl_profile* syn_of = nullptr, uint64_t hash = 0);

  // A worker's burst asks early for the set a later find or put of a key
  // of this hash in partition p reads. Never 0 (0: "not known").
  static uint64_t hash(const sl_flow_key& key) {
    const uint64_t h = keyed_hash64(key);
    return h != 0 ? h : 1;
  }
  void prefetch_set(uint32_t p, uint64_t hash) const {
    __builtin_prefetch(&parts_[p].sets[static_cast<uint32_t>(hash) & mask_]);
  }

  // Whether a find of key in parts may hit: a way of its set holds its tag.
  // Read without the shard's lock (the tags are written atomically), so
  // that a worker's miss does not take every other worker's lock: a write
  // landing meanwhile is one a locked find could as well have come before.
  bool may_hold(uint32_t parts, const sl_flow_key& key, uint64_t known = 0) const {
    const uint64_t hash = known != 0 ? known : FlowSets::hash(key);
    const uint32_t set = static_cast<uint32_t>(hash) & mask_, tag = tag_of(hash);
    for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
      if (!(parts & (1U << p))) continue;
      const Set& s = parts_[p].sets[set];
      for (uint32_t i = 0; i < kFlowWays; i++)
        if (__atomic_load_n(&s.tag[i], __ATOMIC_RELAXED) == tag) return true;
    }
    return false;
  }

  std::size_t size(uint32_t p) const { return parts_[p].size; }
  // Every entry held (live or past its life, not yet found so): visit(p,
  // key, flow) for each, partition by partition.
  template <typename Visit>
  void each(Visit&& visit) const {
    for (uint32_t p = 0; p < SL_PRIORITIES; p++)
      for (const Set& s : parts_[p].sets)
        for (uint32_t i = 0; i < kFlowWays; i++)
          if (s.tag[i] != 0)
            visit(p, parts_[p].pool[s.entry[i]].key, parts_[p].pool[s.entry[i]].flow);
  }
  // Ways: the most entries the shard holds.
  std::size_t capacity() const { return std::size_t{mask_ + 1} * kFlowWays * SL_PRIORITIES; }

 private:
  // A set: its ways' tags and the entries they hold, in one cache line. A
  // way gets an entry from the partition's pool the first time it is used
  // and keeps it: entries are packed in the order ways were first used, so
  // a table holding few flows touches few pages (as the LRU's nodes did).
  struct alignas(64) Set {
    uint32_t tag[kFlowWays];    // 0: the way is empty
    uint32_t entry[kFlowWays];  // its entry in the pool; UINT32_MAX: never used
  };
  struct alignas(64) Entry {
    sl_flow_key key;
    sl_flow flow;
  };
  static_assert(sizeof(Set) == 64 && sizeof(Entry) == 64, "one cache line each");
  struct Partition {
    std::vector<Set> sets;
    std::vector<Entry> pool;  // one per way, handed out in order
    uint32_t used = 0;        // entries handed out
    std::size_t size = 0;     // ways holding a key
  };

  static constexpr uint32_t kNoEntry = UINT32_MAX;  // a way never used yet
  static uint32_t tag_of(uint64_t hash) { return static_cast<uint32_t>(hash >> 32) | 1; }
  // The way of s holding key under tag, or kFlowWays.
  static uint32_t way_of(const Partition& p, const Set& s, uint32_t tag, const sl_flow_key& key);

  std::array<Partition, SL_PRIORITIES> parts_;
  uint32_t mask_;  // sets per partition, less one
};

// Defined here so that the worker's flattened burst loop (worker.cpp) takes
// them in rather than calling into another unit (dpdk_bench (a) +1.3%,
// docs/performance.md).
inline uint32_t FlowSets::way_of(const Partition& p, const Set& s, uint32_t tag,
                                 const sl_flow_key& key) {
  for (uint32_t i = 0; i < kFlowWays; i++) {
    if (s.tag[i] != tag) continue;
    const auto* a = reinterpret_cast<const uint64_t*>(&p.pool[s.entry[i]].key);
    const auto* b = reinterpret_cast<const uint64_t*>(&key);
    if (((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
         (a[5] ^ b[5])) == 0)
      return i;
  }
  return kFlowWays;
}

inline sl_flow* FlowSets::find(uint32_t parts, const sl_flow_key& key, uint64_t now_ns,
                               FlowEvents& events, uint64_t known) {
  const uint64_t hash = known != 0 ? known : FlowSets::hash(key);
  const uint32_t set = static_cast<uint32_t>(hash) & mask_, tag = tag_of(hash);
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    if (!(parts & (1U << p))) continue;
    Partition& part = parts_[p];
    Set& s = part.sets[set];
    const uint32_t i = way_of(part, s, tag, key);
    if (i == kFlowWays) continue;
    sl_flow& f = part.pool[s.entry[i]].flow;
    if (sl_flow_live(&f, now_ns)) return &f;
    // Past its life: removed, as the reference does.
    __atomic_store_n(&s.tag[i], 0, __ATOMIC_RELAXED);
    part.size--;
    events[p][SL_FLOW_EV_EXPIRED]++;
  }
  return nullptr;
}

inline bool FlowSets::put(uint32_t p, const sl_flow_key& key, const sl_flow& f, uint64_t now_ns,
                          FlowEvents& events, const sl_profile* syn_of, uint64_t known) {
  Partition& part = parts_[p];
  const uint64_t hash = known != 0 ? known : FlowSets::hash(key);
  Set& s = part.sets[static_cast<uint32_t>(hash) & mask_];
  const uint32_t tag = tag_of(hash);
  const uint32_t hit = way_of(part, s, tag, key);
  if (hit != kFlowWays) {  // there already (live or not): rewritten in place
    sl_flow_rewrite(&part.pool[s.entry[hit]].flow, &f, syn_of, now_ns);
    return false;
  }
  // An empty way (given an entry the first time), else the one that
  // expires first.
  uint32_t v = kFlowWays;
  for (uint32_t i = 0; i < kFlowWays && v == kFlowWays; i++)
    if (s.tag[i] == 0) v = i;
  if (v != kFlowWays) {
    if (s.entry[v] == kNoEntry) s.entry[v] = part.used++;
    part.size++;
  } else {
    v = 0;
    for (uint32_t i = 1; i < kFlowWays; i++)
      if (part.pool[s.entry[i]].flow.expires_ns < part.pool[s.entry[v]].flow.expires_ns) v = i;
    const sl_flow& old = part.pool[s.entry[v]].flow;
    events[p][sl_flow_live(&old, now_ns) ? SL_FLOW_EV_EVICTED : SL_FLOW_EV_EXPIRED]++;
  }
  Entry& e = part.pool[s.entry[v]];
  e.key = key;
  e.flow = f;
  __atomic_store_n(&s.tag[v], tag, __ATOMIC_RELAXED);  // may_hold reads it unlocked
  return true;
}

}  // namespace sluice::dpdk
