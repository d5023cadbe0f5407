// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/source_sets.hpp"

#include <algorithm>
#include <cstring>

#include "dataplane/common/keyed_hash.hpp"
#include "dataplane/common/set_shape.hpp"
#include "dataplane/model/decide.h"

namespace sluice::dpdk {
namespace {

using Word = std::atomic_ref<uint64_t>;

uint64_t read(uint64_t& w) { return Word(w).load(std::memory_order_relaxed); }

}  // namespace

SourceSets::SourceSets(uint64_t source_table_size, uint32_t workers)
    : mask_(sets_for(source_table_size, kSourceWays) - 1),
      shared_(workers > 1),
      sets_(new Set[std::size_t{mask_} + 1]()),
      stripes_(new Stripe[kStripes]),
      counts_(new Counts[kWorkers]) {
  for (uint32_t i = 0; i < kStripes; i++) rte_spinlock_init(&stripes_[i].lock);
}

bool SourceSets::write(uint64_t& word, uint64_t& seen, uint64_t next) const {
  if (shared_)
    return Word(word).compare_exchange_strong(seen, next, std::memory_order_release,
                                              std::memory_order_relaxed);
  Word(word).store(next, std::memory_order_relaxed);
  return true;
}

uint32_t SourceSets::find(const Set& set, const uint64_t* key) {
  for (uint32_t i = 0; i < kSourceWays; i++) {
    auto& w = const_cast<Way&>(set.way[i]);
    if (read(w.key[0]) == key[0] && read(w.key[1]) == key[1] && read(w.key[2]) == key[2]) return i;
  }
  return kSourceWays;
}

int SourceSets::op_in(uint32_t index, const sl_source_key& key, const sl_class_params& cp,
                      uint64_t now_ns, Op op, uint32_t worker) {
  // The latest clock, raised (at most once per kUseNs) before this worker
  // writes any budget: a worker that reads a budget another wrote reads a
  // clock at most kUseNs behind the writer's (the release and acquire on
  // tat_u below).
  uint64_t latest = latest_ns_.load(std::memory_order_relaxed);
  if (now_ns > latest + kUseNs)
    while (now_ns > latest &&
           !latest_ns_.compare_exchange_weak(latest, now_ns, std::memory_order_relaxed)) {
    }
  uint64_t k[3] = {};
  std::memcpy(k, &key, sizeof(key));
  index &= mask_;
  Set& set = sets_[index];
  uint32_t w = find(set, k);
  bool entered = false;
  if (w == kSourceWays) {
    if (op == Op::kGiveBack) return 0;  // its way went to another source meanwhile
    rte_spinlock_t* lock = &stripes_[index % kStripes].lock;
    bool evicted = false;
    if (shared_) rte_spinlock_lock(lock);
    w = find(set, k);
    if (w == kSourceWays) {
      // An empty way, else the first in the set's eviction order.
      w = 0;
      uint64_t least = UINT64_MAX;
      for (uint32_t i = 0; i < kSourceWays; i++) {
        Way& way = set.way[i];
        if (read(way.key[2]) == 0) {  // family 0 (the key's third word): empty
          w = i;
          break;
        }
        const uint64_t order = sl_source_evict_order(read(way.used_ns), read(way.tat_u),
                                                     static_cast<__u32>(read(way.returned)));
        if (order < least) {
          least = order;
          w = i;
        }
      }
      Way& v = set.way[w];
      evicted = read(v.key[2]) != 0;
      entered = true;
      // Its budget before its key: a worker that matches the key reads
      // the fresh budget (the release fence; the reader's acquire below).
      Word(v.tat_u).store(SL_GCRA_FULL, std::memory_order_relaxed);
      Word(v.used_ns).store(now_ns, std::memory_order_relaxed);
      Word(v.returned).store(0, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
      for (int i = 0; i < 3; i++) Word(v.key[i]).store(k[i], std::memory_order_relaxed);
    }
    if (shared_) rte_spinlock_unlock(lock);
    if (entered) {
      Counts& c = counts_[worker % kWorkers];
      c.inserts.fetch_add(1, std::memory_order_relaxed);
      if (evicted) c.evictions.fetch_add(1, std::memory_order_relaxed);
    }
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  Way& way = set.way[w];
  // Still in use: a flood of new sources must not take its way. Written
  // once per kUseNs at most, not by every packet.
  if (now_ns - read(way.used_ns) > kUseNs)
    Word(way.used_ns).store(now_ns, std::memory_order_relaxed);
  // Came back: a packet after the one that entered it.
  if (!entered && (op == Op::kTake || op == Op::kPeek) && read(way.returned) == 0)
    Word(way.returned).store(1, std::memory_order_relaxed);
  // The budget is judged on the latest clock, not this worker's: a worker
  // whose clock is far behind another's (descheduled for a while
  // mid-burst, or on a capture's timestamps) would take the debt that
  // worker's takes left for one a retune left and cut it, handing the
  // source its tokens again; and its takes from a budget full on its old
  // clock would leave a TAT behind the others', for them to refill.
  uint64_t seen = Word(way.tat_u).load(std::memory_order_acquire);
  const uint64_t clock = std::max(now_ns, latest_ns_.load(std::memory_order_relaxed));
  // A debt a retune left beyond the burst's reach, cut back (gcra.h): once,
  // by whichever worker's compare-and-swap lands first.
  const uint64_t settled = sl_gcra_settle(seen, &cp.src_bucket, clock);
  if (settled != seen && write(way.tat_u, seen, settled)) seen = settled;
  if (op == Op::kPeek)
    return sl_gcra_after_take(seen, &cp.src_bucket, clock) == 0 ? SL_SOURCE_REFUSED
                                                                : SL_SOURCE_TAKEN;
  // Retried until it lands or the budget refuses: each failure is another
  // worker's take or give-back of the same source that landed meanwhile
  // (lock-free: some worker always moves on), so a busy source's lookups
  // are not refused here for losing races on many cores. XDP's tries are
  // bounded for the verifier: 4 in the program's code, then up to 4,096 in
  // a bpf_loop (bpf/sources.h).
  const bool give_back = op == Op::kGiveBack;
  for (;;) {
    const uint64_t next = give_back ? sl_gcra_after_give_back(seen, &cp.src_bucket)
                                    : sl_gcra_after_take(seen, &cp.src_bucket, clock);
    if (next == 0 && !give_back) return SL_SOURCE_REFUSED;
    if (write(way.tat_u, seen, next)) return give_back ? 0 : SL_SOURCE_TAKEN;
  }
}

uint64_t SourceSets::inserts(uint32_t w) const {
  return counts_[w % kWorkers].inserts.load(std::memory_order_relaxed);
}

uint64_t SourceSets::evictions(uint32_t w) const {
  return counts_[w % kWorkers].evictions.load(std::memory_order_relaxed);
}

}  // namespace sluice::dpdk
