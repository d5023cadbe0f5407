// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/dpdk_dataplane.hpp"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "dataplane/common/progress_watch.hpp"
#include "dataplane/common/slot_book.hpp"
#include "dataplane/dpdk/dpdk_impl.hpp"
#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/engine.hpp"
#include "dataplane/dpdk/flow_keep.hpp"
#include "dataplane/dpdk/port.hpp"
#include "dataplane/model/bucket.h"

namespace sluice {

using dpdk::Engine;
using dpdk::kPortInside;
using dpdk::kPortOutside;
using dpdk::Snapshot;

namespace {

// How many packets may wait in all queues together: max_queue_delay of work
// at the paced rate, and no more than the rings hold.
uint64_t depth_limit(uint64_t rate, uint64_t delay_ns, uint64_t ring_capacity) {
  const unsigned __int128 d = static_cast<unsigned __int128>(rate) * delay_ns / SL_NS_PER_SEC;
  return std::clamp<uint64_t>(static_cast<uint64_t>(std::min<unsigned __int128>(d, UINT64_MAX)), 1,
                              ring_capacity);
}

}  // namespace

sl_counters DpdkDataplane::Impl::sum_counters() const {
  sl_counters sum{};
  for (const dpdk::LcoreCounters& c : engine.counters) {
    for (int i = 0; i < SL_MAX_CLASSES; i++)
      for (int v = 0; v < SL_VERDICT_COUNT; v++)
        for (int r = 0; r < SL_REASON_COUNT; r++) {
          sum.packets[i][v][r] += dpdk::load(c.model.packets[i][v][r]);
          sum.lookups[i][v][r] += dpdk::load(c.model.lookups[i][v][r]);
        }
    for (int p = 0; p < SL_PRIORITIES; p++)
      for (int e = 0; e < SL_FLOW_EV_COUNT; e++)
        sum.flow_events[p][e] += dpdk::load(c.model.flow_events[p][e]);
    // The backend signal is all counts.
    const auto* in = reinterpret_cast<const uint64_t*>(&c.model.backend);
    auto* out = reinterpret_cast<uint64_t*>(&sum.backend);
    for (std::size_t w = 0; w < sizeof(sl_backend_signal) / sizeof(uint64_t); w++)
      out[w] += dpdk::load(in[w]);
  }
  return sum;
}

std::unique_ptr<Snapshot> DpdkDataplane::Impl::make_snapshot(const CompiledProfile& profile,
                                                             uint64_t generation,
                                                             SlotAssignment* assigned,
                                                             std::string* error) const {
  const Snapshot* live = engine.snapshot.load(std::memory_order_acquire);
  sl_profile none{};
  SlotAssignment& slots = *assigned;
  if (!book.assign(profile, live ? live->profile.prof : none, generation, &slots, error))
    return nullptr;
  auto s = std::make_unique<Snapshot>();
  s->profile = profile;
  s->profile.prof = slots.prof;
  for (uint32_t c = 0; c < slots.prof.n_classes && c < SL_MAX_CLASSES; c++)
    s->slot_epoch[slots.prof.classes[c].state_index & (SL_MAX_CLASSES - 1)] =
        slots.prof.classes[c].state_epoch;
  // Workers draw per-CPU credits (dataplane/model/credit.h) instead of
  // taking the state lock for every lookup: with several, the lock would be
  // contended; with one, the exact decision costs ~25 ns more per packet
  // than a credit (docs/performance.md), and a credit is the same decision
  // while the budgets have room.
  s->profile.prof.credit_cpus = static_cast<__u16>(std::max<uint32_t>(engine.workers, 1));
  // The prefix tables: the live ones when the prefixes did not change.
  std::string why;
  if (live && live->profile.src_prefixes == profile.src_prefixes)
    s->src_fib = live->src_fib;
  else
    s->src_fib = dpdk::Fib::build(profile.src_prefixes, &why);
  if (s->src_fib && live && live->profile.dst_prefixes == profile.dst_prefixes)
    s->dst_fib = live->dst_fib;
  else if (s->src_fib)
    s->dst_fib = dpdk::Fib::build(profile.dst_prefixes, &why);
  if (!s->dst_fib) {
    *error = "source or destination prefixes: " + why;
    return nullptr;
  }
  s->generation = generation;
  const sl_bucket_params& packets = slots.prof.boundary_packets;
  s->paced = packets.enabled != 0;
  // Unpaced too: frames that wait behind ones a full tx queue refused
  // (after a retune from a packet budget) are held to the same bound.
  s->max_delay_tsc = static_cast<uint64_t>(
      static_cast<unsigned __int128>(profile.max_queue_delay_ns) * engine.tsc_hz / SL_NS_PER_SEC);
  if (s->paced) {
    s->pace_rate = packets.rate_per_sec;
    s->pace_interval = std::max<uint64_t>(
        static_cast<uint64_t>(static_cast<unsigned __int128>(engine.tsc_hz) * dpdk::kPaceSub /
                              std::max<uint64_t>(packets.rate_per_sec, 1)),
        1);
    // 5 ms of packets back to back: what a worker that lost its CPU for a
    // scheduler time slice (a few ms on a shared core) catches up on, so the
    // pace keeps its rate; a stricter allowance lost 40% of it to one busy
    // process on the worker's core.
    s->pace_cap = std::max<uint64_t>(packets.rate_per_sec / 200, 1);
    s->depth_limit = depth_limit(
        packets.rate_per_sec, profile.max_queue_delay_ns,
        static_cast<uint64_t>(settings.dpdk_queue_size) * engine.workers * SL_PRIORITIES);
  }
  return s;
}

// Publishes `next` and frees the old snapshot once no lcore can still hold
// it (at once when none runs; else within kRetireWait, or at a later
// retune). The slots given to new classes are booked just before the
// switch (stats, which read the book, wait for the mutex this runs under).
void DpdkDataplane::Impl::publish(std::unique_ptr<Snapshot> next, const SlotAssignment& slots) {
  book.give(next->profile, slots, sum_counters());
  const Snapshot* old = engine.snapshot.exchange(next.release(), std::memory_order_acq_rel);
  if (old == nullptr) return;
  if (!launched) {
    delete old;
    return;
  }
  retired.push_back({old, rte_rcu_qsbr_start(engine.qsv)});
  free_retired(dpdk::kRetireWait);
}

// Whether every worker passed a quiescent point since `token` was taken,
// waiting up to `limit` (napping: on a machine with few CPUs a spin would
// take the one a worker needs to get there).
bool DpdkDataplane::Impl::quiescent_since(uint64_t token, std::chrono::milliseconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (rte_rcu_qsbr_check(engine.qsv, token, false) != 1) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  return true;
}

void DpdkDataplane::Impl::free_retired(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!retired.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!quiescent_since(retired.front().token, std::max(left, std::chrono::milliseconds(0))))
      return;  // tokens grow: the later ones wait for the same worker
    delete retired.front().snapshot;
    retired.erase(retired.begin());
  }
}

