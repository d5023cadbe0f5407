// SPDX-License-Identifier: Apache-2.0
#include "dataplane/common/flow_table.hpp"

#include "dataplane/common/keyed_hash.hpp"

namespace sluice {

FlowTable::FlowTable(std::size_t capacity) {
  const std::size_t per = flow_partition_size(capacity);
  for (auto& p : parts_) p = std::make_unique<Partition>(per);
}

// Keyed (dataplane/common/keyed_hash.hpp): the addresses and ports are the
// sender's to choose.
uint32_t FlowTable::Hash::operator()(const sl_flow_key& k) const { return keyed_hash(k); }

sl_flow* FlowTable::find(uint32_t parts, const sl_flow_key& key, uint64_t now_ns,
                         FlowEvents& events) {
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    if (!(parts & (1U << p))) continue;
    sl_flow* f = parts_[p]->find(key);
    if (f == nullptr) continue;
    if (sl_flow_live(f, now_ns)) return f;
    parts_[p]->erase(key);
    events[p][SL_FLOW_EV_EXPIRED]++;
  }
  return nullptr;
}

bool FlowTable::put(uint32_t p, const sl_flow_key& key, const sl_flow& f, uint64_t now_ns,
                    FlowEvents& events, const sl_profile* syn_of) {
  bool inserted = false;
  sl_flow old{};
  const uint64_t before = parts_[p]->evictions();
  sl_flow* slot = parts_[p]->insert(key, &inserted, &old);
  if (parts_[p]->evictions() != before)
    events[p][sl_flow_live(&old, now_ns) ? SL_FLOW_EV_EVICTED : SL_FLOW_EV_EXPIRED]++;
  if (inserted) {
    *slot = f;
    return true;
  }
  sl_flow_rewrite(slot, &f, syn_of, now_ns);
  return false;
}

std::size_t FlowTable::memory_bytes() const {
  std::size_t total = 0;
  for (const auto& p : parts_) total += p->memory_bytes();
  return total;
}

}  // namespace sluice
