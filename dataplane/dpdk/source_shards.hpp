// SPDX-License-Identifier: Apache-2.0
// The DPDK workers' per-source table, outside the state lock: SourceTable
// shards chosen by the source key's hash, each behind its own spinlock, as
// XDP takes a source's token under the lock of its stripe. RSS spreads one
// source's flows over every worker, so a source's bucket is shared; a shard
// lock is held for one lookup and one bucket operation, and two workers
// meet on one only for sources of the same shard (a single host's flood
// from every queue), never for the state lock's sake.
//
// With one worker there is one shard and no lock: the table is exactly the
// reference model's (the differential tests compare them packet for
// packet). With several, kShards shards of source_table_size / kShards
// entries each: a shard that hashing gives more than its share of sources
// recycles its own least recently used ones while another may have room.
#pragma once

#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/common/source_table.hpp"
#include "dataplane/model/decide.h"

namespace sluice::dpdk {

class SourceShards {
 public:
  static constexpr uint32_t kShards = 64;  // a power of two

  // capacity: source_table_size (>= SL_SOURCES_MIN: 16 entries a shard).
  SourceShards(std::size_t capacity, uint32_t workers) {
    const uint32_t n = workers > 1 ? kShards : 1;
    for (uint32_t i = 0; i < n; i++) shards_.push_back(std::make_unique<Shard>(capacity / n));
  }

  // sl_source_take() on key's bucket, created full (params, at now_ns) when
  // missing: SL_SOURCE_TAKEN or SL_SOURCE_REFUSED.
  int take(const sl_source_key& key, const sl_class_params& cp, uint64_t now_ns) {
    Shard& s = shard(key);
    lock(s);
    sl_source_state* ss = s.table.find_or_insert(key, cp.src_bucket, now_ns);
    const int r = sl_source_take(ss, &cp, now_ns);
    s.entries.store(s.table.size(), std::memory_order_relaxed);
    s.evictions.store(s.table.evictions(), std::memory_order_relaxed);
    unlock(s);
    return r;
  }

  // Gives back the token take() took, unless the entry was recycled since.
  void give_back(const sl_source_key& key, const sl_class_params& cp) {
    Shard& s = shard(key);
    lock(s);
    if (sl_source_state* ss = s.table.find(key)) sl_source_give_back(ss, &cp);
    unlock(s);
  }

  // As the shards' last lock holders left them.
  uint64_t entries() const {
    uint64_t n = 0;
    for (const auto& s : shards_) n += s->entries.load(std::memory_order_relaxed);
    return n;
  }
  uint64_t evictions() const {
    uint64_t n = 0;
    for (const auto& s : shards_) n += s->evictions.load(std::memory_order_relaxed);
    return n;
  }
  std::size_t capacity() const { return shards_.size() * shards_[0]->table.capacity(); }

 private:
  struct alignas(64) Shard {
    explicit Shard(std::size_t capacity) : table(capacity) { rte_spinlock_init(&lock); }
    rte_spinlock_t lock;
    SourceTable table;
    std::atomic<uint64_t> entries{0};
    std::atomic<uint64_t> evictions{0};
  };

  // The top bits of the table's own hash: the shard's table indexes by the
  // low ones.
  Shard& shard(const sl_source_key& key) {
    if (shards_.size() == 1) return *shards_[0];
    return *shards_[SourceTable::hash(key) >> (32 - kShardBits)];
  }
  void lock(Shard& s) {
    if (shards_.size() > 1) rte_spinlock_lock(&s.lock);
  }
  void unlock(Shard& s) {
    if (shards_.size() > 1) rte_spinlock_unlock(&s.lock);
  }

  static constexpr uint32_t kShardBits = 6;
  static_assert(kShards == 1U << kShardBits, "kShards is 2^kShardBits");
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace sluice::dpdk