DpdkDataplane::DpdkDataplane(DataplaneSettings settings)
    : impl_(std::make_unique<Impl>(std::move(settings))) {}

DpdkDataplane::~DpdkDataplane() { stop(); }

bool DpdkDataplane::prepare(std::string* error) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  return prepare_locked(error);
}

bool DpdkDataplane::prepare_locked(std::string* error) {
  Impl& im = *impl_;
  if (im.prepared) return true;
  const DataplaneSettings& s = im.settings;
  Engine& e = im.engine;
  auto fail = [&](const std::string& why) {
    *error = "dpdk: " + why;
    im.release();
    dpdk::eal_stop();
    return false;
  };
  if (s.outside.empty() || s.inside.empty())
    return fail(
        "dataplane.outside and dataplane.inside are both required (the fast path is inline)");
  if (s.dpdk_workers == 0 || s.dpdk_queue_size == 0)  // the config loader checks the ranges
    return fail("dpdk_workers and dpdk_queue_size must be at least 1");
  if (s.outside.substr(0, s.outside.find(',')) == s.inside.substr(0, s.inside.find(',')) ||
      endpoint_interface(s.outside) == endpoint_interface(s.inside))
    return fail("dataplane.outside and dataplane.inside name the same port");
  // Every rx and tx descriptor of both ports can hold an mbuf, plus the
  // per-lcore mempool caches and a burst in flight per worker.
  const uint64_t need = 2ULL * s.dpdk_workers * (2 * dpdk::kDescriptors) +
                        (s.dpdk_workers + 1ULL) * dpdk::kMempoolCache + 2ULL * dpdk::kBurst;
  if (s.dpdk_mbufs < need)
    return fail("dpdk_mbufs = " + std::to_string(s.dpdk_mbufs) + " is too few for " +
                std::to_string(s.dpdk_workers) +
                " worker(s): the ports' descriptors and caches alone take " + std::to_string(need) +
                ", and queued packets need more");
  std::string why;
  if (!dpdk::eal_start(s.dpdk_args, s.dpdk_workers, &why)) return fail(why);
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) {
    if (im.lcores.size() < s.dpdk_workers) im.lcores.push_back(lc);
  }
  if (im.lcores.size() < s.dpdk_workers)
    return fail("dpdk_workers = " + std::to_string(s.dpdk_workers) + " but the EAL has " +
                std::to_string(im.lcores.size()) +
                " worker lcores (check -l/--lcores in dpdk_args)");
  e.workers = s.dpdk_workers;
  e.tsc_hz = rte_get_tsc_hz();
  e.tsc_base = rte_rdtsc();
  e.ns_mult =
      static_cast<uint64_t>((static_cast<unsigned __int128>(SL_NS_PER_SEC) << 32) / e.tsc_hz);
  e.idle_sleep_us = s.dpdk_idle_sleep_us;
  e.tag_offset = dpdk::queue_tag_offset();

  im.pool = rte_pktmbuf_pool_create("sluice_pkts", s.dpdk_mbufs, dpdk::kMempoolCache, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  if (im.pool == nullptr)
    return fail(
        "cannot allocate " + std::to_string(s.dpdk_mbufs) +
        " mbufs (dpdk_mbufs; raise -m in dpdk_args or use hugepages): " + rte_strerror(rte_errno));
  const std::string specs[2] = {s.outside, s.inside};
  const char* roles[2] = {"outside", "inside"};
  const uint16_t rss_pattern = dpdk::rss_pattern_for(s.dpdk_rss_seed);  // one for both ports
  for (int p = 0; p < 2; p++) {
    dpdk::PortOptions o;
    o.rss_pattern = rss_pattern;
    o.role = roles[p];
    o.spec = specs[p];
    o.queues = static_cast<uint16_t>(s.dpdk_workers);
    o.rx_timestamp = p == kPortOutside && s.dpdk_clock == DpdkClock::capture;
    o.pool = im.pool;
    if (!im.ports[p].open(o, &why)) return fail(why);
    e.port[p] = im.ports[p].id();
  }
  e.capture_clock = s.dpdk_clock == DpdkClock::capture;
  e.timestamp_offset = im.ports[kPortOutside].rx_timestamp_offset();
  e.timestamp_flag = im.ports[kPortOutside].rx_timestamp_flag();
  e.timestamp_unit_ns = im.ports[kPortOutside].rx_timestamp_unit_ns();

  e.rings.resize(e.workers);
  e.counters = std::vector<dpdk::LcoreCounters>(e.workers);
  e.credits = std::vector<dpdk::WorkerCredits>(e.workers);
  for (uint32_t w = 0; w < e.workers; w++) {
    for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
      const std::string name = "sluice_q" + std::to_string(w) + "_" + std::to_string(p);
      e.rings[w][p] = rte_ring_create(name.c_str(), s.dpdk_queue_size, SOCKET_ID_ANY,
                                      RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
      if (e.rings[w][p] == nullptr)
        return fail("cannot create priority ring " + name + ": " + rte_strerror(rte_errno));
    }
  }
  const size_t qsv_size = rte_rcu_qsbr_get_memsize(e.workers);
  e.qsv = static_cast<rte_rcu_qsbr*>(rte_zmalloc("sluice_qsbr", qsv_size, RTE_CACHE_LINE_SIZE));
  if (e.qsv == nullptr || rte_rcu_qsbr_init(e.qsv, e.workers) != 0)
    return fail("cannot set up RCU for config swaps");
  im.prepared = true;
  return true;
}

