// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/flow_sets.hpp"

#include "dataplane/common/set_shape.hpp"

namespace sluice::dpdk {

FlowSets::FlowSets(std::size_t capacity)
    : mask_(sets_for(flow_partition_size(capacity), kFlowWays) - 1) {
  for (Partition& p : parts_) {
    Set empty{};
    for (uint32_t& e : empty.entry) e = kNoEntry;
    p.sets.assign(std::size_t{mask_} + 1, empty);
    p.pool.resize((std::size_t{mask_} + 1) * kFlowWays);
  }
}

}  // namespace sluice::dpdk
