// SPDX-License-Identifier: Apache-2.0
// The XDP flow table's entries and evictions, for stats (internal to
// dataplane/xdp/). The kernel's LRU maps neither count their entries nor
// tell when they recycle one: the entries are a walk of each partition's
// keys, and the evictions follow from them and the program's counters.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>

#include "dataplane/model/abi.h"

namespace sluice {

// Entries in a flow table partition now (a walk of its keys, in batches).
uint64_t flow_partition_entries(int fd);

// Every partition's entries, counted at most once a second (a count is a
// walk, and stats are read for every scrape and log line). With each count,
// the entries the LRU recycled: made before the walk, less those found
// expired after it and those the walk found, a count that never runs ahead
// of the true one (entries made or expired during the walk only lower it),
// and never goes down (a Prometheus counter).
struct FlowCounts {
  std::array<uint64_t, SL_PRIORITIES> entries{};
  std::array<uint64_t, SL_PRIORITIES> evicted{};
  std::chrono::steady_clock::time_point counted{};

  // partitions: each priority's map fd (<= 0: none); counters: the
  // program's counters summed over the CPUs, read now.
  void refresh(const std::array<int, SL_PRIORITIES>& partitions,
               const std::function<sl_counters()>& counters);
};

}  // namespace sluice
