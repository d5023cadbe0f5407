// SPDX-License-Identifier: Apache-2.0
// What the DPDK lcores share (internal to dataplane/dpdk/).
//
// Per worker: rx burst on the outside port -> parse, the burst's addresses
// looked up in bulk in the live Snapshot's prefix tables (fib.hpp), classify
// (the Snapshot is immutable, no lock) -> per frame: flow lookups in the flow
// table's shards (flow_shards.hpp), the source's budget by compare-and-swap
// (source_sets.hpp), then the decision: on the worker's per-CPU credit, or a
// shed the state leaves no doubt about, without a lock
// (dataplane/model/credit.h), else under the state spinlock, taken once per
// burst at the first frame that needs it (class and boundary state;
// sl_decide_source()) -> admitted packets into that
// worker's eight priority rings (the model's verdicts only; when the profile
// has no packet budget there is nothing to pace to and they go straight
// out) -> resets back out of the outside port. The inside -> outside
// direction is forwarded untouched; a frame there that opens, closes or
// confirms a flow updates its shard.
//
// Every worker also runs its own Scheduler: it drains that worker's rings
// strictly by priority onto its own inside tx queue, paced by tokens all
// workers draw from one shared bucket (Pace: one compare-and-swap per
// burst, no lock), giving way while another worker holds a higher priority
// and tokens are scarce; it drops what waited longer than max_queue_delay
// (and, when all queues together hold more than that much work, the lowest
// priority first, each worker its share).
//
// Live config: the control thread publishes a new Snapshot with one atomic
// store, and frees the old one once every worker passed a quiescent point
// (rte_rcu_qsbr). A stalled worker delays the free, not the retune, until
// kMaxRetired snapshots wait: then changes are refused. Class state lives
// outside the Snapshot, in slots that keep their class across swaps
// (dataplane/common/slot_book.hpp).
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_spinlock.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/common/profile.hpp"
#include "dataplane/dpdk/fib.hpp"
#include "dataplane/dpdk/flow_shards.hpp"
#include "dataplane/dpdk/source_sets.hpp"
#include "dataplane/model/abi.h"
#include "dataplane/model/capture.h"

struct rte_rcu_qsbr;

