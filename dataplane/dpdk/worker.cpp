// SPDX-License-Identifier: Apache-2.0
// The lcore loop: admission on the outside rx queues, pass-through of the
// inside rx queues, and the worker's pacer (scheduler.hpp). See engine.hpp.
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <cstring>

#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/engine.hpp"
#include "dataplane/dpdk/scheduler.hpp"
#include "dataplane/model/classify.h"
#include "dataplane/model/credit.h"
#include "dataplane/model/decide.h"
#include "dataplane/model/flow.h"
#include "dataplane/model/parse.h"
#include "dataplane/model/rewrite.h"

namespace sluice::dpdk {
namespace {

using Op = SourceSets::Op;

uint32_t classify(const Snapshot& s, const sl_meta& m, uint32_t src, uint32_t dst) {
  const sl_profile& prof = s.profile.prof;
  const uint32_t port =
      (prof.flags & SL_PROFILE_USES_PORTS) && m.has_ports ? s.profile.port_mask[m.dport] : 0;
  return sl_classify(&prof, &m, src, dst, port);
}

// One packet (an ICMP error's quoted header, the return path).
uint32_t classify(const Snapshot& s, const sl_meta& m) {
  const sl_profile& prof = s.profile.prof;
  const uint32_t src =
      (prof.flags & SL_PROFILE_USES_SRC) ? s.src_fib->lookup(m.family, m.src_be) : 0;
  const uint32_t dst =
      (prof.flags & SL_PROFILE_USES_DST) ? s.dst_fib->lookup(m.family, m.dst_be) : 0;
  return classify(s, m, src, dst);
}

// A burst: its addresses looked up in bulk, one call per table and family.
void classify_burst(const Snapshot& s, const sl_meta* meta, const int* parsed, uint16_t n,
                    uint32_t* cls) {
  const sl_profile& prof = s.profile.prof;
  bool want[kBurst];
  uint32_t src[kBurst] = {}, dst[kBurst] = {};
  for (uint16_t i = 0; i < n; i++) want[i] = parsed[i] == SL_PARSE_OK;
  if (prof.flags & SL_PROFILE_USES_SRC) s.src_fib->lookup_burst(meta, want, n, true, src);
  if (prof.flags & SL_PROFILE_USES_DST) s.dst_fib->lookup_burst(meta, want, n, false, dst);
  for (uint16_t i = 0; i < n; i++)
    cls[i] = want[i] ? classify(s, meta[i], src[i], dst[i]) : prof.n_classes - 1;
}

// sluicectl capture: copies the decided frames the filter asks for (1 in
// sample_every of them, per worker) into the capture ring, before any
// action rewrites them.
__attribute__((noinline, cold)) void sample(Engine& e, rte_mbuf* const* pkts, const sl_decision* d,
                                            uint16_t n, uint64_t tsc) {
  const sl_capture_cfg& c = e.sample_cfg;
  static thread_local uint32_t skipped = 0;
  for (uint16_t i = 0; i < n; i++) {
    const uint32_t slot = d[i].state_index & (SL_MAX_CLASSES - 1);
    if (!sl_capture_wants(&c, slot, d[i].verdict, d[i].reason)) continue;
    if (c.sample_every > 1 && ++skipped % c.sample_every != 0) continue;
    sl_capture_rec r{};
    r.ts_ns = e.tsc_ns(tsc);
    r.wire_len = rte_pktmbuf_pkt_len(pkts[i]);
    r.cap_len = std::min<uint32_t>({rte_pktmbuf_data_len(pkts[i]), c.snaplen, SL_CAPTURE_SNAP});
    std::memcpy(r.data, rte_pktmbuf_mtod(pkts[i], const uint8_t*), r.cap_len);
    r.class_state = static_cast<uint8_t>(slot);
    r.verdict = d[i].verdict;
    r.reason = d[i].reason;
    if (rte_ring_mp_enqueue_elem(e.sample_ring, &r, sizeof(r)) != 0)
      e.sample_lost.fetch_add(1, std::memory_order_relaxed);
  }
}

// The learning window opened (DpdkDataplane::learn_missed_flows), once,
// with the decisions' clock: the XDP standby admitted flows meanwhile that
// this table never saw; their next packets are learned, not charged.
__attribute__((noinline, cold)) void learn_missed(Engine& e, const sl_profile& prof, uint64_t now) {
  if (!e.learn_missed.exchange(false)) return;
  rte_spinlock_lock(&e.shared.lock);
  sl_learning_open(&e.shared.boundary, &prof, now);
  rte_spinlock_unlock(&e.shared.lock);
}

// Under the state lock, before the sticky controller reads class cp's
// counts: every worker's sheds made without the lock, into its state.
void take_sticky(Engine& e, const sl_class_params& cp, sl_class_state& cs) {
  sl_sticky_cpu taken{};
  for (WorkerCredits& wc : e.credits)
    sl_sticky_take(&taken, &wc.sticky[cp.state_index & (SL_MAX_CLASSES - 1)]);
  sl_sticky_merge(&cs, &cp, &taken);
}

// The lock decides a packet this worker's credits could not (a budget's
// refill, a shed the state leaves in doubt), in credit.h's order as the
// reference model runs it, with its source's token taken: a peeked one now
// (another worker may have taken the last meanwhile: then refused by it, as
// the take says). Returns the source's answer the decision had. Not inlined
// (cold), nor are to_reset and sample: the burst's loop, which every packet
// runs, is half the code without them (18 KB, was 35).
__attribute__((noinline, cold)) int decide_locked(Engine& e, uint32_t w, const sl_profile& prof,
                                                  const sl_meta& m, int parsed, uint32_t cls,
                                                  const sl_source_key& skey, uint32_t sset,
                                                  int source, int flow_hit, uint64_t now,
                                                  bool* locked, sl_decision* d) {
  SharedState& st = e.shared;
  const sl_class_params& cp = prof.classes[cls];
  sl_class_state& cs = st.classes[cp.state_index & (SL_MAX_CLASSES - 1)];
  sl_cpu_credits& credits = e.credits[w].classes;
  sl_sticky_cpu* sticky = &e.credits[w].sticky[cp.state_index & (SL_MAX_CLASSES - 1)];
  if (source == SL_SOURCE_PEEKED)
    source = st.sources.op_in(sset, skey, cp, now, Op::kTakePeeked, w);
  if (!*locked) {
    rte_spinlock_lock(&st.lock);
    *locked = true;
  }
  if (sl_decide_unlocked(&prof, &m, parsed, cls, &cs, &st.boundary, source, flow_hit, &credits, now,
                         d) ||
      sl_shed_unlocked(&prof, &m, parsed, cls, &cs, &st.boundary, sticky, source, flow_hit, now, d))
    return source;
  if (sl_sticky_due(&prof, &cp, &cs, now)) take_sticky(e, cp, cs);
  sl_credit_reclaim(&prof, &m, parsed, cls, &cs, &st.boundary, &credits, now);
  sl_decide_source(&prof, &m, parsed, cls, &cs, &st.boundary, nullptr, source, flow_hit, now, d);
  sl_credit_draw(&prof, &m, parsed, cls, &cs, &st.boundary, &credits, now, d);
  sl_sticky_settle(&prof, &cp, &cs, &st.boundary, now);
  return source;
}

// Outside rx queue `w`: the admission decision for one burst.
// `scheduler`: the worker's, which may send a burst straight out (send_now).
// Flattened: the parser and the model's decisions inlined into the burst's
// loops (gcc left sl_parse a call a packet; dpdk_bench (a) +1-3%,
// docs/performance.md).
__attribute__((flatten)) bool admit_burst(Engine& e, uint32_t w, const Snapshot& s,
                                          Scheduler& scheduler) {
  rte_mbuf* pkts[kBurst];
  const uint16_t n = rte_eth_rx_burst(e.port[kPortOutside], static_cast<uint16_t>(w), pkts, kBurst);
  if (n == 0) return false;
  const uint64_t tsc = rte_rdtsc();
  const uint64_t burst_ns = e.tsc_ns(tsc);
  const sl_profile& prof = s.profile.prof;

  sl_meta meta[kBurst];
  int parsed[kBurst];
  uint32_t cls[kBurst];
  uint64_t now[kBurst];
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t* data = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
    parsed[i] = sl_parse(data, data + rte_pktmbuf_data_len(pkts[i]), &meta[i]);
  }
  classify_burst(s, meta, parsed, n, cls);
  // The lines the decisions will wait on, asked for now (l3fwd's prefetch
  // across the burst) and found later by the hashes kept here: a lookup's
  // per-source set, and the flow table's set that a SYN writes or a
  // continuation looks up (docs/performance.md: each waited-on line cost
  // more than the rest of the decision).
  sl_source_key skey[kBurst];
  uint32_t sset[kBurst];      // skey's set in the per-source table
  bool skeyed[kBurst];        // a lookup with a per-source budget: skey, sset made
  uint64_t tcp_hash[kBurst];  // FlowSets::hash(sl_flow_key_tcp(meta)), 0: none
  const bool flows_kept = sl_flows_kept(&prof);
  FlowShards::View flows = e.shared.flows.of(w);
  for (uint16_t i = 0; i < n; i++) {
    tcp_hash[i] = 0;
    skeyed[i] = false;
    if (parsed[i] != SL_PARSE_OK) continue;
    const sl_meta& m = meta[i];
    const sl_class_params& cp = prof.classes[cls[i]];
    if (m.is_start && cp.src_bucket.enabled) {
      sl_source_key_make(&skey[i], &m, &cp);
      sset[i] = e.shared.sources.set_of(skey[i]);
      e.shared.sources.prefetch(sset[i]);
      skeyed[i] = true;
    }
    if (!flows_kept) continue;
    uint32_t part;
    if (m.is_start && m.l4_proto == SL_IPPROTO_TCP && m.frag != SL_FRAG_LATER)
      part = cp.priority & (SL_PRIORITIES - 1);  // the partition its flow goes in
    else if (sl_flow_lookup_kind(&m) == SL_FLOW_LOOKUP_TCP && cp.flow_parts != 0)
      part = static_cast<uint32_t>(__builtin_ctz(cp.flow_parts));  // the first looked in
    else
      continue;
    sl_flow_key key;
    sl_flow_key_tcp(&key, &m);
    tcp_hash[i] = FlowSets::hash(key);
    flows.prefetch_set(part, tcp_hash[i]);
  }
  for (uint16_t i = 0; i < n; i++) {
    now[i] = burst_ns;
    if (e.capture_clock && e.timestamp_offset >= 0 && (pkts[i]->ol_flags & e.timestamp_flag))
      now[i] =
          *RTE_MBUF_DYNFIELD(pkts[i], e.timestamp_offset, const uint64_t*) * e.timestamp_unit_ns;
  }

