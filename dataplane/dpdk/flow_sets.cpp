// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/flow_sets.hpp"

#include <cstring>

#include "dataplane/common/keyed_hash.hpp"
#include "dataplane/common/set_shape.hpp"

namespace sluice::dpdk {
namespace {

uint32_t tag_of(uint64_t hash) { return static_cast<uint32_t>(hash >> 32) | 1; }

constexpr uint32_t kNoEntry = UINT32_MAX;  // a way never used yet

}  // namespace

FlowSets::FlowSets(std::size_t capacity)
    : mask_(sets_for(flow_partition_size(capacity), kFlowWays) - 1) {
  for (Partition& p : parts_) {
    Set empty{};
    for (uint32_t& e : empty.entry) e = kNoEntry;
    p.sets.assign(std::size_t{mask_} + 1, empty);
    p.pool.resize((std::size_t{mask_} + 1) * kFlowWays);
  }
}

uint32_t FlowSets::way_of(const Partition& p, const Set& s, uint32_t tag, const sl_flow_key& key) {
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

sl_flow* FlowSets::find(uint32_t parts, const sl_flow_key& key, uint64_t now_ns, FlowEvents& events,
                        uint64_t known) {
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
    s.tag[i] = 0;  // past its life: removed, as the reference does
    part.size--;
    events[p][SL_FLOW_EV_EXPIRED]++;
  }
  return nullptr;
}

bool FlowSets::put(uint32_t p, const sl_flow_key& key, const sl_flow& f, uint64_t now_ns,
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
  s.tag[v] = tag;
  return true;
}

}  // namespace sluice::dpdk
