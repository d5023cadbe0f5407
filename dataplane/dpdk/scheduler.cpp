// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/scheduler.hpp"

#include <rte_cycles.h>
#include <rte_ring.h>

#include <algorithm>

#include "dataplane/model/parse.h"
#include "dataplane/model/rewrite.h"

namespace sluice::dpdk {

// One segment only: the reset is built in the first, and a trim of a chain
// (over 64 KiB, say) would cut the wrong bytes. Out of the burst's loop.
__attribute__((noinline, cold)) bool to_reset(rte_mbuf* m, const sl_meta& meta) {
  uint8_t* data = rte_pktmbuf_mtod(m, uint8_t*);
  const uint32_t len = rte_pktmbuf_is_contiguous(m)
                           ? sl_build_reset(data, data + rte_pktmbuf_data_len(m), &meta)
                           : 0;
  if (len != 0 && rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - len)) == 0)
    return true;
  rte_pktmbuf_free(m);
  return false;
}

__attribute__((noinline, cold)) bool shed_reset(const Snapshot& s, const QueueTag& t, rte_mbuf* m) {
  const uint32_t slot = t.state_index & (SL_MAX_CLASSES - 1);
  if (!t.is_start || t.reason != SL_REASON_LOOKUP || s.slot_epoch[slot] != t.state_epoch) {
    rte_pktmbuf_free(m);
    return false;
  }
  const sl_profile& prof = s.profile.prof;
  const sl_class_params* cp = nullptr;
  for (uint32_t c = 0; c < prof.n_classes && c < SL_MAX_CLASSES; c++)
    if (prof.classes[c].state_index == slot) cp = &prof.classes[c];
  sl_meta meta;
  const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
  if (cp == nullptr || cp->on_shed != SL_ACTION_RESET || (prof.flags & SL_PROFILE_SHADOW) ||
      sl_parse(data, data + rte_pktmbuf_data_len(m), &meta) != SL_PARSE_OK || !meta.is_start ||
      meta.l4_proto != SL_IPPROTO_TCP || meta.frag != SL_FRAG_NONE) {
    rte_pktmbuf_free(m);
    return false;
  }
  return to_reset(m, meta);
}

bool Scheduler::send_now(const Snapshot& s, rte_mbuf** pkts, const QueueTag* tags, uint16_t n,
                         uint32_t priority) {
  if (holds()) return false;
  if (s.paced && take(s, rte_rdtsc(), priority, n, true) != n) return false;
  const uint16_t sent = rte_eth_tx_burst(e_.port[kPortInside], static_cast<uint16_t>(w_), pkts, n);
  record(s, tags, sent, rte_rdtsc());
  for (uint16_t i = sent; i < n; i++) {  // refused by the device: wait in pending_
    *tag_of(e_, pkts[i]) = tags[i];
    pending_[pending_n_++] = pkts[i];
  }
  return true;
}

