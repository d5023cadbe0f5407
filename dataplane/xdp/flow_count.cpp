// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/flow_count.hpp"

#include <bpf/bpf.h>

#include <algorithm>
#include <vector>

namespace sluice {

uint64_t flow_partition_entries(int fd) {
  if (fd <= 0) return 0;
  uint64_t total = 0;
  std::vector<sl_flow_key> keys(4096);
  std::vector<sl_flow> values(4096);
  sl_flow_key out_batch{};
  void* in = nullptr;
  bool first = true;
  for (;;) {
    __u32 count = static_cast<__u32>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int rc = bpf_map_lookup_batch(fd, first ? nullptr : in, &out_batch, keys.data(),
                                        values.data(), &count, &opts);
    total += count;
    if (rc != 0) break;  // ENOENT: the walk is done (any other error: a partial count)
    in = &out_batch;
    first = false;
  }
  return total;
}

void FlowCounts::refresh(const std::array<int, SL_PRIORITIES>& partitions,
                         const std::function<sl_counters()>& counters) {
  const auto now = std::chrono::steady_clock::now();
  if (counted.time_since_epoch().count() != 0 && now - counted < std::chrono::seconds(1)) return;
  const sl_counters before = counters();
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) entries[p] = flow_partition_entries(partitions[p]);
  const sl_counters after = counters();
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    const uint64_t made =
        before.flow_events[p][SL_FLOW_EV_CREATED] + before.flow_events[p][SL_FLOW_EV_LEARNED];
    const uint64_t gone = after.flow_events[p][SL_FLOW_EV_EXPIRED] + entries[p];
    evicted[p] = std::max(evicted[p], made > gone ? made - gone : 0);
  }
  counted = now;
}

}  // namespace sluice
