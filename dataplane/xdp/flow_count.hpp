// SPDX-License-Identifier: Apache-2.0
// The XDP flow table's entries, for stats (internal to dataplane/xdp/): a
// walk of its sets (bpf/shared_state.h, struct sl_flow_set), mapped into
// this process. Evictions need no walk: the program counts them
// (sl_counters.flow_events, SL_FLOW_EV_EVICTED).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "bpf/shared_state.h"

namespace sluice {

// Entries held by each priority partition of sets (sets_per_partition sets
// each, one partition after another): ways whose entry is not empty, live
// or past their life (a packet that finds one past its life empties it; a
// new flow takes it).
std::array<uint64_t, SL_PRIORITIES> flow_entries(const sl_flow_set* sets,
                                                 uint32_t sets_per_partition);

// flow_entries() at most once a second: stats are read for every scrape,
// status request, log line and adaptive tick, from several threads, and a
// walk reads the whole table (32 MiB at the default flow_table_size).
class FlowEntryCount {
 public:
  std::array<uint64_t, SL_PRIORITIES> count(const sl_flow_set* sets, uint32_t sets_per_partition);

 private:
  std::mutex mutex_;
  std::array<uint64_t, SL_PRIORITIES> entries_{};
  std::chrono::steady_clock::time_point counted_{};
};

}  // namespace sluice
