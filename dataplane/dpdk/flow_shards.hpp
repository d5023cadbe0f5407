// SPDX-License-Identifier: Apache-2.0
// The DPDK workers' flow table: one FlowSets shard per worker, each behind
// its own spinlock. A worker creates flows in its own shard and looks a flow
// up in its own shard first, then in the others: RSS gives a flow's packets
// to one worker, and the ports' symmetric RSS key (port.cpp) gives its
// replies on the inside port to the same one, so nearly every lookup and
// every write stays in a shard (and a lock's cache line) only its worker
// touches, and the workers do not take the state lock for flows.
//
// With one worker there is one shard: the table holds what the reference
// model's holds until a set is full (flow_sets.hpp; the differential tests
// compare them packet for packet). With several, each shard holds
// flow_table_size / workers flows: a worker that RSS gives more than its
// share of flows recycles its own (in the flow's set, the way that expires
// first) while another shard may still have room. A flow whose packets move
// to another worker (a retransmitted SYN on another queue, say) may be
// created twice; lookups find the creating worker's copy first.
#pragma once

#include <rte_spinlock.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/dpdk/flow_sets.hpp"

namespace sluice::dpdk {

class FlowShards {
  struct Shard;

 public:
  // capacity: flow_table_size; workers: one shard each.
  FlowShards(std::size_t capacity, uint32_t workers) {
    const uint32_t n = std::max<uint32_t>(workers, 1);
    for (uint32_t i = 0; i < n; i++) shards_.push_back(std::make_unique<Shard>(capacity / n));
  }

  // A worker's access to the table, for the helpers of
  // dataplane/common/flow_table.hpp (FlowTable's holder(key) contract): it
  // holds at most one shard's lock at a time, the one of the shard where the
  // last find() hit or the last put() wrote, until it goes.
  class Guard {
   public:
    // hint: FlowSets::hash of the packet's TCP flow key when the worker
    // has it (0: none), for a put of that key.
    Guard(FlowShards& owner, uint32_t worker, uint64_t hint = 0)
        : o_(owner), own_(worker), hint_(hint) {}
    ~Guard() { release(); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

    sl_flow* find(uint32_t parts, const sl_flow_key& key, uint64_t now_ns, FlowEvents& events) {
      const std::size_t n = o_.shards_.size();
      const uint64_t hash = key.kind == SL_FLOW_KIND_TCP ? hint_ : 0;
      for (std::size_t k = 0; k < n; k++) {
        const std::size_t shard = (own_ + k) % n;
        // With several shards, one is locked only where its set holds the
        // key's tag: a flood of ACKs of no flow took every worker's lock
        // (and wrote its counts) for each miss, and two workers decided a
        // third of what one did (docs/performance.md). (One shard has no
        // lock: its find is the check.)
        if (n > 1 && !o_.shards_[shard]->table.may_hold(parts, key, hash)) continue;
        hold(shard);
        changed_ |= parts;  // may remove an expired entry
        sl_flow* f = held_->table.find(parts, key, now_ns, events, hash);
        if (f != nullptr) return f;
      }
      release();
      return nullptr;
    }
    bool put(uint32_t p, const sl_flow_key& key, const sl_flow& f, uint64_t now_ns,
             FlowEvents& events, const sl_profile* syn_of = nullptr) {
      hold(own_);
      changed_ |= 1U << p;
      return held_->table.put(p, key, f, now_ns, events, syn_of,
                              key.kind == SL_FLOW_KIND_TCP ? hint_ : 0);
    }

   private:
    // One worker: its shard is nobody else's, no lock.
    void hold(std::size_t shard) {
      Shard* s = o_.shards_[shard].get();
      if (held_ == s) return;
      release();
      if (o_.shards_.size() > 1) rte_spinlock_lock(&s->lock);
      held_ = s;
    }
    void release() {
      if (held_ == nullptr) return;
      for (uint32_t p = 0; p < SL_PRIORITIES; p++)
        if (changed_ & (1U << p))
          held_->entries[p].store(held_->table.size(p), std::memory_order_relaxed);
      changed_ = 0;
      if (o_.shards_.size() > 1) rte_spinlock_unlock(&held_->lock);
      held_ = nullptr;
    }

    FlowShards& o_;
    const std::size_t own_;
    const uint64_t hint_;
    Shard* held_ = nullptr;
    uint32_t changed_ = 0;  // partitions (bits) whose size may have moved while held
  };

  // Worker w's view: holder(key) is the guard (which shard holds key is
  // found by looking).
  struct View {
    FlowShards& table;
    uint32_t worker;
    // FlowSets::hash(sl_flow_key_tcp(m)) of the packet being decided (m its
    // meta), set by the worker per packet, or 0; guards pass it on for a
    // TCP-kind key only (a fragment's key is another). A packet whose TCP
    // key is another (an ICMP error's quoted header) gets 0.
    uint64_t tcp_hash = 0;
    Guard holder(const sl_flow_key&) const { return Guard(table, worker, tcp_hash); }
    // For the worker's next find or put of a key in its own shard. (The
    // other shards' sets too, for a find that may go on to them, cost two
    // workers 18% of their verified continuations in dpdk_bench.)
    void prefetch_set(uint32_t p, uint64_t hash) const {
      table.shards_[worker]->table.prefetch_set(p, hash);
    }
  };
  View of(uint32_t worker) { return View{*this, worker % static_cast<uint32_t>(shards_.size())}; }

  // Entries of partition p as the shards' last lock holders left them.
  uint64_t size(uint32_t p) const {
    uint64_t n = 0;
    for (const auto& s : shards_) n += s->entries[p].load(std::memory_order_relaxed);
    return n;
  }
  std::size_t capacity() const { return shards_.size() * shards_[0]->table.capacity(); }
  uint32_t shards() const { return static_cast<uint32_t>(shards_.size()); }

  // While no worker runs (flow_keep.hpp): every entry held, visit(shard,
  // partition, key, flow); and an entry put into shard s.
  template <typename Visit>
  void each(Visit&& visit) const {
    for (uint32_t s = 0; s < shards_.size(); s++)
      shards_[s]->table.each(
          [&](uint32_t p, const sl_flow_key& key, const sl_flow& f) { visit(s, p, key, f); });
  }
  void put_stopped(uint32_t s, uint32_t p, const sl_flow_key& key, const sl_flow& f,
                   uint64_t now_ns) {
    Shard& shard = *shards_[s % shards_.size()];
    FlowEvents ignored{};  // a smaller table's evictions: what did not fit
    shard.table.put(p, key, f, now_ns, ignored);
    shard.entries[p].store(shard.table.size(p), std::memory_order_relaxed);
  }

 private:
  struct alignas(64) Shard {
    explicit Shard(std::size_t capacity) : table(capacity) { rte_spinlock_init(&lock); }
    rte_spinlock_t lock;
    FlowSets table;
    std::atomic<uint64_t> entries[SL_PRIORITIES] = {};
  };

  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace sluice::dpdk
