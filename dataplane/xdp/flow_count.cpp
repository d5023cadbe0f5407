// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/flow_count.hpp"

#include <bpf/bpf.h>

#include <algorithm>
#include <vector>

#include "dataplane/model/flow.h"

namespace sluice {

PartitionCount flow_partition_count(int fd, uint64_t now_ns) {
  PartitionCount c;
  if (fd <= 0) return c;
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
    c.entries += count;
    for (__u32 i = 0; i < count && i < values.size(); i++) {
      if (!sl_flow_live(&values[i], now_ns)) {
        c.dead++;
        continue;
      }
      const uint64_t left = (values[i].expires_ns - now_ns) / SL_NS_PER_SEC;
      c.life_left[std::min<uint64_t>(left, kLifeBins - 1)]++;
    }
    if (rc != 0) break;  // ENOENT: the walk is done (any other error: a partial count)
    in = &out_batch;
    first = false;
  }
  return c;
}

FlowCounts FlowCounter::refresh(const std::array<int, SL_PRIORITIES>& partitions,
                                const std::function<sl_counters()>& counters, uint64_t now_ns) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (counted_.time_since_epoch().count() != 0 && now - counted_ < std::chrono::seconds(1))
    return counts_;
  const sl_counters before = counters();
  std::array<PartitionCount, SL_PRIORITIES> found{};
  for (uint32_t p = 0; p < SL_PRIORITIES; p++)
    found[p] = flow_partition_count(partitions[p], now_ns);
  const sl_counters after = counters();
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    counts_.entries[p] = found[p].entries;
    const uint64_t made =
        before.flow_events[p][SL_FLOW_EV_CREATED] + before.flow_events[p][SL_FLOW_EV_LEARNED];
    const uint64_t expired = after.flow_events[p][SL_FLOW_EV_EXPIRED];
    const uint64_t gone = expired + found[p].entries;
    const uint64_t recycled = made > gone ? made - gone : 0;
    // The entries of the last count dead by now, which the LRU could have
    // recycled since: dead then, or whose life (whole seconds left, rounded
    // down, so never counted dead early) has run out since; less those a
    // packet found and removed (or, entries that died since: then fewer
    // than true, and the evictions a little high).
    uint64_t dead = last_[p].dead;
    const uint64_t passed = now_ns > last_ns_ ? (now_ns - last_ns_) / SL_NS_PER_SEC : 0;
    for (uint64_t b = 0; b < passed && b + 1 < kLifeBins; b++) dead += last_[p].life_left[b];
    const uint64_t removed = expired - std::min(expired, expired_[p]);
    dead -= std::min(dead, removed);
    if (recycled > recycled_[p]) {
      const uint64_t since = recycled - recycled_[p];
      counts_.evicted[p] += since - std::min(since, dead);
      recycled_[p] = recycled;
    }
    last_[p] = found[p];
    expired_[p] = expired;
  }
  last_ns_ = now_ns;
  counted_ = now;
  return counts_;
}

}  // namespace sluice
