// SPDX-License-Identifier: Apache-2.0
// The flow table of the reference model (the XDP program and the DPDK
// workers keep the same entries in sets of their own: bpf/flows.h,
// dataplane/dpdk/flow_sets.hpp): one bounded LRU per priority partition,
// all allocated at start, so that a flood of one class can only recycle
// flows of its own priority. What goes in and what it means is the model's
// (dataplane/model/flow.h); the helpers below are the one C++ driver of
// it, used by the reference and DPDK.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "dataplane/common/bounded_lru.hpp"
#include "dataplane/model/abi.h"
#include "dataplane/model/backend_signal.h"
#include "dataplane/model/flow.h"

namespace sluice {

using FlowEvents = __u64[SL_PRIORITIES][SL_FLOW_EV_COUNT];  // as in sl_counters

class FlowTable {
 public:
  // capacity: entries of all partitions together (flow_table_size).
  explicit FlowTable(std::size_t capacity);

  // The live entry of key in one of the partitions of parts (bit = priority),
  // or null. An expired entry found on the way is removed (counted expired).
  sl_flow* find(uint32_t parts, const sl_flow_key& key, uint64_t now_ns, FlowEvents& events);

  // Writes f for key in partition p, in place when the key is there (then
  // false: no new entry; sl_flow_rewrite: a SYN keeps an open flow open); a
  // full partition recycles its least recently used entry (counted evicted,
  // or expired when its life had ended). syn_of, when given: f is an admitted
  // SYN from the outside under that profile (sl_rt_syn_again).
  bool put(uint32_t p, const sl_flow_key& key, const sl_flow& f, uint64_t now_ns,
           FlowEvents& events, const sl_profile* syn_of = nullptr);

  // The table that holds key, for the helpers below (the DPDK workers'
  // sharded table returns a guard that finds the shard holding the key and
  // keeps that shard locked while it lives: dataplane/dpdk/flow_shards.hpp).
  FlowTable& holder(const sl_flow_key&) { return *this; }

  std::size_t size(uint32_t p) const { return parts_[p]->size(); }
  std::size_t partition_capacity() const { return parts_[0]->capacity(); }
  std::size_t capacity() const { return partition_capacity() * SL_PRIORITIES; }
  std::size_t memory_bytes() const;