bool Scheduler::poll(const Snapshot& s) {
  const uint64_t now = rte_rdtsc();
  bool work = false;
  if (pending_n_) {
    work = true;
    drop_late(s, now, pending_, &pending_n_);
    send(s);
    if (pending_n_) return true;  // the device is still full
  }
  if (s.paced) work |= trim(s);
  // Up to two tx bursts per round.
  for (int round = 0; round < 2 && pending_n_ == 0; round++) {
    uint32_t top = 0;  // the highest priority waiting here
    while (top < SL_PRIORITIES && rte_ring_count(e_.rings[w_][top]) == 0) top++;
    if (top == SL_PRIORITIES) break;
    const uint32_t budget = s.paced ? take(s, now, top, kBurst, false) : kBurst;
    if (budget == 0) {
      work = true;  // packets wait for tokens
      break;
    }
    for (uint32_t p = top; p < SL_PRIORITIES && pending_n_ < budget; p++) {
      // Tokens taken for `top` fill the burst from lower levels only while
      // no other worker holds a higher priority than that level (else a
      // worker with a trickle of continuations sent its lowest priority on
      // their tokens, ahead of another worker's higher one).
      if (s.paced && p > top && outranked(p)) break;
      const unsigned got = rte_ring_sc_dequeue_burst(
          e_.rings[w_][p], reinterpret_cast<void**>(pending_ + pending_n_), budget - pending_n_,
          nullptr);
      if (got == 0) continue;
      work = true;
      uint16_t n = static_cast<uint16_t>(got);
      drop_late(s, now, pending_ + pending_n_, &n);
      pending_n_ += n;
    }
    // Tokens for packets that were late after all go back to the pace.
    if (s.paced && pending_n_ < budget)
      e_.pace.tat.fetch_sub((budget - pending_n_) * s.pace_interval, std::memory_order_relaxed);
    if (pending_n_ == 0) continue;  // all of it late
    send(s);
  }
  // Packets waiting for tokens keep the worker awake: a nap would break
  // the pace and the delay bound.
  for (uint32_t p = 0; p < SL_PRIORITIES && !work; p++) work = rte_ring_count(e_.rings[w_][p]) != 0;
  return work;
}

uint32_t Scheduler::take(const Snapshot& s, uint64_t tsc, uint32_t priority, uint32_t want,
                         bool whole) {
  const uint64_t now = pace_now(tsc);
  const uint64_t t = s.pace_interval;
  const uint64_t limit = now + s.pace_cap * t;
  int gate = -1;  // outranked(priority), read once and only when tokens are scarce
  uint64_t tat = e_.pace.tat.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t base = std::max(tat, now);
    uint64_t avail = base < limit ? (limit - base) / t : 0;
    if (avail < want + kBurst && priority > 0) {
      if (gate < 0) gate = outranked(priority);
      if (gate) avail = avail > kBurst ? avail - kBurst : 0;
    }
    const uint64_t n = std::min<uint64_t>(avail, want);
    if (n == 0 || (whole && n < want)) return 0;
    if (e_.pace.tat.compare_exchange_weak(tat, base + n * t, std::memory_order_relaxed))
      return static_cast<uint32_t>(n);
  }
}

bool Scheduler::outranked(uint32_t priority) const {
  for (uint32_t v = 0; v < e_.workers; v++) {
    if (v == w_) continue;
    for (uint32_t p = 0; p < priority; p++)
      if (rte_ring_count(e_.rings[v][p]) != 0) return true;
  }
  return false;
}

// Drops (in place) the packets that waited longer than max_queue_delay.
void Scheduler::drop_late(const Snapshot& s, uint64_t now, rte_mbuf** pkts, uint16_t* n) {
  uint16_t keep = 0, n_resets = 0;
  rte_mbuf* resets[kBurst];
  LcoreCounters& c = e_.counters[w_];
  for (uint16_t i = 0; i < *n; i++) {
    const QueueTag& t = *tag_of(e_, pkts[i]);
    const uint64_t waited = now > t.arrival_tsc ? now - t.arrival_tsc : 0;
    if (s.max_delay_tsc && waited > s.max_delay_tsc) {
      count_queued(s, c.model, t, SL_VERDICT_SHED, SL_REASON_QUEUE_DELAY);
      bump(c.queue.dropped_delay[t.priority]);
      if (shed_reset(s, t, pkts[i])) resets[n_resets++] = pkts[i];
      continue;
    }
    pkts[keep++] = pkts[i];
  }
  *n = keep;
  if (n_resets)
    tx_all(e_.port[kPortOutside], static_cast<uint16_t>(w_), resets, n_resets,
           c.tx_dropped[kPortOutside]);
}

