// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/flow_count.hpp"

namespace sluice {

std::array<uint64_t, SL_PRIORITIES> flow_entries(const sl_flow_set* sets,
                                                 uint32_t sets_per_partition) {
  std::array<uint64_t, SL_PRIORITIES> entries{};
  if (sets == nullptr) return entries;
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    const sl_flow_set* part = sets + uint64_t{p} * sets_per_partition;
    uint64_t n = 0;
    for (uint32_t s = 0; s < sets_per_partition; s++)
      for (const sl_flow_way& w : part[s].way)
        n += __atomic_load_n(&w.flow.expires_ns, __ATOMIC_RELAXED) != 0;
    entries[p] = n;
  }
  return entries;
}

std::array<uint64_t, SL_PRIORITIES> FlowEntryCount::count(const sl_flow_set* sets,
                                                          uint32_t sets_per_partition) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (counted_.time_since_epoch().count() == 0 || now - counted_ >= std::chrono::seconds(1)) {
    entries_ = flow_entries(sets, sets_per_partition);
    counted_ = now;
  }
  return entries_;
}

}  // namespace sluice