 private:
  struct Hash {
    uint32_t operator()(const sl_flow_key& k) const;
  };
  using Partition = BoundedLru<sl_flow_key, sl_flow, Hash>;
  std::array<std::unique_ptr<Partition>, SL_PRIORITIES> parts_;
};

// Entries a partition holds for a total flow_table_size.
inline std::size_t flow_partition_size(uint64_t flow_table_size) {
  const uint64_t per = flow_table_size / SL_PRIORITIES;
  return per == 0 ? 1 : static_cast<std::size_t>(per);
}

// classify(const sl_meta&) -> class id, for the packet's own tables.
// Flows: FlowTable, or a table of several with the same holder(key).

// Whether a packet from the outside that starts no lookup is verified by a
// live flow (flow.h), refreshing that flow: sl_decide()'s flow_hit (0 where
// no flow state is kept, sl_flows_kept). m: as parsed; cls: its class. Flow
// events and the backend signal are counted in counters.
template <typename Flows, typename Classify>
int flow_verify(Flows& flows, const sl_profile& prof, const sl_meta& m, const uint8_t* frame,
                uint32_t len, uint32_t cls, Classify&& classify, uint64_t now_ns,
                sl_counters& counters) {
  if (!sl_flows_kept(&prof)) return 0;
  FlowEvents& events = counters.flow_events;
  sl_flow_key key;
  uint32_t parts = prof.classes[cls].flow_parts;
  switch (sl_flow_lookup_kind(&m)) {
    case SL_FLOW_LOOKUP_TCP:
      sl_flow_key_tcp(&key, &m);
      break;
    case SL_FLOW_LOOKUP_FRAG:
      sl_flow_key_frag(&key, &m);
      break;
    case SL_FLOW_LOOKUP_ICMP: {
      sl_meta inner;
      if (!sl_parse_icmp_inner(frame, frame + len, &m, &inner)) return 0;
      sl_flow_key_tcp(&key, &inner);
      parts = prof.classes[classify(inner)].flow_parts;
      auto&& table = flows.holder(key);
      sl_flow* f = table.find(parts, key, now_ns, events);
      // An ICMP error verifies (a few times per flow); it does not refresh.
      return f != nullptr ? sl_flow_icmp_hit(f, &prof) : 0;
    }
    default:
      return 0;
  }
  auto&& table = flows.holder(key);
  sl_flow* f = table.find(parts, key, now_ns, events);
  if (f == nullptr || !sl_flow_outside_verifies(f, &m, &prof)) return 0;
  const int hit = sl_flow_hit_metered(f, &prof, now_ns);
  if (hit == SL_FLOW_HIT_OVER)
    events[prof.classes[cls].priority & (SL_PRIORITIES - 1)][SL_FLOW_EV_OVER_RATE]++;
  sl_flow_touch(f, &m, &prof, now_ns);
  if (sl_rt_outside(f, &m, &prof, now_ns)) counters.backend.requests++;
  return hit;
}

// Writes what a decision asks of the flow table (sl_decision.flow_ops).
template <typename Flows, typename Classify>
void flow_apply_ops(Flows& flows, const sl_profile& prof, const sl_meta& m, const sl_decision& d,
                    Classify&& classify, uint64_t now_ns, sl_counters& counters) {
  if (d.flow_ops == 0) return;
  FlowEvents& events = counters.flow_events;
  const sl_class_params& cp = prof.classes[d.class_id];
  const uint32_t prio = cp.priority & (SL_PRIORITIES - 1);
  sl_flow_key key;
  sl_flow f;
  if (d.flow_ops & (SL_FLOW_OP_CREATE_TCP | SL_FLOW_OP_LEARN)) {
    const uint32_t op = d.flow_ops & SL_FLOW_OP_LEARN ? SL_FLOW_OP_LEARN : SL_FLOW_OP_CREATE_TCP;
    sl_flow_key_tcp(&key, &m);
    sl_flow_make(&f, op, &prof, now_ns);
    if (flows.holder(key).put(prio, key, f, now_ns, events,
                              op == SL_FLOW_OP_CREATE_TCP ? &prof : nullptr))
      events[prio][op == SL_FLOW_OP_LEARN ? SL_FLOW_EV_LEARNED : SL_FLOW_EV_CREATED]++;
  }
  if (d.flow_ops & SL_FLOW_OP_CREATE_FRAG) {
    sl_meta later;
    sl_meta_portless(&m, &later);
    const sl_class_params& lp = prof.classes[classify(later)];
    const uint32_t lprio = lp.priority & (SL_PRIORITIES - 1);
    if (!sl_frag_entry_kept(prio, lprio)) return;
    sl_flow_key_frag(&key, &m);
    sl_flow_make(&f, SL_FLOW_OP_CREATE_FRAG, &prof, now_ns);
    if (flows.holder(key).put(lprio, key, f, now_ns, events)) events[lprio][SL_FLOW_EV_CREATED]++;
  }
}

// A frame leaving through the inside interface (inline mode): a SYN it
// opens creates its flow, FIN/RST close one, it confirms learned flows, and
// (adaptive boundary) it ends its flow's backend sample.
// bs: the boundary state (learning window). Never changes the frame.
template <typename Flows, typename Classify>
void flow_inside(Flows& flows, const sl_profile& prof, const sl_boundary_state& bs,
                 const uint8_t* frame, uint32_t len, Classify&& classify, uint64_t now_ns,
                 sl_counters& counters) {
  FlowEvents& events = counters.flow_events;
  sl_meta m;
  if (sl_parse(frame, frame + len, &m) != SL_PARSE_OK) return;
  if (!sl_flow_inside_wants(&m, &prof, &bs, now_ns)) return;
  sl_meta r;  // as a packet of the same flow from the outside
  sl_meta_reverse(&m, &r);
  const sl_class_params& cp = prof.classes[classify(r)];
  sl_flow_key key;
  sl_flow_key_tcp(&key, &r);
  auto&& table = flows.holder(key);
  if (sl_flow_inside_opens(&m)) {
    const uint32_t prio = cp.priority & (SL_PRIORITIES - 1);
    sl_flow f;
    sl_flow_make_inside(&f, &prof, now_ns);
    if (table.put(prio, key, f, now_ns, events)) events[prio][SL_FLOW_EV_CREATED]++;
    return;
  }
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    if (!(cp.flow_parts & (1U << p))) continue;
    sl_flow* f = table.find(1U << p, key, now_ns, events);
    if (f == nullptr) continue;
    sl_rt_inside(f, &m, &prof, now_ns, &counters.backend);
    const int ev = sl_flow_touch_inside(f, &m, &prof, now_ns);
    if (ev >= 0) events[p][ev]++;
    return;
  }
}

}  // namespace sluice
