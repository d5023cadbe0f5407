// SPDX-License-Identifier: Apache-2.0
// The DPDK workers' per-source table, shared by every worker without the
// state lock: the C++ twin of the XDP program's (bpf/sources.h,
// bpf/shared_state.h: struct sl_source_set). A power of two of sets of
// kSourceWays ways, 2-4 ways per entry of source_table_size, a source's set
// picked by its keyed hash. A source's budget is one GCRA word
// (dataplane/model/gcra.h), taken, peeked at and given back by
// compare-and-swap; a source new to its set enters it under the lock of the
// set's stripe, in place of the way first in its set's eviction order when
// the set is full (an eviction; dataplane/model/decide.h,
// sl_source_evict_order: a source seen once by its last use, one that came
// back not before its budget is full again). Its budget is written before its key, so a
// worker that matches the key reads the fresh budget; a worker that found
// the way an instant before it went to a new source takes (or gives back)
// that source's token, once at worst, from a fresh full budget.
//
// It differs from the reference's exact LRU (dataplane/common/source_table.hpp)
// only when five sources live in one set of four: the set recycles a way
// while the reference, below its capacity, keeps every source. With the default sizes that is a few
// sets at a quarter of source_table_size held, ~100 at half, ~1700 when full (XDP's sets alike).
#pragma once

#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/common/keyed_hash.hpp"
#include "dataplane/model/abi.h"

namespace sluice::dpdk {

inline constexpr uint32_t kSourceWays = 4;  // bpf/shared_state.h: SL_SOURCE_WAYS

class SourceSets {
 public:
  // What a call does with the source's budget (bpf/sources.h's ops).
  // kTakePeeked: a take after this packet's own peek (a source that came
  // back is one a later packet finds: neither this, nor a give-back).
  enum class Op { kTake, kGiveBack, kPeek, kTakePeeked };

  // source_table_size: the entries the table is sized for; workers: the
  // lcores that call op() (one: plain stores, no compare-and-swap).
  SourceSets(uint64_t source_table_size, uint32_t workers);

  // A lookup's source budget in class cp: SL_SOURCE_TAKEN or
  // SL_SOURCE_REFUSED (decide.h). kPeek: SL_SOURCE_TAKEN when the source
  // has a token, none taken; kGiveBack: the token an earlier take took
  // (dropped when the source's way went to another meanwhile), returns 0.
  // A source is entered (with a full budget) by a take or a peek. Takes no
  // lock unless the source enters its set; any worker may call it.
  int op(const sl_source_key& key, const sl_class_params& cp, uint64_t now_ns, Op op,
         uint32_t worker) {
    return op_in(set_of(key), key, cp, now_ns, op, worker);
  }
  // The same in key's set (set_of), which the caller may have asked for
  // ahead (prefetch: a worker's burst asks for its lookups' sets before
  // deciding, as for its flows).
  int op_in(uint32_t set, const sl_source_key& key, const sl_class_params& cp, uint64_t now_ns,
            Op op, uint32_t worker);
  uint32_t set_of(const sl_source_key& key) const { return keyed_hash(key) & mask_; }
  // Its first way: a set mostly holds one source (2-4 ways per entry), and
  // a burst asking for all four lines of each lookup's set stalled on them.
  void prefetch(uint32_t set) const { __builtin_prefetch(&sets_[set & mask_].way[0]); }

  // Sources entered and evicted by worker w (summed: the table's entries).
  uint64_t inserts(uint32_t w) const;
  uint64_t evictions(uint32_t w) const;
  // Ways: the most sources it holds.
  uint64_t capacity() const { return uint64_t{mask_ + 1} * kSourceWays; }

  // How stale a source's last use may get before a packet writes it (its
  // way's eviction order): 1 ms, as XDP.
  static constexpr uint64_t kUseNs = 1'000'000;
  static constexpr uint32_t kWorkers = 64;  // counter slots: worker ids mod this

 private:
  struct alignas(64) Way {
    // The key as words (family 0: an empty way), read without the lock.
    uint64_t key[3];  // sl_source_key's 20 bytes, zero padded
    uint64_t used_ns;
    uint64_t tat_u;     // sl_source_state
    uint64_t returned;  // 1 once a packet found it after the one that entered it
  };
  static_assert(sizeof(Way) == 64, "a way is a cache line");
  struct Set {
    Way way[kSourceWays];
  };
  struct alignas(64) Stripe {
    rte_spinlock_t lock;
  };
  struct alignas(64) Counts {
    std::atomic<uint64_t> inserts{0};
    std::atomic<uint64_t> evictions{0};
  };
  static constexpr uint32_t kStripes = 1024;

  // The way of the set that holds key's words, or kSourceWays.
  static uint32_t find(const Set& set, const uint64_t* key);

  // Writes a source's word: by compare-and-swap from `seen` when several
  // workers share the table (false: another's write came first, now in
  // seen), else a plain store.
  bool write(uint64_t& word, uint64_t& seen, uint64_t next) const;

  // The latest clock any worker has shown the table, within kUseNs: the
  // clock a retune's debt cut is judged on (op).
  alignas(64) std::atomic<uint64_t> latest_ns_{0};
  uint32_t mask_;
  bool shared_;  // more than one worker
  std::unique_ptr<Set[]> sets_;
  std::unique_ptr<Stripe[]> stripes_;
  std::unique_ptr<Counts[]> counts_;
};

}  // namespace sluice::dpdk