  if (e.learn_missed.load(std::memory_order_relaxed)) learn_missed(e, prof, now[0]);

  if (e.capture_clock) {  // the latest time any worker saw: a max, never back
    uint64_t seen = e.capture_now_ns.load(std::memory_order_relaxed);
    while (now[n - 1] > seen &&
           !e.capture_now_ns.compare_exchange_weak(seen, now[n - 1], std::memory_order_relaxed)) {
    }
  }
  sl_decision d[kBurst];
  SharedState& st = e.shared;
  auto by_class = [&s](const sl_meta& m) { return classify(s, m); };
  sl_counters& counters = e.counters[w].model;
  sl_cpu_credits& credits = e.credits[w].classes;
  sl_sticky_cpu* sticky = e.credits[w].sticky;
  // The state lock is taken at the first packet this worker's credits cannot
  // decide, and held for the rest of the burst.
  bool locked = false;
  for (uint16_t i = 0; i < n; i++) {
    const sl_class_params& cp = prof.classes[cls[i]];
    sl_class_state& cs = st.classes[cp.state_index & (SL_MAX_CLASSES - 1)];
    if (parsed[i] != SL_PARSE_OK) {
      // Non-IP and malformed frames touch no budget: decided without the
      // state lock (one of them per burst took it for the whole burst, and
      // the workers decided one at a time).
      sl_decide_unparsed(&prof, parsed[i], cls[i], &d[i]);
      continue;
    }
    flows.tcp_hash = tcp_hash[i];
    int flow_hit = 0;
    if (!meta[i].is_start)
      flow_hit = flow_verify(flows, prof, meta[i], rte_pktmbuf_mtod(pkts[i], const uint8_t*),
                             rte_pktmbuf_data_len(pkts[i]), cls[i], by_class, now[i], counters);
    // The source's own budget first, by compare-and-swap (source_sets.hpp):
    // its token taken where this worker's credit could admit the lookup,
    // else only peeked at (it has one), so that a lookup the class then
    // sheds without the lock writes nothing; the token is taken when the
    // lock decides. As the XDP program does.
    int source = SL_SOURCE_HERE;
    bool done = false;
    if (sl_charged(&prof, &meta[i], flow_hit) && cp.src_bucket.enabled) {
      if (!skeyed[i]) {  // a charged continuation
        sl_source_key_make(&skey[i], &meta[i], &cp);
        sset[i] = st.sources.set_of(skey[i]);
      }
      const bool ready =
          (meta[i].is_start || (sl_charged_unlocked(&prof, &st.boundary, flow_hit, now[i]) &&
                                sl_charged_on_credit(&prof, &cp, &cs, &st.boundary))) &&
          sl_credit_ready(&prof, cls[i], &cs, &st.boundary, &credits, now[i]);
      source = st.sources.op_in(sset[i], skey[i], cp, now[i], ready ? Op::kTake : Op::kPeek, w);
      if (ready && source == SL_SOURCE_TAKEN) {
        sl_credit_spend_lookup(&prof, &meta[i], cls[i], &credits, &d[i]);
        done = true;
      } else if (source == SL_SOURCE_TAKEN) {
        source = SL_SOURCE_PEEKED;
      }
    }
    if (!done)
      done = source != SL_SOURCE_PEEKED &&
             sl_decide_unlocked(&prof, &meta[i], parsed[i], cls[i], &cs, &st.boundary, source,
                                flow_hit, &credits, now[i], &d[i]);
    if (!done)
      done = sl_shed_unlocked(&prof, &meta[i], parsed[i], cls[i], &cs, &st.boundary,
                              &sticky[cp.state_index & (SL_MAX_CLASSES - 1)],
                              source == SL_SOURCE_PEEKED ? SL_SOURCE_TAKEN : source, flow_hit,
                              now[i], &d[i]);
    if (!done)
      source = decide_locked(e, w, prof, meta[i], parsed[i], cls[i], skey[i], sset[i], source,
                             flow_hit, now[i], &locked, &d[i]);
    if (source == SL_SOURCE_TAKEN && !sl_source_used(&d[i]))
      st.sources.op_in(sset[i], skey[i], cp, now[i], Op::kGiveBack, w);
    flow_apply_ops(flows, prof, meta[i], d[i], by_class, now[i], counters);
  }
  if (locked) rte_spinlock_unlock(&st.lock);