bool DpdkDataplane::start(const CompiledProfile& profile, uint64_t generation, std::string* error) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  Engine& e = im.engine;
  if (!prepare_locked(error)) return false;
  auto fail = [&](const std::string& why) {
    *error = "dpdk: " + why;
    im.release();
    dpdk::eal_stop();
    return false;
  };
  std::string why;
  SlotAssignment slots;
  std::unique_ptr<Snapshot> first = im.make_snapshot(profile, generation, &slots, &why);
  if (!first) return fail(why);
  im.publish(std::move(first), slots);
  im.take_kept_flows();

  e.running.store(true);
  im.args.resize(e.workers);
  im.launched = true;  // from here on, stopping means waiting for the lcores
  for (uint32_t w = 0; w < e.workers; w++) {
    im.args[w] = {&e, w};
    if (rte_eal_remote_launch(dpdk::worker_main, &im.args[w], im.lcores[w]) != 0) {
      return fail("cannot launch worker on lcore " + std::to_string(im.lcores[w]));
    }
  }
  return true;
}

bool DpdkDataplane::check_profile(const CompiledProfile& profile, std::string* error) const {
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  SlotAssignment slots;
  std::string why;
  if (im.make_snapshot(profile, 1, &slots, &why)) return true;
  *error = "dpdk: " + why;
  return false;
}

