// SPDX-License-Identifier: Apache-2.0
// The XDP flow table's entries and evictions, for stats (internal to
// dataplane/xdp/). The kernel's LRU maps neither count their entries nor
// tell when they recycle one: the entries are a walk of each partition, and
// the evictions follow from it and the program's counters.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "dataplane/model/abi.h"

namespace sluice {

// A flow table partition now (a walk of its entries, in batches): entries
// held, and of them those past their life at now_ns (the program's clock),
// which the program removes only when a packet finds them, or the LRU
// recycles.
inline constexpr uint32_t kLifeBins = 1024;  // 1 s each; the last: 1023 s and more
struct PartitionCount {
  uint64_t entries = 0;
  uint64_t dead = 0;
  // Live entries by the whole seconds of life they have left.
  std::array<uint64_t, kLifeBins> life_left{};
};
PartitionCount flow_partition_count(int fd, uint64_t now_ns);

// Every partition's entries and the live entries the LRU recycled to make
// room (evictions, a Prometheus counter: never goes down).
struct FlowCounts {
  std::array<uint64_t, SL_PRIORITIES> entries{};
  std::array<uint64_t, SL_PRIORITIES> evicted{};
};

// Counts at most once a second (a count is a walk, and stats are read for
// every scrape, status request, log line and adaptive tick, from several
// threads: one count at a time). Entries recycled since the last count are
// those made before the walk, less those found expired after it and those
// the walk found, a figure that never runs ahead of the true one (entries
// made or expired during the walk only lower it). The LRU recycles the
// least recently used entries first, which are, as a rule, the ones past
// their life while any are left: of the recycled entries, only those
// beyond the entries dead by now of those the last count found (dead then,
// or whose life ran out since) are evictions of live flows. Approximate: a
// live flow idle for longer than a dead one was recycled before it (its
// eviction then goes unseen), and entries made and dead between two counts
// are not credited (each then counts as an eviction). Counting every
// recycled entry, a busy edge whose partitions had filled with closed flows
// counted an eviction for each new flow, and SluiceFlowTableFull fired for
// good on a table far from full of live flows.
class FlowCounter {
 public:
  // partitions: each priority's map fd (<= 0: none); counters: the
  // program's counters summed over the CPUs, read now; now_ns: the
  // program's clock.
  FlowCounts refresh(const std::array<int, SL_PRIORITIES>& partitions,
                     const std::function<sl_counters()>& counters, uint64_t now_ns);

 private:
  std::mutex mutex_;
  FlowCounts counts_;
  std::array<uint64_t, SL_PRIORITIES> recycled_{};    // as of the last count
  std::array<PartitionCount, SL_PRIORITIES> last_{};  // found by the last count
  uint64_t last_ns_ = 0;                              // its time (program clock)
  std::array<uint64_t, SL_PRIORITIES> expired_{};     // events, as of the last count
  std::chrono::steady_clock::time_point counted_{};
};

}  // namespace sluice
