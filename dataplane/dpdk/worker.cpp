// SPDX-License-Identifier: Apache-2.0
// The lcore loop: admission on the outside rx queues, pass-through of the
// inside rx queues, and (worker 0) the priority scheduler. See engine.hpp.
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>

#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/engine.hpp"
#include "dataplane/model/classify.h"
#include "dataplane/model/decide.h"
#include "dataplane/model/flow.h"
#include "dataplane/model/parse.h"
#include "dataplane/model/rewrite.h"

namespace sluice::dpdk {
namespace {

// Tries to hand every packet to the device; what a full tx queue still
// refuses after a few tries is freed and counted (a stalled link must not
// stall admission).
void tx_all(uint16_t port, uint16_t queue, rte_mbuf** pkts, uint16_t n, uint64_t& dropped) {
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

uint32_t classify(const Snapshot& s, const sl_meta& m) {
  const sl_profile& prof = s.profile.prof;
  const uint32_t src =
      (prof.flags & SL_PROFILE_USES_SRC) ? s.src_lpm.lookup(m.family, m.src_be) : 0;
  const uint32_t dst =
      (prof.flags & SL_PROFILE_USES_DST) ? s.dst_lpm.lookup(m.family, m.dst_be) : 0;
  const uint32_t port =
      (prof.flags & SL_PROFILE_USES_PORTS) && m.has_ports ? s.profile.port_mask[m.dport] : 0;
  return sl_classify(&prof, &m, src, dst, port);
}

QueueTag* tag_of(const Engine& e, rte_mbuf* m) {
  return RTE_MBUF_DYNFIELD(m, e.tag_offset, QueueTag*);
}

// A queued packet is counted once, when its fate is known: admitted (for
// the reason the model gave) when it leaves, shed when a queue drops it.
// Counters only ever grow.
void count_queued(sl_counters& c, const QueueTag& t, uint32_t verdict, uint32_t reason) {
  bump(c.packets[t.state_index][verdict][reason]);
  if (t.is_start) bump(c.lookups[t.state_index][verdict][reason]);
}

// Drains the priority rings of every worker onto the inside port.
class Scheduler {
 public:
  explicit Scheduler(Engine& e) : e_(e), last_tsc_(rte_rdtsc()) {}
  ~Scheduler() {
    if (pending_n_) rte_pktmbuf_free_bulk(pending_, pending_n_);
  }

  // Worker 0's admitted burst, when nothing waits anywhere and the pacer has
  // tokens for all of it: out at once instead of through the rings (no
  // packet is overtaken, the pace is charged the same). False: queue them.
  bool send_now(const Snapshot& s, rte_mbuf** pkts, uint16_t n) {
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
  bool poll(const Snapshot& s) {
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

 private:
  void refill(const Snapshot& s, uint64_t now) {
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
  void drop_late(const Snapshot& s, uint64_t now, rte_mbuf** pkts, uint16_t* n) {
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
  void record(rte_mbuf* const* pkts, uint16_t n, uint64_t now) {
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

  void send(const Snapshot& s) {
    const uint16_t sent = rte_eth_tx_burst(e_.port[kPortInside], 0, pending_, pending_n_);
    record(pending_, sent, rte_rdtsc());
    if (s.paced) tokens_ -= std::min<uint64_t>(tokens_, sent * e_.tsc_hz);
    std::copy(pending_ + sent, pending_ + pending_n_, pending_);
    pending_n_ -= sent;
  }

  // Keeps the queues within what max_queue_delay can drain at the paced
  // rate: past that, the lowest priority's oldest packets go first.
  bool trim(const Snapshot& s) {
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

  Engine& e_;
  uint64_t last_tsc_;
  uint64_t tokens_ = 0;  // packets * tsc_hz
  uint32_t rr_ = 0;      // worker whose ring goes first, rotating
  rte_mbuf* pending_[kBurst];
  uint16_t pending_n_ = 0;
};

// Outside rx queue `w`: the admission decision for one burst.
// `scheduler`: worker 0's, which may send a burst straight out (send_now).
bool admit_burst(Engine& e, uint32_t w, const Snapshot& s, Scheduler* scheduler) {
  rte_mbuf* pkts[kBurst];
  const uint16_t n = rte_eth_rx_burst(e.port[kPortOutside], static_cast<uint16_t>(w), pkts, kBurst);
  if (n == 0) return false;
  const uint64_t tsc = rte_rdtsc();
  const uint64_t burst_ns = e.tsc_ns(tsc);
  const sl_profile& prof = s.profile.prof;
  const uint32_t default_class = prof.n_classes - 1;

  sl_meta meta[kBurst];
  int parsed[kBurst];
  uint32_t cls[kBurst];
  uint64_t now[kBurst];
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t* data = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
    parsed[i] = sl_parse(data, data + rte_pktmbuf_data_len(pkts[i]), &meta[i]);
    cls[i] = parsed[i] == SL_PARSE_OK ? classify(s, meta[i]) : default_class;
    now[i] = burst_ns;
    if (e.capture_clock && e.timestamp_offset >= 0 && (pkts[i]->ol_flags & e.timestamp_flag))
      now[i] =
          *RTE_MBUF_DYNFIELD(pkts[i], e.timestamp_offset, const uint64_t*) * e.timestamp_unit_ns;
  }

  if (e.capture_clock && now[n - 1] > e.capture_now_ns.load(std::memory_order_relaxed))
    e.capture_now_ns.store(now[n - 1], std::memory_order_relaxed);
  sl_decision d[kBurst];
  SharedState& st = e.shared;
  auto by_class = [&s](const sl_meta& m) { return classify(s, m); };
  FlowEvents& events = e.counters[w].model.flow_events;
  rte_spinlock_lock(&st.lock);
  for (uint16_t i = 0; i < n; i++) {
    const sl_class_params& cp = prof.classes[cls[i]];
    int flow_hit = 0;
    if (parsed[i] == SL_PARSE_OK && !meta[i].is_start)
      flow_hit = flow_verify(st.flows, prof, meta[i], rte_pktmbuf_mtod(pkts[i], const uint8_t*),
                             rte_pktmbuf_data_len(pkts[i]), cls[i], by_class, now[i], events);
    sl_source_state* ss = nullptr;
    if (parsed[i] == SL_PARSE_OK && sl_charged(&prof, &meta[i], flow_hit) &&
        cp.src_bucket.enabled) {
      sl_source_key key;
      sl_source_key_make(&key, &meta[i], &cp);
      ss = st.sources.find_or_insert(key, cp.src_bucket, now[i]);
    }
    sl_decide(&prof, &meta[i], parsed[i], cls[i],
              &st.classes[cp.state_index & (SL_MAX_CLASSES - 1)], &st.boundary, ss, flow_hit,
              now[i], &d[i]);
    flow_apply_ops(st.flows, prof, meta[i], d[i], by_class, now[i], events);
  }
  for (uint32_t p = 0; p < SL_PRIORITIES; p++)
    bump(st.flow_entries[p], st.flows.size(p) - st.flow_entries[p]);
  bump(e.counters[w].source_entries, st.sources.size() - e.counters[w].source_entries);
  bump(e.counters[w].source_evictions, st.sources.evictions() - e.counters[w].source_evictions);
  rte_spinlock_unlock(&st.lock);

  // Without a packet budget there is nothing to pace to: admitted packets go
  // straight out, unless this worker's rings still hold packets from a
  // paced profile (they would be overtaken).
  bool queue = s.paced;
  for (uint32_t p = 0; p < SL_PRIORITIES && !queue; p++) queue = rte_ring_count(e.rings[w][p]) != 0;

  LcoreCounters& c = e.counters[w];
  rte_mbuf* in[kBurst];
  uint16_t n_in = 0;
  rte_mbuf* waiting[kBurst];  // admitted, paced
  uint16_t n_waiting = 0;
  rte_mbuf* out[kBurst];
  uint16_t n_out = 0;
  for (uint16_t i = 0; i < n; i++) {
    const sl_decision& di = d[i];
    const uint32_t slot = di.state_index & (SL_MAX_CLASSES - 1);
    // Non-IP frames and malformed ones passed by config were not charged to
    // any budget: they are not paced either.
    const bool queued = queue && (di.action == SL_ACTION_PASS || di.action == SL_ACTION_MARK) &&
                        di.reason != SL_REASON_NON_IP && di.reason != SL_REASON_MALFORMED;
    if (!queued) {
      bump(c.model.packets[slot][di.verdict][di.reason]);
      if (di.is_start) bump(c.model.lookups[slot][di.verdict][di.reason]);
    }
    rte_mbuf* m = pkts[i];
    uint8_t* data = rte_pktmbuf_mtod(m, uint8_t*);
    uint8_t* end = data + rte_pktmbuf_data_len(m);
    switch (di.action) {
      case SL_ACTION_MARK:
        sl_mark_dscp(data, end, &meta[i], di.mark_dscp);
        [[fallthrough]];
      case SL_ACTION_PASS:
        if (queued) {
          QueueTag& t = *tag_of(e, m);
          t.arrival_tsc = tsc;
          t.state_index = static_cast<uint8_t>(slot);
          t.is_start = di.is_start;
          t.reason = di.reason;
          // Verified continuations go first; lookups, charged packets and
          // flows still being learned wait with their class.
          t.priority = di.is_start || di.verified == SL_FLOW_HIT_LEARNED
                           ? (prof.classes[di.class_id].priority & (SL_PRIORITIES - 1))
                           : 0;
          waiting[n_waiting++] = m;
        } else {
          in[n_in++] = m;
        }
        break;
      case SL_ACTION_RESET: {
        const uint32_t len = sl_build_reset(data, end, &meta[i]);
        if (len != 0 &&
            rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - len)) == 0) {
          out[n_out++] = m;
        } else {  // no room for a reset, or a segmented frame: shed silently
          rte_pktmbuf_free(m);
        }
        break;
      }
      default:
        rte_pktmbuf_free(m);
    }
  }
  if (n_waiting && !(scheduler && scheduler->send_now(s, waiting, n_waiting))) {
    for (uint16_t i = 0; i < n_waiting; i++) {
      const QueueTag& t = *tag_of(e, waiting[i]);
      if (rte_ring_sp_enqueue(e.rings[w][t.priority], waiting[i]) != 0) {
        count_queued(c.model, t, SL_VERDICT_SHED, SL_REASON_QUEUE_FULL);
        bump(c.queue_full[t.priority]);
        rte_pktmbuf_free(waiting[i]);
      }
    }
  }
  if (n_in)
    tx_all(e.port[kPortInside], static_cast<uint16_t>(w), in, n_in, c.tx_dropped[kPortInside]);
  if (n_out)
    tx_all(e.port[kPortOutside], static_cast<uint16_t>(w), out, n_out, c.tx_dropped[kPortOutside]);
  return true;
}

// Inside rx queue `w`: replies from the boundary go back out untouched; a
// frame that opens, closes or confirms a flow updates the table on the way.
bool pass_back(Engine& e, uint32_t w, const Snapshot& s) {
  rte_mbuf* pkts[kBurst];
  const uint16_t n = rte_eth_rx_burst(e.port[kPortInside], static_cast<uint16_t>(w), pkts, kBurst);
  if (n == 0) return false;
  const sl_profile& prof = s.profile.prof;
  const uint64_t seen = e.capture_clock ? e.capture_now_ns.load(std::memory_order_relaxed) : 0;
  const uint64_t now = seen != 0 ? seen : e.tsc_ns(rte_rdtsc());
  auto by_class = [&s](const sl_meta& m) { return classify(s, m); };
  FlowEvents& events = e.counters[w].model.flow_events;
  SharedState& st = e.shared;
  bool locked = false;
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t* data = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
    const uint32_t len = rte_pktmbuf_data_len(pkts[i]);
    sl_meta m;
    // Most of the return path needs no table: only SYN/FIN/RST, or any TCP
    // frame while learned flows may wait for confirmation.
    if (sl_parse(data, data + len, &m) != SL_PARSE_OK ||
        !sl_flow_inside_wants(&m, &prof, &st.boundary, now))
      continue;
    if (!locked) {
      rte_spinlock_lock(&st.lock);
      locked = true;
    }
    flow_inside(st.flows, prof, st.boundary, data, len, by_class, now, events);
  }
  if (locked) {
    for (uint32_t p = 0; p < SL_PRIORITIES; p++)
      bump(st.flow_entries[p], st.flows.size(p) - st.flow_entries[p]);
    rte_spinlock_unlock(&st.lock);
  }
  tx_all(e.port[kPortOutside], static_cast<uint16_t>(w), pkts, n,
         e.counters[w].tx_dropped[kPortOutside]);
  return true;
}

}  // namespace

int worker_main(void* arg) {
  const WorkerArg& wa = *static_cast<const WorkerArg*>(arg);
  Engine& e = *wa.engine;
  const uint32_t w = wa.id;
  rte_rcu_qsbr_thread_register(e.qsv, w);
  rte_rcu_qsbr_thread_online(e.qsv, w);
  {
    Scheduler scheduler(e);
    uint32_t idle = 0;
    while (e.running.load(std::memory_order_relaxed)) {
      const Snapshot* s = e.snapshot.load(std::memory_order_acquire);
      bool work = admit_burst(e, w, *s, w == 0 ? &scheduler : nullptr);
      work |= pass_back(e, w, *s);
      if (w == 0) work |= scheduler.poll(*s);
      rte_rcu_qsbr_quiescent(e.qsv, w);
      bump(e.counters[w].loops);
      if (work) {
        idle = 0;
      } else if (e.idle_sleep_us != 0 && ++idle > 64) {
        rte_rcu_qsbr_thread_offline(e.qsv, w);  // a swap need not wait for the nap
        rte_delay_us_sleep(e.idle_sleep_us);
        rte_rcu_qsbr_thread_online(e.qsv, w);
      }
    }
  }
  rte_rcu_qsbr_thread_offline(e.qsv, w);
  rte_rcu_qsbr_thread_unregister(e.qsv, w);
  return 0;
}

}  // namespace sluice::dpdk