bool DpdkDataplane::apply(const CompiledProfile& profile, uint64_t generation, std::string* error) {
  return apply_with(
      profile, generation, [](std::string*) { return true; }, error);
}

bool DpdkDataplane::apply_with(const CompiledProfile& profile, uint64_t generation,
                               const std::function<bool(std::string*)>& also, std::string* error) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  if (im.engine.snapshot.load() == nullptr) {
    *error = "dpdk: not started";
    return false;
  }
  // A worker that has not passed a quiescent point since several retunes
  // ago stalled (sluicectl status names it): the change waits rather than
  // keep every snapshot it might still read.
  im.free_retired(std::chrono::milliseconds(0));
  if (im.retired.size() >= dpdk::kMaxRetired) {
    *error = "dpdk: a worker has not polled since " + std::to_string(im.retired.size()) +
             " changes ago (stalled); the change waits until it polls again";
    return false;
  }
  SlotAssignment slots;
  std::unique_ptr<Snapshot> next = im.make_snapshot(profile, generation, &slots, error);
  if (!next || !also(error)) return false;
  im.publish(std::move(next), slots);
  return true;
}

DataplaneStats DpdkDataplane::stats() const {
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  const Engine& e = im.engine;
  DataplaneStats st;
  st.mode = "dpdk";
  st.kept_flows = im.kept_flows;
  st.kept_flows_refused = im.kept_flows_refused;
  const Snapshot* s = e.snapshot.load(std::memory_order_acquire);
  if (s == nullptr) {
    st.healthy = false;
    st.unhealthy = "not started";
    return st;
  }
  st.healthy = im.launched && e.running.load();
  if (!st.healthy) st.unhealthy = "the workers were stopped";
  for (std::size_t w = 0; w < im.lcores.size(); w++) {
    if (rte_eal_get_lcore_state(im.lcores[w]) != RUNNING) {
      st.healthy = false;
      st.unhealthy = "worker " + std::to_string(w) + " (lcore " + std::to_string(im.lcores[w]) +
                     ") is not running";
    }
  }
  // A worker stuck in a loop, or spinning on a lock, is RUNNING to EAL: its
  // polling loops tell.
  if (im.launched) {
    const ProgressWatch::Clock::time_point now = ProgressWatch::Clock::now();
    for (std::size_t w : im.progress.stalled(worker_loops(), now)) {
      st.healthy = false;
      st.unhealthy = "worker " + std::to_string(w) +
                     (w < im.lcores.size() ? " (lcore " + std::to_string(im.lcores[w]) + ")" : "") +
                     " has not polled for " +
                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        im.progress.still_for(w, now))
                                        .count()) +
                     " ms";
    }
  }
  st.generation = s->generation;
  st.attach = std::to_string(e.workers) + (e.workers == 1 ? " worker" : " workers");
  const sl_counters counts = im.sum_counters();
  const sl_profile& prof = s->profile.prof;
  st.classes = im.book.class_stats(prof, counts);
  // Read without the fast path's lock (a reader preempted while holding it
  // would stall every worker): each field is one aligned word, and figures
  // a moment apart are good enough for stats.
  // Tokens as the next decision would find them, on the workers' clock.
  const uint64_t now =
      e.capture_clock ? e.capture_now_ns.load(std::memory_order_relaxed) : e.tsc_ns(rte_rdtsc());
  for (uint32_t c = 0; c < prof.n_classes && c < SL_MAX_CLASSES; c++) {
    const sl_class_params& cp = prof.classes[c];
    const sl_class_state& cls = e.shared.classes[cp.state_index & (SL_MAX_CLASSES - 1)];
    const bool made = dpdk::load(cls.epoch) == cp.state_epoch;
    st.classes[c].bucket_tokens = sl_bucket_whole_tokens(&cls.bucket, &cp.bucket, made, now);
    st.classes[c].sticky_threshold = made ? dpdk::load(cls.threshold) : SL_RANK_ONE;
  }
  const int boundary_made = dpdk::load(e.shared.boundary.epoch) == prof.boundary_epoch;
  st.boundary_lookup_tokens = sl_bucket_whole_tokens(&e.shared.boundary.lookups,
                                                     &prof.boundary_lookups, boundary_made, now);
  st.boundary_packet_tokens = sl_bucket_whole_tokens(&e.shared.boundary.packets,
                                                     &prof.boundary_packets, boundary_made, now);
  st.source_table_capacity = e.shared.sources.capacity();
  // Evictions first: a worker counts a source's insert before its eviction,
  // so the inserts read after them are never fewer.
  uint64_t inserts = 0;
  for (uint32_t w = 0; w < e.workers; w++)
    st.source_table_evictions += e.shared.sources.evictions(w);
  for (uint32_t w = 0; w < e.workers; w++) inserts += e.shared.sources.inserts(w);
  st.source_table_entries = std::min(inserts - st.source_table_evictions, st.source_table_capacity);
  st.flow_table_capacity = e.shared.flows.capacity();
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    st.flow_entries[p] = e.shared.flows.size(p);
    for (uint32_t ev = 0; ev < SL_FLOW_EV_COUNT; ev++)
      st.flow_events[p][ev] = counts.flow_events[p][ev];
  }
  st.backend = counts.backend;
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    QueueStats q;
    q.priority = p;
    for (uint32_t w = 0; w < e.workers; w++) {
      q.depth += rte_ring_count(e.rings[w][p]);
      q.dropped_full += dpdk::load(e.counters[w].queue_full[p]);
    }
    q.delay_bucket_bound_ns.assign(dpdk::kDelayBoundsNs.begin(), dpdk::kDelayBoundsNs.end());
    q.delay_bucket_count.assign(dpdk::kDelayBoundsNs.size() + 1, 0);
    for (uint32_t w = 0; w < e.workers; w++) {
      const dpdk::QueueCounters& qc = e.counters[w].queue;
      for (std::size_t b = 0; b < q.delay_bucket_count.size(); b++)
        q.delay_bucket_count[b] += dpdk::load(qc.delay_count[p][b]);
      q.delay_sum_ns += dpdk::load(qc.delay_sum_ns[p]);
      q.dropped_full += dpdk::load(qc.dropped_full[p]);
      q.dropped_delay += dpdk::load(qc.dropped_delay[p]);
    }
    st.queues.push_back(std::move(q));
  }
  const char* roles[2] = {"outside", "inside"};
  for (int p = 0; p < 2; p++) {
    PortStats ps;
    ps.name = roles[p];
    ps.device = im.ports[p].device();
    rte_eth_stats es{};
    if (rte_eth_stats_get(e.port[p], &es) == 0) {
      ps.rx_packets = es.ipackets;
      ps.tx_packets = es.opackets;
      ps.rx_missed = es.imissed;
      ps.rx_nombuf = es.rx_nombuf;
      ps.tx_errors = es.oerrors;
    }
    for (const dpdk::LcoreCounters& c : e.counters) ps.tx_dropped += dpdk::load(c.tx_dropped[p]);
    st.ports.push_back(std::move(ps));
  }
  return st;
}

