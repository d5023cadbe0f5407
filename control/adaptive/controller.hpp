// SPDX-License-Identifier: Apache-2.0
// The adaptive boundary's controller (docs/adaptive.md): from the backend
// signal the dataplane measures on the return path (abi.h,
// sl_backend_signal), the boundary lookup rate between a floor and a
// ceiling. Pure: fed one tick of counts at a time, it keeps no clock and
// does no I/O, so that tests drive it with a simulated backend.
//
// The signal is the service's latency: per admitted flow, first request
// data to first response data. A backend below its capacity answers in its
// service time; above it, a queue forms and every answer waits longer. The
// controller keeps the median latency under a target (`tolerance` x the
// baseline, the lowest median of the last `baseline_sec`, or the baseline
// plus the time the backend takes to deliver `queue_answers` answers, if
// that is more), the rate it admits near what the backend delivers:
//  - over the target while a queue of ours grows: a decrease proportional to
//    the overshoot (at most halving), applied to the rate of answers the
//    backend just delivered (but no less than 95% of what it delivered
//    while a queue stood over the last 0.3 s), then a hold until what was
//    admitted before it is answered (one decrease per congestion event);
//  - under it, while lookups are shed for the boundary or it is 90% used
//    (demand at or above the rate): increase, fast while latency is near the
//    baseline, slowly near the target, never more than 10% per 100 ms above
//    what the backend delivered;
//  - without demand above the rate: twice what the backend answers (from
//    above, 10% per 100 ms at most), so that a surge starts from a rate the
//    backend showed it can serve;
//  - a drain probe when even the fastest answers stay slow: a service that
//    slowed gets a new baseline, a standing queue is drained;
//  - backend resets or SYNs sent again (a full accept queue) above 1% of the
//    requests decrease it; so does a second without any answer.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <string>

#include "dataplane/model/abi.h"

namespace sluice {

// One tick of counts (deltas since the previous tick).
struct AdaptiveTick {
  double seconds = 0;             // length of the tick
  sl_backend_signal signal = {};  // the dataplane's backend signal
  uint64_t admitted_lookups = 0;  // lookups admitted (all classes)
  uint64_t boundary_shed = 0;     // lookups the boundary budget shed (demand above the rate)
};

struct AdaptiveTuning {
  double tolerance = 2.0;         // target = tolerance x baseline latency, or ...
  double queue_answers = 2.0;     // ... baseline + this many answers at the delivered rate,
  double queue_max_sec = 0.1;     // ... at most this more, if that is more
  double baseline_sec = 10.0;     // window of the baseline (lowest median)
  double rebase_sec = 1.0;        // fastest answers this long above ...
  double rebase_above = 1.8;      // ... this x the baseline, all answered: drain probe
  double probe_drain = 0.75;      // the probe admits this x what the backend delivers
  double probe_max_sec = 2.0;     // a probe whose latency still falls goes on this long at most
  uint64_t min_samples = 8;       // answers one evaluation needs ...
  double max_eval_sec = 0.5;      // ... unless this long passed with at least one
  double fast_increase = 0.10;    // per 100 ms, latency below halfway to the target
  double slow_increase = 0.05;    // per 100 ms, between that and the target
  double probe_above = 0.10;      // an increase stops this far above the delivered answers/s
  double decrease_gain = 0.3;     // decrease factor 1 - gain x (1 - target / latency) ...
  double max_decrease = 0.5;      // ... at least this, applied to the last evaluation's
  double delivered_trust = 0.95;  // answers/s, or to this x those of the busy evaluations
  double delivered_sec = 0.3;     // this recent (at least the last), if that is more
  double stall_sec = 1.0;         // requests without any answer this long: over the target
  double drain_sec = 0.5;         // a queue of more work than this drains in about this long
  double idle_headroom = 2.0;     // without demand above it, the rate is at most this x delivered
  double idle_decrease = 0.10;    // ... reached from above by at most this per 100 ms
};

// Why the rate moved (or did not), for logs, status and top.
enum class AdaptiveReason {
  start,       // no evaluation yet
  waiting,     // not enough answers yet to judge
  increase,    // under the target, lookups shed: probing up
  hold,        // the rate stays: over the target without a queue of ours that grows, or
               // no demand above it and at most 2x what was answered already
  idle,        // no demand above the rate: it follows 2x what the backend answered
  decrease,    // over the target, a queue of ours grows: what the backend delivers, less
               // the overshoot (above the rate when a cut left it below that)
  resets,      // the backend reset admitted flows
  syn_again,   // clients sent SYNs again (accept queue full)
  stalled,     // requests got no answer for stall_sec
  probe,       // draining a queue to see the service's own latency
  rebaseline,  // the probe found the service itself slowed: a new baseline
  ceiling,     // held at the ceiling
  floor,       // held at the floor
};
const char* adaptive_reason_name(AdaptiveReason r);

struct AdaptiveStep {
  double rate = 0;       // lookups/s to run
  bool changed = false;  // differs from the previous step's rate
  // An evaluation (or a stall, or refusals) decided this step; false while
  // one gathers, when the reason is the last decision's (counted once:
  // sluice_adaptive_steps_total).
  bool decided = false;
  AdaptiveReason reason = AdaptiveReason::start;
  double latency_sec = 0;        // median of the last evaluation (0: none yet)
  double baseline_sec = 0;       // its baseline
  double target_sec = 0;         // what the latency is kept under (AdaptiveTuning)
  double delivered_per_sec = 0;  // answers per second in the last evaluation
};

class AdaptiveController {
 public:
  // Starts at `rate` (the ceiling, or the rate learned before a restart).
  explicit AdaptiveController(double rate, AdaptiveTuning tuning = {});
  // A baseline measured before (a restart's kept one): a median of the
  // window now, so that for baseline_sec the target is at most twice it,
  // whatever queue the first answers show.
  void seed_baseline(double sec);

