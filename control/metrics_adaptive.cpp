// SPDX-License-Identifier: Apache-2.0
// The sluice_adaptive_* and sluice_backend_* families (boundary.adaptive on).
#include <limits>

#include "control/metrics_detail.hpp"
#include "dataplane/model/backend_signal.h"
#include "dataplane/model/flow.h"

namespace sluice::metrics_detail {

namespace {

// The dataplane's backend latency histogram (8 buckets per octave of µs) as
// a Prometheus histogram with bounds at every fourth bucket edge (half an octave) from 1 ms
// to 16 s: enough resolution for quantiles, few series.
ClientMetric latency_histogram(const sl_backend_signal& sig) {
  ClientMetric m;
  uint64_t cumulative = 0;
  uint32_t b = 0;
  for (uint32_t edge = sl_rt_bucket(1000); edge <= sl_rt_bucket(16000000); edge += 4) {
    for (; b < edge && b < SL_RT_BUCKETS; b++) cumulative += sig.hist[b];
    m.histogram.bucket.push_back({cumulative, static_cast<double>(sl_rt_bucket_low(edge)) * 1e-6});
  }
  for (; b < SL_RT_BUCKETS; b++) cumulative += sig.hist[b];
  m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = static_cast<double>(sig.sum_us) * 1e-6;
  return m;
}

}  // namespace

void adaptive_families(const AdaptiveFigures& a, const sl_backend_signal* sig,
                       std::vector<MetricFamily>* out) {
  add_gauges(
      {{"sluice_adaptive_rate",
        "Boundary lookups per second the adaptive controller set (this edge)", a.rate},
       {"sluice_adaptive_ceiling",
        "The adaptive rate's ceiling (boundary.lookups_per_sec, or "
        "this edge's fleet share of it)",
        a.ceiling},
       {"sluice_adaptive_floor", "The adaptive rate's floor", a.floor},
       {"sluice_adaptive_latency_seconds",
        "The signal: median time from a flow's first request data to the backend's first "
        "answer, over the controller's last evaluation",
        a.latency_sec},
       {"sluice_adaptive_baseline_seconds",
        "The backend's latency without a queue, as the controller estimates it", a.baseline_sec},
       {"sluice_adaptive_target_seconds",
        "The latency the controller keeps the signal under (tolerance x baseline)", a.target_sec},
       {"sluice_adaptive_delivered_per_second",
        "Backend answers per second over the controller's last evaluation", a.delivered}},
      out);
  MetricFamily steps = family("sluice_adaptive_steps_total",
                              "Controller steps by the rule that decided them (increase, "
                              "decrease, hold, idle, probe, rebaseline, resets, syn_again, "
                              "stalled, ceiling, floor)",
                              MetricType::Counter);
  for (const auto& [reason, n] : a.steps) add(steps, static_cast<double>(n), {{"reason", reason}});
  out->push_back(std::move(steps));
  if (sig == nullptr) return;
  MetricFamily latency = family("sluice_backend_latency_seconds",
                                "Per admitted flow, first request data to the backend's first "
                                "answer (one sample per flow)",
                                MetricType::Histogram);
  latency.metric.push_back(latency_histogram(*sig));
  out->push_back(std::move(latency));
  MetricFamily events = family("sluice_backend_events_total",
                               "Backend signal events on flows whose client acknowledged the "
                               "SYN-ACK: requests (first request data), responses, resets "
                               "(from the inside), zero_windows (inside packets); syn_again "
                               "(a SYN sent again over an unanswered one, then answered)",
                               MetricType::Counter);
  add(events, static_cast<double>(sig->requests), {{"event", "requests"}});
  add(events, static_cast<double>(sig->responses), {{"event", "responses"}});
  add(events, static_cast<double>(sig->resets), {{"event", "resets"}});
  add(events, static_cast<double>(sig->zero_windows), {{"event", "zero_windows"}});
  add(events, static_cast<double>(sig->syn_again), {{"event", "syn_again"}});
  out->push_back(std::move(events));
}

}  // namespace sluice::metrics_detail
