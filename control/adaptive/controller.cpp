// SPDX-License-Identifier: Apache-2.0
#include "control/adaptive/controller.hpp"

#include <algorithm>
#include <cmath>

#include "dataplane/model/backend_signal.h"
#include "dataplane/model/flow.h"

namespace sluice {

const char* adaptive_reason_name(AdaptiveReason r) {
  switch (r) {
    case AdaptiveReason::start:
      return "start";
    case AdaptiveReason::waiting:
      return "waiting";
    case AdaptiveReason::increase:
      return "increase";
    case AdaptiveReason::hold:
      return "hold";
    case AdaptiveReason::idle:
      return "idle";
    case AdaptiveReason::decrease:
      return "decrease";
    case AdaptiveReason::resets:
      return "resets";
    case AdaptiveReason::syn_again:
      return "syn_again";
    case AdaptiveReason::stalled:
      return "stalled";
    case AdaptiveReason::rebaseline:
      return "rebaseline";
    case AdaptiveReason::probe:
      return "probe";
    case AdaptiveReason::ceiling:
      return "ceiling";
    case AdaptiveReason::floor:
      return "floor";
  }
  return "unknown";
}

double latency_quantile(const std::array<uint64_t, SL_RT_BUCKETS>& hist, double q) {
  uint64_t total = 0;
  for (uint64_t n : hist) total += n;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  double seen = 0;
  for (uint32_t b = 0; b < SL_RT_BUCKETS; b++) {
    if (hist[b] == 0) continue;
    const double n = static_cast<double>(hist[b]);
    if (seen + n >= rank) {
      const double low = static_cast<double>(sl_rt_bucket_low(b));
      const double high =
          b + 1 < SL_RT_BUCKETS ? static_cast<double>(sl_rt_bucket_low(b + 1)) : low * 1.25;
      const double within = std::clamp((rank - seen) / n, 0.0, 1.0);
      return (low + (high - low) * within) * 1e-6;
    }
    seen += n;
  }
  return static_cast<double>(sl_rt_bucket_low(SL_RT_BUCKETS - 1)) * 1e-6;
}

AdaptiveController::AdaptiveController(double rate, AdaptiveTuning tuning)
    : tuning_(tuning), rate_(rate) {
  last_.rate = rate;
}

void AdaptiveController::seed_baseline(double sec) {
  if (!(sec > 0)) return;
  medians_.push_back({clock_, sec});
  last_.baseline_sec = sec;
  last_.target_sec = target_of(sec, 0);
}

// Twice the baseline: a service's latency grows with its queue. But one
// whose latency says little of its capacity (a rate limit of 100/s in front
// of a service that answers in 1 ms, 2026-12-06) makes random arrivals wait
// for its next slot longer than that at half its capacity, and the rate
// settled at 60% of it. A queue of queue_answers answers at what it delivers
// (at most queue_max_sec) is within the target too. `delivered`: the larger
// of the evaluation's and the average answers/s (0: not known), so that a
// backend that slows keeps a target as short as before until it shows it.
double AdaptiveController::target_of(double baseline, double delivered) const {
  const double queue =
      delivered > 0 ? std::min(tuning_.queue_answers / delivered, tuning_.queue_max_sec) : 0;
  return std::max(tuning_.tolerance * baseline, baseline + queue);
}

// Answers per second over the evaluations of the last delivered_sec during
// which a queue stood (busy: the median above halfway to the target) or
// lookups were shed for the rate (the backend served at least what was
// admitted at the full rate), this one included: what the backend can do.
// An evaluation with neither ends the run: before a surge the backend
// answers what little it is sent, not what it can do. (Until 2026-12-03
// only busy evaluations counted: the first busy one after a climb at the
// baseline latency stood alone, and a fleet edge's count of 79 answers/s
// where its last 0.3 s had 99-109 cut it to 72; both edges at once, a
// second at 83% of the capacity in the lab.)
double AdaptiveController::delivered_recent(uint64_t answers, double seconds, bool busy) {
  if (!busy) {
    delivered_.clear();
    return seconds > 0 ? static_cast<double>(answers) / seconds : 0;
  }
  delivered_.push_back({clock_, answers, seconds});
  while (delivered_.size() > 1 && delivered_.front().when <= clock_ - tuning_.delivered_sec)
    delivered_.pop_front();
  uint64_t n = 0;
  double sec = 0;
  for (const Delivered& d : delivered_) {
    n += d.answers;
    sec += d.seconds;
  }
  return sec > 0 ? static_cast<double>(n) / sec : 0;
}

double AdaptiveController::decreased(double latency, double target, double delivered) const {
  // What the backend just delivered is what it can do now (it was busy);
  // admitting less than that by the gradient drains the queue it built.
  // Not the rate: after an overshoot the rate is far above it, and a later
  // step would compound the cut far below what the backend serves.
  const double base = delivered > 0 ? delivered : rate_;
  // Proportional to the overshoot (Breakwater's decrease): a latency just
  // over the target trims, one far over it halves.
  const double factor = 1.0 - tuning_.decrease_gain * (1.0 - target / latency);
  return base * std::max(tuning_.max_decrease, factor);
}

// Folds one tick into the evaluation being gathered.
void AdaptiveController::gather(const AdaptiveTick& tick) {
  clock_ += tick.seconds;
  const sl_backend_signal& sig = tick.signal;
  for (uint32_t b = 0; b < SL_RT_BUCKETS; b++) hist_[b] += sig.hist[b];
  answers_ += sig.responses;
  requests_ += sig.requests;
  answered_total_ += sig.responses;
  requested_total_ += sig.requests;
  shed_ += tick.boundary_shed;
  admitted_ += tick.admitted_lookups;
  resets_ += sig.resets;
  syn_again_ += sig.syn_again;
  gathered_sec_ += tick.seconds;
  if (sig.requests != 0 || sig.responses != 0 || sig.resets != 0 || sig.syn_again != 0)
    idle_sec_ = 0;
  if (sig.responses != 0) {
    unanswered_sec_ = 0;
    unanswered_requests_ = 0;
  } else {
    unanswered_requests_ += sig.requests;
    if (unanswered_requests_ != 0) unanswered_sec_ += tick.seconds;
  }
}

// The baseline: the lowest median of the window. When over the last
// rebase_sec even the fastest tenth of the answers of every evaluation took
// longer than rebase_above x the baseline, while the backend answered all
// that was admitted and the latency did not grow, either the service itself
// slowed (slow SQL) or a queue stands still in front of it (admitted exactly
// at its rate). *suspect says so; the drain probe (step) tells them apart.
double AdaptiveController::baseline(const AdaptiveStep& s, double fast_sec, bool* suspect) {
  medians_.push_back({clock_, s.latency_sec});
  while (medians_.size() > 1 && medians_.front().when < clock_ - tuning_.baseline_sec)
    medians_.pop_front();
  double low = s.latency_sec;
  for (const Median& m : medians_) low = std::min(low, m.latency);
  recent_.push_back({clock_, s.latency_sec, fast_sec, requests_, answers_});
  while (recent_.size() > 1 && recent_[1].when <= clock_ - tuning_.rebase_sec) recent_.pop_front();
  *suspect = false;
  if (recent_.front().when > clock_ - tuning_.rebase_sec) return low;  // not a whole second yet
  double fast = fast_sec;
  uint64_t requests = 0, answers = 0;
  for (const Recent& r : recent_) {
    fast = std::min(fast, r.fast);
    requests += r.requests;
    answers += r.answers;
  }
  const bool steady =
      answers * 100 >= requests * 98 && s.latency_sec <= 1.1 * recent_.front().median;
  *suspect = fast > tuning_.rebase_above * low && steady;
  return low;
}

// The drain probe: the rate at 0.75 x what the backend delivers for twice
// the latency (0.2..1 s) empties a queue of ours (one that stands still
// holds (latency - baseline) x rate requests: 0.25 x rate x 2 x latency
// drains it while the latency is under twice the baseline, the target; one
// above drains in part, and a baseline it set too high comes down with the
// next lower median); the answers to what is
// admitted then take the service time. If even the lowest median of the
// probe stays above rebase_above x the baseline, the service slowed and that
// median becomes the baseline; otherwise a queue stood still and is gone.
// A probe whose latency still falls at its end (each evaluation 5% under
// the one before) drains a queue longer than its time: it goes on, an
// evaluation at a time, up to probe_max_sec. Else a standing queue of more
// than 0.5 x rate x latency requests (a latency above twice the baseline:
// a backend whose capacity fell) was adopted as the service's own latency.
// Either way the rate goes back to where it was, and the controller goes on.
bool AdaptiveController::probe(AdaptiveStep& s, double* next) {
  if (probe_until_ < 0) return false;
  const bool falling = s.latency_sec > 0 && s.latency_sec < 0.95 * probe_last_;
  if (s.latency_sec > 0) {
    probe_low_ = std::min(probe_low_, s.latency_sec);
    probe_last_ = s.latency_sec;
  }
  s.reason = AdaptiveReason::probe;
  if (clock_ < probe_until_) return true;
  if (falling && probe_low_ > tuning_.rebase_above * s.baseline_sec &&
      clock_ < probe_started_ + tuning_.probe_max_sec) {
    probe_until_ = clock_ + 0.2;
    return true;
  }
  probe_until_ = -1;
  // Back to where it was, or to what the backend delivered before the probe
  // if that is more: decreases while it was slowing may have cut below it.
  *next = std::max(probe_rate_, probe_delivered_);
  if (probe_low_ > tuning_.rebase_above * s.baseline_sec) {
    medians_.clear();
    medians_.push_back({clock_, probe_low_});
    s.baseline_sec = probe_low_;
    s.target_sec = target_of(probe_low_, probe_delivered_);
    s.reason = AdaptiveReason::rebaseline;
  }
  recent_.clear();
  return true;
}

AdaptiveStep AdaptiveController::step(const AdaptiveTick& tick, double floor, double ceiling) {
  gather(tick);
  AdaptiveStep s = last_;
  s.changed = false;
  s.decided = false;
  // A drain probe ends on time: it admits less than the backend serves, and
  // waiting for a full evaluation at its low rate kept it twice as long.
  const bool probe_due = probe_until_ >= 0 && clock_ >= probe_until_;
  const bool ready = answers_ >= tuning_.min_samples ||
                     (answers_ != 0 && (gathered_sec_ >= tuning_.max_eval_sec || probe_due));
  // Stalled: a whole stall_sec without an answer while at least an
  // evaluation's worth of requests waited (a few flows that never get an
  // answer, e.g. clients that only send, are not a stalled backend).
  // The requests count since the last answer, not in this evaluation: one
  // without an answer starts over after a second, and at a halved rate a
  // second stall needed 8 requests within one, which 4/s never sent (a live
  // check: the rate held at 4/s for 8 s of a backend answering nothing).
  const bool stalled =
      unanswered_sec_ >= tuning_.stall_sec && unanswered_requests_ >= tuning_.min_samples;
  // Resets and SYNs sent again above 1% of the requests: the backend
  // refuses work (they are rare on a healthy service).
  const uint64_t refusals = std::max(resets_, syn_again_);
  const bool refusing = refusals * 100 > std::max<uint64_t>(requests_, 1) && refusals >= 2;
  if (!ready && !stalled && !refusing) {
    if (last_.reason == AdaptiveReason::start) s.reason = AdaptiveReason::waiting;
    // Idle (nothing asked of the backend for an evaluation's longest time):
    // it delivers nothing now, whatever it did in the last surge.
    const bool idle = requests_ == 0 && answers_ == 0 && resets_ == 0 && syn_again_ == 0;
    if (idle) {
      idle_sec_ += tick.seconds;
      if (idle_sec_ >= tuning_.max_eval_sec) s.delivered_per_sec = 0;
    }
    // Nothing to evaluate: idle, or no answer for longer than an evaluation
    // or a stall takes (a few requests that get none). The next evaluation
    // starts from here: gathered on, a quiet hour became one evaluation,
    // whose first answer grew the rate by 10% per 100 ms of the hour (to
    // the ceiling), and whose answers per second read as nearly none.
    if (idle ||
        (answers_ == 0 && gathered_sec_ >= std::max(tuning_.stall_sec, tuning_.max_eval_sec)))
      start_evaluation();
    rate_ = std::clamp(rate_, floor, ceiling);
    s.rate = rate_;
    s.changed = s.rate != last_.rate;
    last_ = s;
    return s;
  }

  bool suspect = false;
  double delivered = 0;  // answers/s of the busy evaluations of the last delivered_sec
  if (ready) {
    s.latency_sec = latency_quantile(hist_, 0.5);
    s.delivered_per_sec = static_cast<double>(answers_) / gathered_sec_;
    delivered_avg_ = delivered_avg_ == 0 ? s.delivered_per_sec
                                         : 0.8 * delivered_avg_ + 0.2 * s.delivered_per_sec;
    s.baseline_sec = baseline(s, latency_quantile(hist_, 0.1), &suspect);
    s.target_sec = target_of(s.baseline_sec, std::max(s.delivered_per_sec, delivered_avg_));
    const double busy = (s.baseline_sec + s.target_sec) / 2.0;
    delivered = delivered_recent(answers_, gathered_sec_, s.latency_sec >= busy || shed_ != 0);
  } else {
    // Stalled or refusing before an evaluation's worth of answers: what the
    // backend answered meanwhile (the latency stays the last measured while
    // no answer comes).
    s.delivered_per_sec = gathered_sec_ > 0 ? static_cast<double>(answers_) / gathered_sec_ : 0;
    if (answers_ != 0) s.latency_sec = latency_quantile(hist_, 0.5);
  }
  const bool holding = answered_total_ < hold_answers_ && clock_ < hold_until_;
  double next = rate_;
  s.decided = true;
  stalled_last_ = stalled;
  if (stalled) {
    next = rate_ * tuning_.max_decrease;
    s.reason = AdaptiveReason::stalled;
    unanswered_sec_ = 0;  // one step per stall_sec
    // A drain probe under way ends here: its end puts back the rate from
    // before it, which would undo the stall's cuts at the backend's first
    // answers (a hang after a slowdown: 18/s back to 200/s at once).
    probe_until_ = -1;
  } else if (probe(s, &next)) {
    // draining, or just drained
  } else if (suspect) {
    probe_until_ = clock_ + std::clamp(2.0 * s.latency_sec, 0.2, 1.0);
    probe_rate_ = rate_;
    probe_delivered_ = delivered_avg_;
    probe_low_ = probe_last_ = s.latency_sec;
    probe_started_ = clock_;
    next = std::max(floor, tuning_.probe_drain * std::min(rate_, s.delivered_per_sec));
    s.reason = AdaptiveReason::probe;
  } else if (holding) {
    s.reason = AdaptiveReason::hold;  // the last decrease has not shown in the answers yet
  } else if (refusing) {
    const double share = static_cast<double>(refusals) / static_cast<double>(requests_ + refusals);
    next = rate_ * std::max(tuning_.max_decrease, 1.0 - share);
    s.reason = resets_ >= syn_again_ ? AdaptiveReason::resets : AdaptiveReason::syn_again;
  } else if (s.latency_sec > s.target_sec && !queue_grows(s)) {
    s.reason = AdaptiveReason::hold;  // over the target, but no queue of ours grows
  } else if (s.latency_sec > s.target_sec) {
    // What this evaluation delivered, but no less than 95% of what the
    // backend delivered while busy lately: the count of one evaluation is
    // noisy, and a cut on a low one left the backend idle for a second.
    const double served = std::max(s.delivered_per_sec, tuning_.delivered_trust * delivered);
    next = decreased(s.latency_sec, s.target_sec, served);
    // A queue of more than drain_sec of work (latency - baseline, at what
    // the backend serves) drains within about drain_sec: admitting half of
    // what is served took 4 x the latency, and a pacer cut tenfold under a
    // surge had 6 s of work waiting, none of it useful to clients that wait 1 s.
    const double queued = s.latency_sec - s.baseline_sec;
    if (queued > tuning_.drain_sec)
      next =
          std::max(floor, std::min(next, served * (1.0 - queued / (queued + tuning_.drain_sec))));
    s.reason = AdaptiveReason::decrease;
  } else if (shed_ != 0 || static_cast<double>(admitted_) >= 0.9 * rate_ * gathered_sec_) {
    next = increased(s);
    s.reason = AdaptiveReason::increase;
  } else {
    // No demand above the rate: keep no more than headroom x what the
    // backend answered, so that a surge starts from a rate the backend has
    // shown it serves (and probes up from there) instead of the ceiling.
    // Down by at most idle_decrease per 100 ms: at a low demand one
    // evaluation holds a few answers, and a rate that followed every dip of
    // their average met the surge's first second well below the capacity.
    const double ticks = std::max(1.0, gathered_sec_ / 0.1);
    next = std::max({floor, tuning_.idle_headroom * delivered_avg_,
                     std::min(rate_, rate_ * std::pow(1.0 - tuning_.idle_decrease, ticks))});
    s.reason = std::fabs(next - rate_) >= 0.5 ? AdaptiveReason::idle : AdaptiveReason::hold;
  }
  // One decrease per congestion event: until what was admitted before it is
  // answered, the answers still show the queue it built.
  if (next < rate_ && s.reason != AdaptiveReason::stalled && s.reason != AdaptiveReason::hold &&
      s.reason != AdaptiveReason::idle && s.reason != AdaptiveReason::probe) {
    hold_answers_ = requested_total_;  // FIFO: answered once these many were
    // ... or twice the latency passed: a hold as long as the queue would let
    // a queue that grows under a backend that slowed grow unseen.
    hold_until_ = clock_ + std::clamp(2.0 * s.latency_sec, 0.1, tuning_.stall_sec);
  }
  if (next >= ceiling && s.reason == AdaptiveReason::increase) s.reason = AdaptiveReason::ceiling;
  if (next <= floor && next < rate_) s.reason = AdaptiveReason::floor;
  rate_ = std::clamp(next, floor, ceiling);
  s.rate = rate_;
  s.changed = s.rate != last_.rate;
  last_ = s;

  start_evaluation();
  return s;
}

void AdaptiveController::start_evaluation() {
  hist_.fill(0);
  answers_ = requests_ = shed_ = admitted_ = resets_ = syn_again_ = 0;
  gathered_sec_ = 0;
}

bool AdaptiveController::resplit(double fair, double floor, double ceiling) {
  if (std::fabs(fair - rate_) <= 0.1 * rate_) return false;
  if (fair > rate_) {
    const bool holding = answered_total_ < hold_answers_ && clock_ < hold_until_;
    const bool queued = last_.latency_sec > last_.target_sec || probe_until_ >= 0 || holding ||
                        last_.reason == AdaptiveReason::decrease || stalled_last_ ||
                        last_.reason == AdaptiveReason::resets ||
                        last_.reason == AdaptiveReason::syn_again;
    if (queued) return false;
  }
  rate_ = std::clamp(rate_ + 0.5 * (fair - rate_), floor, ceiling);
  last_.rate = rate_;
  return true;
}

// Over the target: whether a queue of ours is what holds the latency there.
// Up to twice the target, a decrease needs a sign of one that grows: fewer
// answers than requests, or a latency 10% above the last evaluation's.
// Otherwise (answered as admitted, latency flat) the service itself may have
// slowed: decreasing would only spiral down with the answers it cuts, and
// the drain probe (baseline) tells which it is. Far over the target, the
// queue must drain whatever it does.
bool AdaptiveController::queue_grows(const AdaptiveStep& s) const {
  if (s.latency_sec > 2.0 * s.target_sec) return true;
  return answers_ * 100 < requests_ * 98 || s.latency_sec > 1.1 * last_.latency_sec;
}

// Under the target with lookups shed: growth per 100 ms whatever the
// evaluation took, fast near the baseline, slow near the target, and never
// more than a probe step above what the backend delivered (a rate it has not
// shown it can serve is probed, not assumed).
double AdaptiveController::increased(const AdaptiveStep& s) const {
  const double ticks = std::max(1.0, gathered_sec_ / 0.1);
  const double near = (s.baseline_sec + s.target_sec) / 2.0;
  const double per_tick = s.latency_sec < near ? tuning_.fast_increase : tuning_.slow_increase;
  const double grown = rate_ * std::pow(1.0 + per_tick, ticks);
  const double probe = s.delivered_per_sec * std::pow(1.0 + tuning_.probe_above, ticks);
  return std::max(rate_, std::min(grown, probe));
}

}  // namespace sluice
