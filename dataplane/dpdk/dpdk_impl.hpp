// SPDX-License-Identifier: Apache-2.0
// The DPDK dataplane's state behind DpdkDataplane (private to
// dataplane/dpdk/dpdk_dataplane.cpp and dpdk_capture.cpp).
#pragma once

#include <rte_mempool.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/common/progress_watch.hpp"
#include "dataplane/common/slot_book.hpp"
#include "dataplane/dpdk/dpdk_dataplane.hpp"
#include "dataplane/dpdk/engine.hpp"
#include "dataplane/dpdk/port.hpp"

namespace sluice {

struct DpdkDataplane::Impl {
  explicit Impl(DataplaneSettings s)
      : settings(std::move(s)),
        engine(settings.source_table_size, settings.flow_table_size, settings.dpdk_workers) {}

  DataplaneSettings settings;
  dpdk::Engine engine;
  mutable std::mutex mutex;  // apply / stats / stop
  rte_mempool* pool = nullptr;
  dpdk::Port ports[2];
  std::vector<unsigned> lcores;
  std::vector<dpdk::WorkerArg> args;
  bool prepared = false;  // EAL, pool, ports and rings ready (prepare())
  bool launched = false;
  // This start's take of the flow table the last stop kept (stats()).
  std::string kept_flows;
  bool kept_flows_refused = false;
  Dataplane::StopNote stop_note;  // what the last stop kept (stop_note())
  SlotBook book;                  // class state slots: owners and counter bases
  // A running capture: class names by state slot when it started, and the
  // offset from the workers' clock (TSC ns) to Unix time.
  std::array<std::string, SL_MAX_CLASSES> capture_names;
  int64_t capture_offset_ns = 0;
  // Workers whose polling loops stopped (stats(), under the mutex).
  mutable ProgressWatch progress{dpdk::kWorkerStallLimit};

  sl_counters sum_counters() const;
  std::unique_ptr<dpdk::Snapshot> make_snapshot(const CompiledProfile& profile, uint64_t generation,
                                                SlotAssignment* slots, std::string* error) const;
  void publish(std::unique_ptr<dpdk::Snapshot> next, const SlotAssignment& slots);
  bool quiescent_since(uint64_t token, std::chrono::milliseconds limit) const;
  void free_retired(std::chrono::milliseconds limit);
  void release();
  uint64_t stopped_now() const;
  void take_kept_flows();

  // Snapshots swapped out that a worker may still read, each with the
  // rte_rcu_qsbr token every worker must pass first. Freed once it did: a
  // stalled worker (stuck in a loop, spinning on a lock) must not hold a
  // retune, and the mutex stats() needs, forever.
  struct Retired {
    const dpdk::Snapshot* snapshot;
    uint64_t token;
  };
  std::vector<Retired> retired;
  // The last capture_stop()'s token: the next capture waits for it.
  std::optional<uint64_t> capture_token;
};

}  // namespace sluice