namespace sluice::dpdk {

inline constexpr uint16_t kBurst = 32;
inline constexpr uint16_t kDescriptors = 1024;  // per rx and per tx queue
inline constexpr unsigned kMempoolCache = 256;  // mbufs cached per lcore
// A worker whose polling loop count has not moved for this long is stuck
// (stats().healthy is false, the systemd watchdog is not fed). Workers poll
// every few microseconds even when idle; 2 s rides out a descheduled thread.
inline constexpr std::chrono::milliseconds kWorkerStallLimit{2000};
// How long a retune (or a capture's stop) waits for every worker to pass a
// quiescent point before it frees the old snapshot later instead, and how
// many such snapshots may wait before a change is refused (a worker stalled).
inline constexpr std::chrono::milliseconds kRetireWait{500};
inline constexpr std::size_t kMaxRetired = 8;
inline constexpr int kPortOutside = 0;
inline constexpr int kPortInside = 1;

// Upper bounds of the queueing delay histogram, ns.
inline constexpr std::array<uint64_t, 13> kDelayBoundsNs = {
    10'000,    50'000,     100'000,    250'000,    500'000,     1'000'000,    2'500'000,
    5'000'000, 10'000'000, 25'000'000, 50'000'000, 100'000'000, 1'000'000'000};

// A compiled profile as the lcores read it. Never changed once published.
struct Snapshot {
  CompiledProfile profile;  // prof carries the assigned state slots
  // Source and destination prefixes (fib.hpp), shared with the next
  // Snapshot when its prefixes are the same (a rate retuned by the adaptive
  // boundary every 100 ms rebuilds none).
  std::shared_ptr<const Fib> src_fib;
  std::shared_ptr<const Fib> dst_fib;
  uint64_t generation = 0;
  bool paced = false;          // a packet budget: admitted packets wait in the priority queues
  uint64_t pace_rate = 0;      // packets/s the schedulers send at, together
  uint64_t pace_interval = 1;  // 1/kPaceSub TSC cycles per packet at pace_rate
  uint64_t pace_cap = 1;       // packets they may send back to back after a pause
  uint64_t max_delay_tsc = 0;  // max_queue_delay in TSC cycles (paced or not)
  uint64_t depth_limit = 0;    // packets all queues may hold: max_queue_delay of paced work
  // The epoch of each class state slot's class (0: no class of this
  // profile): a queued packet whose class's epoch is not its slot's is of a
  // class a retune removed, and is not counted as the slot's new class.
  uint32_t slot_epoch[SL_MAX_CLASSES] = {};
};

// Written by one worker's scheduler only, summed on read.
struct alignas(64) QueueCounters {
  uint64_t delay_count[SL_PRIORITIES][kDelayBoundsNs.size() + 1] = {};
  uint64_t delay_sum_ns[SL_PRIORITIES] = {};
  uint64_t dropped_full[SL_PRIORITIES] = {};
  uint64_t dropped_delay[SL_PRIORITIES] = {};
};

// Written by one lcore only, summed on read.
struct alignas(64) LcoreCounters {
  sl_counters model{};          // by class state slot, as in the XDP maps
  uint64_t tx_dropped[2] = {};  // by port (kPortOutside, kPortInside)
  uint64_t queue_full[SL_PRIORITIES] = {};
  uint64_t loops = 0;   // polling loops run: liveness, for the XDP standby's heartbeat
  QueueCounters queue;  // this worker's scheduler
};

// A worker's per-CPU credits (dataplane/model/credit.h): budget tokens it
// drew ahead under the state lock and spends without it; and its counts of
// the sticky lookups it shed without the lock, by state slot, which the
// worker that next settles a window takes (dataplane/model/sticky_cpu.h).
struct alignas(64) WorkerCredits {
  sl_cpu_credits classes{};
  sl_sticky_cpu sticky[SL_MAX_CLASSES]{};
};

// The packet budget's pace, shared by every worker's scheduler: a GCRA
// bucket in one word, the time (1/kPaceSub TSC cycles since Engine::tsc_base)
// at which it would hold no tokens; a scheduler takes tokens for a burst by
// moving it forward with one compare-and-swap. It holds
// (now + pace_cap * interval - tat) / interval tokens, at most pace_cap.
inline constexpr uint64_t kPaceSub = 16;  // sub-cycles: the interval's precision
struct alignas(64) Pace {
  std::atomic<uint64_t> tat{0};
};

// The model's mutable state, shared by every worker: budgets under `lock`
// (and the workers' credits drawn from them), sources by compare-and-swap
// (source_sets.hpp), flows under their shards' own locks.
struct SharedState {
  SharedState(std::size_t source_capacity, std::size_t flow_capacity, uint32_t workers)
      : sources(source_capacity, workers), flows(flow_capacity, workers) {
    rte_spinlock_init(&lock);
  }
  rte_spinlock_t lock;
  std::array<sl_class_state, SL_MAX_CLASSES> classes{};
  sl_boundary_state boundary{};
  SourceSets sources;
  // Kept across profile swaps (a retune loses no flow); only a restart of
  // the dataplane starts it empty, with a learning window.
  FlowShards flows;
};

struct Engine {
  Engine(std::size_t source_capacity, std::size_t flow_capacity, uint32_t workers)
      : shared(source_capacity, flow_capacity, workers) {}

  std::atomic<const Snapshot*> snapshot{nullptr};
  std::atomic<bool> running{false};
  // Set by the control plane (DpdkDataplane::learn_missed_flows): the next
  // burst opens the learning window.
  std::atomic<bool> learn_missed{false};
  SharedState shared;
  rte_rcu_qsbr* qsv = nullptr;
  uint16_t port[2] = {};  // kPortOutside, kPortInside
  uint32_t workers = 1;
  std::vector<std::array<rte_ring*, SL_PRIORITIES>> rings;  // [worker][priority]
  std::vector<LcoreCounters> counters;                      // [worker]
  std::vector<WorkerCredits> credits;                       // [worker]
  Pace pace;
  uint64_t tsc_base = 0;  // the pace's time origin
  uint64_t tsc_hz = 1;
  uint64_t ns_mult = 0;  // ns = tsc * ns_mult >> 32
  bool capture_clock = false;
  // With the capture clock, the time of the latest outside frame: the
  // inside path (whose frames carry no capture time) uses it, so that flow
  // expiry stays on one clock.
  std::atomic<uint64_t> capture_now_ns{0};
  int timestamp_offset = -1;  // outside port rx timestamps (capture clock)
  uint64_t timestamp_flag = 0;
  uint64_t timestamp_unit_ns = 1;
  uint32_t idle_sleep_us = 0;
  int tag_offset = -1;
  // sluicectl capture: while `sample_armed`, workers copy the decided frames
  // `sample_cfg` asks for into `sample_ring` (elements: sl_capture_rec) for
  // the control thread; a full ring counts in `sample_lost`. One relaxed
  // load per burst when no capture runs.
  std::atomic<bool> sample_armed{false};
  sl_capture_cfg sample_cfg{};  // written only while disarmed
  rte_ring* sample_ring = nullptr;
  std::atomic<uint64_t> sample_lost{0};

  uint64_t tsc_ns(uint64_t tsc) const {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(tsc) * ns_mult) >> 32);
  }
};

struct WorkerArg {
  Engine* engine = nullptr;
  uint32_t id = 0;
};

// The lcore entry point (rte_eal_remote_launch); returns when running drops.
int worker_main(void* arg);

// Relaxed single-writer counter updates that a reader on another thread may
// load at any time.
template <typename T>
inline void bump(T& c, uint64_t n = 1) {
  __atomic_store_n(&c, static_cast<T>(c + n), __ATOMIC_RELAXED);
}
template <typename T>
inline uint64_t load(const T& c) {
  return __atomic_load_n(&c, __ATOMIC_RELAXED);
}

}  // namespace sluice::dpdk