  if (e.sample_armed.load(std::memory_order_acquire)) sample(e, pkts, d, n, tsc);

  // Without a packet budget there is nothing to pace to: admitted packets go
  // straight out, unless this worker still holds packets from a paced
  // profile, in its rings or refused by the device (they would be
  // overtaken).
  const bool queue = s.paced || scheduler.holds();

  LcoreCounters& c = e.counters[w];
  rte_mbuf* in[kBurst];
  uint16_t n_in = 0;
  rte_mbuf* waiting[kBurst];     // admitted, paced
  QueueTag waiting_tag[kBurst];  // theirs, in the mbufs only if they wait in a ring
  uint16_t n_waiting = 0;
  uint32_t bottom = 0;  // the lowest priority among them (the largest number)
  rte_mbuf* out[kBurst];
  uint16_t n_out = 0;
  for (uint16_t i = 0; i < n; i++) {
    const sl_decision& di = d[i];
    const uint32_t slot = di.state_index & (SL_MAX_CLASSES - 1);
    // Non-IP frames and malformed ones passed by config were not charged to
    // any budget: they are not paced either. Nor is a shed passed marked
    // (on_shed = "mark"): it took no packet token (XDP passes it unpaced),
    // and is counted as the shed it is, not as what leaves the queues. Nor
    // what shadow mode passes in place of a shed: shadow admits everything
    // (in the rings, the pacer and the late-frame drop shed it, and it took
    // pace and ring room from frames the decision admitted). These may
    // overtake queued frames (of a marked connection's admitted ones, too):
    // they are what the boundary was not to carry.
    const bool queued = queue && di.verdict == SL_VERDICT_ADMITTED && !di.shadow &&
                        (di.action == SL_ACTION_PASS || di.action == SL_ACTION_MARK) &&
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
          QueueTag& t = waiting_tag[n_waiting];
          t.arrival_tsc = tsc;
          t.state_index = static_cast<uint8_t>(slot);
          t.state_epoch = prof.classes[di.class_id].state_epoch;
          t.is_start = di.is_start;
          t.reason = di.reason;
          // Verified continuations go first; lookups and flows past their
          // packet rate wait with their class; packets charged as lookups
          // and flows still being learned (unproven: anyone can forge them)
          // wait last, as the boundary's reserves hold them (sl_reserve_prio).
          t.priority = di.reason == SL_REASON_UNVERIFIED || di.verified == SL_FLOW_HIT_LEARNED
                           ? SL_PRIORITIES - 1
                       : di.is_start || di.verified == SL_FLOW_HIT_OVER
                           ? (prof.classes[di.class_id].priority & (SL_PRIORITIES - 1))
                           : 0;
          bottom = std::max<uint32_t>(bottom, t.priority);
          waiting[n_waiting++] = m;
        } else {
          in[n_in++] = m;
        }
        break;
      case SL_ACTION_RESET:
        if (to_reset(m, meta[i])) out[n_out++] = m;
        break;
      default:
        rte_pktmbuf_free(m);
    }
  }
  // At once only if its lowest priority may have the tokens (the whole
  // burst goes out together); else through the rings, level by level.
  if (n_waiting && !scheduler.send_now(s, waiting, waiting_tag, n_waiting, bottom)) {
    for (uint16_t i = 0; i < n_waiting; i++) {
      const QueueTag& t = *tag_of(e, waiting[i]) = waiting_tag[i];
      if (rte_ring_sp_enqueue(e.rings[w][t.priority], waiting[i]) != 0) {
        count_queued(s, c.model, t, SL_VERDICT_SHED, SL_REASON_QUEUE_FULL);
        bump(c.queue_full[t.priority]);
        if (shed_reset(s, t, waiting[i])) out[n_out++] = waiting[i];
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
  if (!sl_flows_kept(&prof)) {  // no table to open, close or confirm flows in
    tx_all(e.port[kPortOutside], static_cast<uint16_t>(w), pkts, n,
           e.counters[w].tx_dropped[kPortOutside]);
    return true;
  }
  const uint64_t seen = e.capture_clock ? e.capture_now_ns.load(std::memory_order_relaxed) : 0;
  const uint64_t now = seen != 0 ? seen : e.tsc_ns(rte_rdtsc());
  auto by_class = [&s](const sl_meta& m) { return classify(s, m); };
  sl_counters& counters = e.counters[w].model;
  SharedState& st = e.shared;
  FlowShards::View flows = st.flows.of(w);
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t* data = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
    const uint32_t len = rte_pktmbuf_data_len(pkts[i]);
    sl_meta m;
    // Most of the return path needs no table: only SYN/FIN/RST, or any TCP
    // frame while learned flows may wait for confirmation.
    if (sl_parse(data, data + len, &m) != SL_PARSE_OK ||
        !sl_flow_inside_wants(&m, &prof, &st.boundary, now))
      continue;
    flow_inside(flows, prof, st.boundary, data, len, by_class, now, counters);
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
    Scheduler scheduler(e, w);
    uint32_t idle = 0;
    while (e.running.load(std::memory_order_relaxed)) {
      const Snapshot* s = e.snapshot.load(std::memory_order_acquire);
      bool work = admit_burst(e, w, *s, scheduler);
      work |= pass_back(e, w, *s);
      work |= scheduler.poll(*s);
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
