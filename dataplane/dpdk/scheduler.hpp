// SPDX-License-Identifier: Apache-2.0
// The pacer of the DPDK fast path, one per worker: drains that worker's
// priority rings onto its inside tx queue in strict priority, paced to the
// boundary packet budget by tokens every worker takes from one shared
// bucket (Engine::pace), dropping what waited past max_queue_delay and,
// when all queues hold more than that of work, the lowest priority first.
// Also the lcore-side helpers the worker loop shares with it.
#pragma once

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/engine.hpp"

namespace sluice::dpdk {

// Tries to hand every packet to the device; what a full tx queue still
// refuses after a few tries is freed and counted (a stalled link must not
// stall admission).
inline void tx_all(uint16_t port, uint16_t queue, rte_mbuf** pkts, uint16_t n, uint64_t& dropped) {
  uint16_t sent = 0;
  for (int tries = 0; sent < n && tries < 16; tries++) {
    sent += rte_eth_tx_burst(port, queue, pkts + sent, n - sent);
    if (sent < n) rte_pause();
  }
  if (sent < n) {
    bump(dropped, n - sent);
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
  }
}

inline QueueTag* tag_of(const Engine& e, rte_mbuf* m) {
  return RTE_MBUF_DYNFIELD(m, e.tag_offset, QueueTag*);
}

// A shed SYN's frame made into its reset (sl_build_reset), to go back out;
// false: freed (no room for a reset, or a segmented frame: shed silently).
bool to_reset(rte_mbuf* m, const sl_meta& meta);

// A packet the queues shed (full, or late), tagged t: a SYN whose class
// answers a shed with a reset (on_shed = "reset") is made into that reset
// (true: the caller sends it out the outside port), as the decision does
// with a SYN it sheds; anything else is freed (false). Without it, a client
// whose SYN the queues shed waited for its retransmission.
bool shed_reset(const Snapshot& s, const QueueTag& t, rte_mbuf* m);

// A queued packet is counted once, when its fate is known: admitted (for
// the reason the model gave) when it leaves, shed when a queue drops it.
// Counters only ever grow. One whose class a retune removed meanwhile is
// not counted (its slot may be another class's now).
inline void count_queued(const Snapshot& s, sl_counters& c, const QueueTag& t, uint32_t verdict,
                         uint32_t reason) {
  if (s.slot_epoch[t.state_index & (SL_MAX_CLASSES - 1)] != t.state_epoch) return;
  bump(c.packets[t.state_index][verdict][reason]);
  if (t.is_start) bump(c.lookups[t.state_index][verdict][reason]);
}

// Drains worker w's priority rings onto its inside tx queue.
//
// Strict priority across workers: while the shared bucket holds less than a
// burst beyond what a scheduler asks for, it leaves a burst of tokens to any
// other worker holding a higher priority (it reads their rings' counts), so
// at the paced rate a lower priority waits whenever a higher one waits
// anywhere, give or take a burst.
class Scheduler {
 public:
  Scheduler(Engine& e, uint32_t w) : e_(e), w_(w) {}
  ~Scheduler() {
    if (pending_n_) rte_pktmbuf_free_bulk(pending_, pending_n_);
  }

  // This worker's admitted burst, when nothing waits in its rings and the
  // pace has tokens for all of it: out at once instead of through the rings
  // (no packet is overtaken, the pace is charged the same). `tags`: the
  // packets' tags, written into the mbufs only of those the device refuses
  // (they wait in pending_). `priority`: the lowest (largest-numbered)
  // queue priority in the burst, whose right to the tokens the whole burst
  // needs. False: queue them (their tags are not in the mbufs).
  bool send_now(const Snapshot& s, rte_mbuf** pkts, const QueueTag* tags, uint16_t n,
                uint32_t priority);

  // One round; true when it moved or dropped a packet.
  bool poll(const Snapshot& s);

  // Whether packets wait here: in its rings, or refused by the device. A
  // packet admitted behind them waits too, paced or not (it would overtake
  // them: after a retune to no packet budget, say).
  bool holds() const {
    if (pending_n_ != 0) return true;
    for (uint32_t p = 0; p < SL_PRIORITIES; p++)
      if (rte_ring_count(e_.rings[w_][p]) != 0) return true;
    return false;
  }

 private:
  // The pace's clock: 1/kPaceSub TSC cycles since the engine's start.
  // A core whose TSC reads behind the main core's start (TSCs not
  // synchronised) is at the start, not 2^64 cycles on: the pace would stall.
  uint64_t pace_now(uint64_t tsc) const {
    return tsc > e_.tsc_base ? (tsc - e_.tsc_base) * kPaceSub : 0;
  }

  // Takes up to `want` tokens (all or none with `whole`) for packets of
  // `priority` from the shared pace; returns how many.
  uint32_t take(const Snapshot& s, uint64_t tsc, uint32_t priority, uint32_t want, bool whole);

  // Whether another worker holds packets of a priority above `priority`.
  bool outranked(uint32_t priority) const;

  // Drops (in place) the packets that waited longer than max_queue_delay.
  void drop_late(const Snapshot& s, uint64_t now, rte_mbuf** pkts, uint16_t* n);

  // Counts the packets that leave (their tags), and how long they waited.
  void record(const Snapshot& s, const QueueTag* tags, uint16_t n, uint64_t now);

  void send(const Snapshot& s);

  // Keeps the queues within what max_queue_delay can drain at the paced
  // rate: past that, the lowest priority's oldest packets go first.
  bool trim(const Snapshot& s);

  Engine& e_;
  const uint32_t w_;
  rte_mbuf* pending_[kBurst];
  uint16_t pending_n_ = 0;
};

}  // namespace sluice::dpdk