std::vector<uint64_t> DpdkDataplane::worker_loops() const {
  const Impl& im = *impl_;
  std::vector<uint64_t> loops;
  if (!im.launched) return loops;
  for (const dpdk::LcoreCounters& c : im.engine.counters) loops.push_back(dpdk::load(c.loops));
  return loops;
}

void DpdkDataplane::learn_missed_flows() {
  impl_->engine.learn_missed.store(true, std::memory_order_relaxed);
}

// The workers' clock now (no worker runs: the last outside frame's time
// with the capture clock).
uint64_t DpdkDataplane::Impl::stopped_now() const {
  return engine.capture_clock ? engine.capture_now_ns.load(std::memory_order_relaxed)
                              : engine.tsc_ns(rte_rdtsc());
}

void DpdkDataplane::Impl::take_kept_flows() {
  const std::string& path = settings.dpdk_flow_file;
  if (path.empty() || engine.capture_clock) return;
  dpdk::TakenFlows taken;
  std::string why;
  kept_flows_refused =
      !dpdk::take_kept_flows(path, engine.shared.flows, stopped_now(), &taken, &why);
  if (kept_flows_refused)
    kept_flows = why;
  else if (taken.found)
    kept_flows = std::to_string(taken.taken) + " flows taken back, " + std::to_string(taken.ended) +
                 " ended while no sluiced ran";
}

