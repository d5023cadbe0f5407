// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/scheduler.hpp"

#include <rte_cycles.h>
#include <rte_ring.h>

#include <algorithm>

namespace sluice::dpdk {

// Worker 0's admitted burst, when nothing waits anywhere and the pacer has
// tokens for all of it: out at once instead of through the rings (no
// packet is overtaken, the pace is charged the same). False: queue them.
bool Scheduler::send_now(const Snapshot& s, rte_mbuf** pkts, uint16_t n) {
  if (pending_n_ != 0) return false;
  for (uint32_t w = 0; w < e_.workers; w++)
    for (uint32_t p = 0; p < SL_PRIORITIES; p++)
      if (rte_ring_count(e_.rings[w][p]) != 0) return false;
  refill(s, rte_rdtsc());
  if (tokens_ / e_.tsc_hz < n) return false;
  std::copy(pkts, pkts + n, pending_);
  pending_n_ = n;
  send(s);  // what the device refuses now waits in pending_
  return true;
}

// One round; true when it moved or dropped a packet.
bool Scheduler::poll(const Snapshot& s) {
  const uint64_t now = rte_rdtsc();
  refill(s, now);
  bool work = false;
  if (pending_n_) {
    work = true;
    drop_late(s, now, pending_, &pending_n_);
    send(s);
    if (pending_n_) return true;  // the device is still full
  }
  if (s.paced) work |= trim(s);
  // Up to two tx bursts per worker per round: every worker's rx bursts
  // end up here, so one burst per round would cap the whole dataplane at
  // one worker's rate.
  for (uint32_t round = 0; round < 2 * e_.workers && pending_n_ == 0; round++) {
    const uint64_t budget = std::min<uint64_t>(s.paced ? tokens_ / e_.tsc_hz : kBurst, kBurst);
    if (budget == 0) break;
    for (uint32_t p = 0; p < SL_PRIORITIES && pending_n_ < budget; p++) {
      for (uint32_t k = 0; k < e_.workers && pending_n_ < budget; k++) {
        rte_ring* r = e_.rings[(rr_ + k) % e_.workers][p];
        const unsigned got = rte_ring_sc_dequeue_burst(
            r, reinterpret_cast<void**>(pending_ + pending_n_), budget - pending_n_, nullptr);
        if (got == 0) continue;
        work = true;
        // Another worker's mbufs are cold here: fetch their tags together.
        for (unsigned i = 0; i < got; i++) rte_prefetch0(tag_of(e_, pending_[pending_n_ + i]));
        uint16_t n = static_cast<uint16_t>(got);
        drop_late(s, now, pending_ + pending_n_, &n);
        pending_n_ += n;
      }
    }
    rr_ = (rr_ + 1) % e_.workers;
    if (pending_n_ == 0) break;  // nothing waiting (or all of it late)
    send(s);
  }
  // Packets waiting for tokens keep the worker awake: a nap would break
  // the pace and the delay bound.
  for (uint32_t w = 0; w < e_.workers && !work; w++)
    for (uint32_t p = 0; p < SL_PRIORITIES && !work; p++)
      work = rte_ring_count(e_.rings[w][p]) != 0;
  return work;
}

void Scheduler::refill(const Snapshot& s, uint64_t now) {
  const uint64_t elapsed = now - last_tsc_;
  last_tsc_ = now;
  if (!s.paced) {
    tokens_ = 0;
    return;
  }
  const unsigned __int128 cap = static_cast<unsigned __int128>(s.pace_cap) * e_.tsc_hz;
  const unsigned __int128 t = tokens_ + static_cast<unsigned __int128>(elapsed) * s.pace_rate;
  tokens_ = static_cast<uint64_t>(std::min(t, cap));
}

// Drops (in place) the packets that waited longer than max_queue_delay.
void Scheduler::drop_late(const Snapshot& s, uint64_t now, rte_mbuf** pkts, uint16_t* n) {
  uint16_t keep = 0;
  sl_counters& c = e_.counters[0].model;
  for (uint16_t i = 0; i < *n; i++) {
    const QueueTag& t = *tag_of(e_, pkts[i]);
    // Another worker may have stamped it after `now` was read.
    const uint64_t waited = now > t.arrival_tsc ? now - t.arrival_tsc : 0;
    if (s.max_delay_tsc && waited > s.max_delay_tsc) {
      count_queued(c, t, SL_VERDICT_SHED, SL_REASON_QUEUE_DELAY);
      bump(e_.queues.dropped_delay[t.priority]);
      rte_pktmbuf_free(pkts[i]);
      continue;
    }
    pkts[keep++] = pkts[i];
  }
  *n = keep;
}

// Counts the packets that leave, and how long they waited.
void Scheduler::record(rte_mbuf* const* pkts, uint16_t n, uint64_t now) {
  sl_counters& c = e_.counters[0].model;
  for (uint16_t i = 0; i < n; i++) {
    const QueueTag& t = *tag_of(e_, pkts[i]);
    count_queued(c, t, SL_VERDICT_ADMITTED, t.reason);
    const uint64_t ns = e_.tsc_ns(now > t.arrival_tsc ? now - t.arrival_tsc : 0);
    std::size_t b = 0;
    while (b < kDelayBoundsNs.size() && ns > kDelayBoundsNs[b]) b++;
    bump(e_.queues.delay_count[t.priority][b]);
    bump(e_.queues.delay_sum_ns[t.priority], ns);
  }
}

void Scheduler::send(const Snapshot& s) {
  const uint16_t sent = rte_eth_tx_burst(e_.port[kPortInside], 0, pending_, pending_n_);
  record(pending_, sent, rte_rdtsc());
  if (s.paced) tokens_ -= std::min<uint64_t>(tokens_, sent * e_.tsc_hz);
  std::copy(pending_ + sent, pending_ + pending_n_, pending_);
  pending_n_ -= sent;
}

// Keeps the queues within what max_queue_delay can drain at the paced
// rate: past that, the lowest priority's oldest packets go first.
bool Scheduler::trim(const Snapshot& s) {
  uint64_t depth[SL_PRIORITIES] = {};
  uint64_t total = 0;
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    for (uint32_t w = 0; w < e_.workers; w++) depth[p] += rte_ring_count(e_.rings[w][p]);
    total += depth[p];
  }
  if (total <= s.depth_limit) return false;
  uint64_t excess = total - s.depth_limit;
  sl_counters& c = e_.counters[0].model;
  for (int p = SL_PRIORITIES - 1; p >= 0 && excess; p--) {
    for (uint32_t w = 0; w < e_.workers && excess; w++) {
      rte_mbuf* drop[kBurst];
      while (excess) {
        const unsigned want = static_cast<unsigned>(std::min<uint64_t>(excess, kBurst));
        const unsigned got = rte_ring_sc_dequeue_burst(
            e_.rings[w][p], reinterpret_cast<void**>(drop), want, nullptr);
        if (got == 0) break;
        for (unsigned i = 0; i < got; i++)
          count_queued(c, *tag_of(e_, drop[i]), SL_VERDICT_SHED, SL_REASON_QUEUE_FULL);
        bump(e_.queues.dropped_full[p], got);
        rte_pktmbuf_free_bulk(drop, got);
        excess -= got;
      }
    }
  }
  return true;
}

}  // namespace sluice::dpdk