// Counts the packets that leave (their tags), and how long they waited.
// Packets of one rx burst share their arrival: its delay and histogram
// bucket are worked out once for all of them.
void Scheduler::record(const Snapshot& s, const QueueTag* tags, uint16_t n, uint64_t now) {
  LcoreCounters& c = e_.counters[w_];
  uint64_t arrival = 0, ns = 0;
  std::size_t b = 0;
  for (uint16_t i = 0; i < n; i++) {
    const QueueTag& t = tags[i];
    count_queued(s, c.model, t, SL_VERDICT_ADMITTED, t.reason);
    if (i == 0 || t.arrival_tsc != arrival) {
      arrival = t.arrival_tsc;
      ns = e_.tsc_ns(now > arrival ? now - arrival : 0);
      b = 0;
      while (b < kDelayBoundsNs.size() && ns > kDelayBoundsNs[b]) b++;
    }
    bump(c.queue.delay_count[t.priority][b]);
    bump(c.queue.delay_sum_ns[t.priority], ns);
  }
}

// Sends what is pending (its tokens are already taken); what the device
// refuses waits for the next round.
void Scheduler::send(const Snapshot& s) {
  // The tags are read before the device owns the packets: a driver may free
  // a packet in tx_burst (net_null does), or a ring's reader take it.
  QueueTag tags[kBurst];
  for (uint16_t i = 0; i < pending_n_; i++) tags[i] = *tag_of(e_, pending_[i]);
  const uint16_t sent =
      rte_eth_tx_burst(e_.port[kPortInside], static_cast<uint16_t>(w_), pending_, pending_n_);
  record(s, tags, sent, rte_rdtsc());
  std::copy(pending_ + sent, pending_ + pending_n_, pending_);
  pending_n_ -= sent;
}

// Keeps all queues together within what max_queue_delay can drain at the
// paced rate: past that, the lowest priority's oldest packets go first, each
// worker dropping its share of them (all schedulers run this, each on its
// own rings). Other workers' rings are read only when this one's hold any.
bool Scheduler::trim(const Snapshot& s) {
  uint64_t own[SL_PRIORITIES] = {};
  uint64_t own_total = 0;
  for (uint32_t p = 0; p < SL_PRIORITIES; p++)
    own_total += own[p] = rte_ring_count(e_.rings[w_][p]);
  if (own_total == 0) return false;
  uint64_t depth[SL_PRIORITIES] = {};
  uint64_t total = 0;
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    for (uint32_t v = 0; v < e_.workers; v++)
      depth[p] += v == w_ ? own[p] : rte_ring_count(e_.rings[v][p]);
    total += depth[p];
  }
  if (total <= s.depth_limit) return false;
  uint64_t excess = total - s.depth_limit;
  LcoreCounters& c = e_.counters[w_];
  bool dropped = false;
  for (int p = SL_PRIORITIES - 1; p >= 0 && excess; p--) {
    if (depth[p] == 0) continue;
    const uint64_t here = std::min(excess, depth[p]);
    excess -= here;
    // This worker's share of the packets of priority p to drop, rounded up.
    uint64_t mine = std::min(own[p], (here * own[p] + depth[p] - 1) / depth[p]);
    while (mine) {
      rte_mbuf* drop[kBurst];
      const unsigned got = rte_ring_sc_dequeue_burst(
          e_.rings[w_][p], reinterpret_cast<void**>(drop),
          static_cast<unsigned>(std::min<uint64_t>(mine, kBurst)), nullptr);
      if (got == 0) break;
      uint16_t n_resets = 0;
      for (unsigned i = 0; i < got; i++) {
        const QueueTag& t = *tag_of(e_, drop[i]);
        count_queued(s, c.model, t, SL_VERDICT_SHED, SL_REASON_QUEUE_FULL);
        if (shed_reset(s, t, drop[i])) drop[n_resets++] = drop[i];
      }
      bump(c.queue.dropped_full[p], got);
      if (n_resets)
        tx_all(e_.port[kPortOutside], static_cast<uint16_t>(w_), drop, n_resets,
               c.tx_dropped[kPortOutside]);
      mine -= got;
      dropped = true;
    }
  }
  return dropped;
}

}  // namespace sluice::dpdk