  // One tick: the new rate, clamped to [floor, ceiling] (floor <= ceiling).
  AdaptiveStep step(const AdaptiveTick& tick, double floor, double ceiling);

  double rate() const { return rate_; }
  // A fleet's re-split of its edges' learned rates by demand (`fair`: this
  // edge's share of their sum, fleet_agent.cpp): half the way there, when it
  // is more than 10% off, clamped. The other edges' rates are up to a sync
  // old, and a full step on them would shake what the controllers just
  // settled. Up only while this edge sees no queue of its own (the last
  // evaluation under the target, no decrease or probe under way): at a
  // surge's start the sum it re-splits still holds the rates from before the
  // queue, and moving up on it undid each edge's decrease (the adaptive
  // lab's fleet, 2026-12-03: both edges back from 90 to 113 within 0.15 s of
  // their cut, then a second at 84% of the capacity). Returns whether it
  // moved.
  bool resplit(double fair, double floor, double ceiling);
  const AdaptiveStep& last() const { return last_; }

 private:
  struct Median {
    double when;
    double latency;
  };
  void gather(const AdaptiveTick& tick);
  void start_evaluation();  // empties what gather() folded in
  double baseline(const AdaptiveStep& s, double fast_sec, bool* suspect);
  bool probe(AdaptiveStep& s, double* next);
  double target_of(double baseline, double delivered) const;
  double decreased(double latency, double target, double delivered) const;
  double increased(const AdaptiveStep& s) const;
  bool queue_grows(const AdaptiveStep& s) const;

  AdaptiveTuning tuning_;
  double rate_;
  double clock_ = 0;  // seconds of ticks seen
  // The evaluation being gathered.
  std::array<uint64_t, SL_RT_BUCKETS> hist_ = {};
  uint64_t answers_ = 0;
  uint64_t requests_ = 0;
  uint64_t shed_ = 0;
  uint64_t admitted_ = 0;
  uint64_t resets_ = 0;
  uint64_t syn_again_ = 0;
  double gathered_sec_ = 0;
  double delivered_avg_ = 0;  // answers/s, moving average of the evaluations
  struct Delivered {
    double when;
    uint64_t answers;
    double seconds;
  };
  std::deque<Delivered> delivered_;  // busy evaluations of the last delivered_sec
  double delivered_recent(uint64_t answers, double seconds, bool busy);
  bool stalled_last_ = false;         // the last decision was a stall's (none since)
  double unanswered_sec_ = 0;         // how long requests went without any answer
  uint64_t unanswered_requests_ = 0;  // requests since the last answer
  double idle_sec_ = 0;               // how long nothing was asked of the backend, nor answered
  // After a decrease nothing moves until the requests admitted before it
  // were answered (or stall_sec passed).
  uint64_t requested_total_ = 0;
  uint64_t answered_total_ = 0;
  uint64_t hold_answers_ = 0;
  double hold_until_ = 0;
  std::deque<Median> medians_;  // baseline window
  // The evaluations of the last rebase_sec (the rebaseline test).
  struct Recent {
    double when;
    double median;
    double fast;  // 10th percentile
    uint64_t requests;
    uint64_t answers;
  };
  std::deque<Recent> recent_;
  // The drain probe (probe_until_ < 0: none running).
  double probe_until_ = -1;
  double probe_rate_ = 0;       // the rate before it, restored after ...
  double probe_delivered_ = 0;  // ... or what the backend delivered before it, if more
  double probe_low_ = 0;        // the lowest median during it
  double probe_last_ = 0;       // its last evaluation's median (still falling: on)
  double probe_started_ = 0;
  AdaptiveStep last_;
};

// The q-quantile (0..1) of a latency histogram of sl_backend_signal's
// buckets, in seconds, interpolated inside its bucket; 0 when empty.
double latency_quantile(const std::array<uint64_t, SL_RT_BUCKETS>& hist, double q);

}  // namespace sluice