// Stops the workers and gives everything back, in reverse order of start.
// A stop after the workers ran keeps the flow table for the next start.
void DpdkDataplane::Impl::release() {
  prepared = false;
  if (launched) {
    engine.running.store(false);
    rte_eal_mp_wait_lcore();
    launched = false;
    if (!settings.dpdk_flow_file.empty() && !engine.capture_clock) {
      uint64_t kept = 0;
      std::string why;
      stop_note.failed = !dpdk::keep_flows(engine.shared.flows, stopped_now(),
                                           settings.dpdk_flow_file, &kept, &why);
      stop_note.text = stop_note.failed ? "not kept for the next start: " + why
                                        : std::to_string(kept) + " flows kept for the next start";
    }
  }
  for (const Retired& r : retired) delete r.snapshot;  // no worker runs now
  retired.clear();
  capture_token.reset();
  engine.sample_armed.store(false);
  if (engine.sample_ring != nullptr) {
    rte_ring_free(engine.sample_ring);
    engine.sample_ring = nullptr;
  }
  for (auto& per_worker : engine.rings) {
    for (rte_ring*& r : per_worker) {
      if (r == nullptr) continue;
      void* m;
      while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      rte_ring_free(r);
      r = nullptr;
    }
  }
  for (dpdk::Port& p : ports) p.close();
  if (engine.qsv != nullptr) {
    rte_free(engine.qsv);
    engine.qsv = nullptr;
  }
  delete engine.snapshot.exchange(nullptr);
  if (pool != nullptr) {
    rte_mempool_free(pool);
    pool = nullptr;
  }
}

Dataplane::StopNote DpdkDataplane::stop_note() const {
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  return im.stop_note;
}

void DpdkDataplane::stop() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  const bool was_up = dpdk::eal_running();
  im.release();
  if (was_up) dpdk::eal_stop();
}

}  // namespace sluice
