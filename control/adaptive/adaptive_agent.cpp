// SPDX-License-Identifier: Apache-2.0
#include "control/adaptive/adaptive_agent.hpp"
#include "control/api/json_parse.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "control/adaptive/adaptive_rate.hpp"
#include "control/api/control_state.hpp"
#include "control/config/compile.hpp"
#include "control/log.hpp"
#include "control/seed_store.hpp"

namespace sluice {

using json = nlohmann::json;

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

uint64_t delta(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }

// Lookups admitted, and shed for the boundary, all classes. Sticky sheds
// count: a class's sticky threshold sheds what the boundary (or its own
// rate) would have shed.
void lookup_totals(const DataplaneStats& s, uint64_t* admitted, uint64_t* boundary_shed) {
  *admitted = *boundary_shed = 0;
  for (const ClassStats& c : s.classes) {
    for (int r = 0; r < SL_REASON_COUNT; r++) *admitted += c.lookups[SL_VERDICT_ADMITTED][r];
    *boundary_shed += c.lookups[SL_VERDICT_SHED][SL_REASON_BOUNDARY_LOOKUPS] +
                      c.lookups[SL_VERDICT_SHED][SL_REASON_STICKY];
  }
}

std::string rate_text(double rate) { return std::to_string(std::llround(rate)); }

}  // namespace

namespace {

// The kept state's JSON when it is readable and at most max_age_sec old.
std::optional<json> load_kept(const std::string& path, double max_age_sec) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  json j = parse_json(text.str());
  if (!j.is_object() || !j.contains("rate") || !j["rate"].is_number() || !j.contains("unix") ||
      !j["unix"].is_number())
    return std::nullopt;
  const double rate = j["rate"].get<double>();
  const double age = unix_now() - j["unix"].get<double>();
  if (!(rate >= 1) || age > max_age_sec || age < -60) return std::nullopt;
  return j;
}

}  // namespace

std::optional<double> load_learned_rate(const std::string& path, double max_age_sec) {
  const std::optional<json> j = load_kept(path, max_age_sec);
  if (!j) return std::nullopt;
  return (*j)["rate"].get<double>();
}

std::optional<double> load_learned_baseline(const std::string& path, double max_age_sec) {
  const std::optional<json> j = load_kept(path, max_age_sec);
  if (!j || !j->contains("baseline_ms") || !(*j)["baseline_ms"].is_number()) return std::nullopt;
  const double ms = (*j)["baseline_ms"].get<double>();
  if (!(ms > 0) || ms > 60000) return std::nullopt;
  return ms / 1000;
}

std::optional<double> start_at_learned_rate(const Config& cfg, const EdgeShares* shares,
                                            const std::string& state_path, CompiledProfile* first) {
  const ControlState::AdaptiveBounds bounds = ControlState::adaptive_bounds_of(cfg, shares);
  if (!bounds.on || cfg.dataplane.inside.empty()) return std::nullopt;
  std::optional<double> rate = load_learned_rate(state_path, kLearnedRateMaxAgeSec);
  if (!rate) return std::nullopt;
  rate = std::clamp(*rate, bounds.floor, bounds.ceiling);
  const Config run = shares ? apply_shares(cfg, *shares) : cfg;
  compile_boundary_lookups(with_adaptive_rate(run.boundary, *rate), &first->prof);
  return rate;
}

bool keep_learned_rate(const std::string& path, double rate, std::string* error,
                       double baseline_sec) {
  json j = {{"rate", std::round(rate)}, {"unix", unix_now()}};
  if (baseline_sec > 0) j["baseline_ms"] = std::round(baseline_sec * 1e4) / 10;  // 0.1 ms
  return keep_file(path, j.dump() + "\n", error);
}

AdaptiveTick adaptive_tick(const DataplaneStats& before, const DataplaneStats& now,
                           double seconds) {
  AdaptiveTick t;
  t.seconds = seconds;
  // sl_backend_signal is all counts: one word at a time. A counter that went
  // backwards (the dataplane's state was made anew) counts nothing.
  // (Read and written as the struct's own word type, __u64.)
  const auto* b = reinterpret_cast<const __u64*>(&before.backend);
  const auto* n = reinterpret_cast<const __u64*>(&now.backend);
  auto* out = reinterpret_cast<__u64*>(&t.signal);
  for (std::size_t w = 0; w < sizeof(sl_backend_signal) / sizeof(__u64); w++)
    out[w] = delta(n[w], b[w]);
  uint64_t admitted_b = 0, shed_b = 0, admitted_n = 0, shed_n = 0;
  lookup_totals(before, &admitted_b, &shed_b);
  lookup_totals(now, &admitted_n, &shed_n);
  t.admitted_lookups = delta(admitted_n, admitted_b);
  t.boundary_shed = delta(shed_n, shed_b);
  return t;
}

AdaptiveAgent::AdaptiveAgent(ControlState& control, std::string state_path, uint32_t tick_ms)
    : control_(control), state_path_(std::move(state_path)), tick_ms_(tick_ms) {
  control_.set_adaptive_status([this] { return status(); });
  thread_ = std::thread([this] { run(); });
}

AdaptiveAgent::~AdaptiveAgent() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
  control_.set_adaptive_status(nullptr);
  // The rate the pinned program goes on running, kept for the next start
  // (report() keeps it at most once a second: the last moves may not be),
  // and its time refreshed when it did not move.
  if (!state_path_.empty() && figures_) {
    std::string error;
    keep_learned_rate(state_path_, applied_, &error, figures_->baseline_sec);
  }
}

void AdaptiveAgent::run() {
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(stop_mutex_);
      if (stop_cv_.wait_for(lock, std::chrono::milliseconds(tick_ms_), [this] { return stop_; }))
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    tick(std::chrono::duration<double>(now - last).count());
    last = now;
  }
}

void AdaptiveAgent::tick(double seconds) {
  const ControlState::AdaptiveBounds bounds = control_.adaptive_bounds();
  DataplaneStats stats = control_.stats();
  if (!bounds.on) {
    if (controller_) {
      controller_.reset();
      std::lock_guard<std::mutex> lock(mutex_);
      // The counts of steps go on from where they were when it is on
      // again (a counter that restarted would read as a reset).
      if (figures_) steps_ = figures_->steps;
      figures_.reset();
    }
    previous_ = std::move(stats);
    return;
  }
  std::string error;
  if (!controller_) {
    // A restart starts from what was learned before (kept an hour at most:
    // an older rate says little about today's backend), else the ceiling.
    const std::optional<double> kept =
        state_path_.empty() ? std::nullopt : load_learned_rate(state_path_, kLearnedRateMaxAgeSec);
    const double start = std::clamp(kept.value_or(bounds.ceiling), bounds.floor, bounds.ceiling);
    controller_.emplace(start);
    // With the baseline it measured: one learned anew from the first
    // answers after a restart took the queue the edge's downtime left (the
    // pinned program ran the last rate meanwhile, maybe above the
    // backend's) for the service's own latency, and a target of twice
    // that (a live check: 617 ms where the service took 40).
    if (kept && !state_path_.empty())
      if (const std::optional<double> baseline =
              load_learned_baseline(state_path_, kLearnedRateMaxAgeSec))
        controller_->seed_baseline(*baseline);
    applied_ = kept_ = logged_ = start;
    logged_at_ = std::chrono::steady_clock::now();
    if (!control_.set_adaptive_rate(start, &error)) {
      log_event(LogLevel::error, "adaptive: the dataplane refused the rate", {{"error", error}});
      // What runs instead: the rate set before, or the ceiling (the
      // config's own budget); the next step tries the controller's again.
      applied_ = control_.adaptive_rate().value_or(bounds.ceiling);
      refusals_ = 1;
      refusal_logged_at_ = logged_at_;
    }
    // Kept by this sluiced when adaptive was last on, or by the one before.
    const std::string from = !kept         ? "ceiling"
                             : ran_before_ ? "learned rate kept when it was last on"
                                           : "learned rate kept before the restart";
    ran_before_ = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      started_from_ = from;
      moved_unix_ = unix_now();
    }
    log_event(LogLevel::info, "adaptive: started",
              {{"rate", rate_text(start)},
               {"ceiling", rate_text(bounds.ceiling)},
               {"floor", rate_text(bounds.floor)},
               {"from", from}});
    previous_ = std::move(stats);
    return;
  }
  if (!previous_) {
    previous_ = std::move(stats);
    return;
  }
  // A fleet member: the fleet's re-split of the edges' learned rates by
  // demand (fleet_agent.cpp), as AdaptiveController::resplit takes it.
  if (const std::optional<double> fair = control_.take_adaptive_fair())
    controller_->resplit(*fair, bounds.floor, bounds.ceiling);
  const AdaptiveStep step =
      controller_->step(adaptive_tick(*previous_, stats, seconds), bounds.floor, bounds.ceiling);
  previous_ = std::move(stats);
  // The dataplane runs whole lookups/s: a move under one is not worth a swap.
  if (std::fabs(step.rate - applied_) >= 1.0) {
    if (control_.set_adaptive_rate(step.rate, &error)) {
      applied_ = step.rate;
      if (refusals_ != 0)
        log_event(LogLevel::info, "adaptive: the dataplane takes the rate again",
                  {{"rate", rate_text(applied_)}, {"refused", std::to_string(refusals_)}});
      refusals_ = 0;
    } else {
      // The first refusal, then one line every 30 s while they go on (a
      // dataplane that refuses for a while refused ten steps a second).
      const auto now = std::chrono::steady_clock::now();
      if (refusals_++ == 0 || now - refusal_logged_at_ >= std::chrono::seconds(30)) {
        log_event(LogLevel::error, "adaptive: the dataplane refused the rate",
                  {{"error", error}, {"refused", std::to_string(refusals_)}});
        refusal_logged_at_ = now;
      }
    }
  }
  report(step, bounds.ceiling, bounds.floor);
}

void AdaptiveAgent::report(const AdaptiveStep& step, double ceiling, double floor) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    AdaptiveFigures f = figures_.value_or(AdaptiveFigures{});
    if (!figures_) f.steps = steps_;
    if (step.changed) moved_unix_ = unix_now();
    // What the dataplane runs: a rate it refused is the controller's
    // wish, not this edge's budget (sluice_adaptive_rate, status, the
    // kept rate a restart starts from).
    f.rate = applied_;
    f.ceiling = ceiling;
    f.floor = floor;
    f.latency_sec = step.latency_sec;
    f.baseline_sec = step.baseline_sec;
    f.target_sec = step.target_sec;
    f.delivered = step.delivered_per_sec;
    f.reason = adaptive_reason_name(step.reason);
    if (step.decided) f.steps[f.reason]++;
    figures_ = std::move(f);
  }
  // Kept at most once a second when it moved, and once a minute when it did
  // not: the file's time says when the rate was last in force (a restart
  // takes a rate kept within the hour; one that sat at the floor through a
  // long outage is still the one to start from). A failed write is logged
  // once, and tried again a second later at the earliest.
  const bool unkept = std::fabs(applied_ - kept_) >= 1.0;
  if (!state_path_.empty() &&
      (kept_at_ == std::chrono::steady_clock::time_point{} ||
       now - kept_at_ >= (unkept ? std::chrono::seconds(1) : kKeepRefresh))) {
    std::string error;
    kept_at_ = now;
    if (keep_learned_rate(state_path_, applied_, &error, step.baseline_sec)) {
      kept_ = applied_;
      keep_failed_ = false;
    } else if (!keep_failed_) {
      keep_failed_ = true;
      log_event(LogLevel::warn, "adaptive: the learned rate could not be kept",
                {{"path", state_path_}, {"error", error}});
    }
  }
  // Every step at debug (`sluicectl log-level debug` while diagnosing the
  // controller: ten lines a second).
  if (log_level() == LogLevel::debug && step.decided)
    log_event(LogLevel::debug, "adaptive: step",
              {{"rate", rate_text(step.rate)},
               {"reason", adaptive_reason_name(step.reason)},
               {"latency_ms", std::to_string(std::llround(step.latency_sec * 1000))},
               {"target_ms", std::to_string(std::llround(step.target_sec * 1000))},
               {"delivered_per_sec", rate_text(step.delivered_per_sec)}});
  // A line when the rate moved by more than 10% (at most one a second), and
  // one every 30 s while it keeps moving: not one per step.
  const double moved = std::fabs(applied_ - logged_) / std::max(1.0, logged_);
  const auto since = now - logged_at_;
  if ((moved > 0.10 && since >= std::chrono::seconds(1)) ||
      (moved > 0 && since >= std::chrono::seconds(30))) {
    log_event(LogLevel::info, "adaptive: rate moved",
              {{"rate", rate_text(applied_)},
               {"from", rate_text(logged_)},
               {"reason", adaptive_reason_name(step.reason)},
               {"latency_ms", std::to_string(std::llround(step.latency_sec * 1000))},
               {"target_ms", std::to_string(std::llround(step.target_sec * 1000))},
               {"delivered_per_sec", rate_text(step.delivered_per_sec)}});
    logged_ = applied_;
    logged_at_ = now;
  }
}

json AdaptiveAgent::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!figures_)
    return {{"rate", nullptr}, {"reason", "starting"}, {"started_from", started_from_}};
  const AdaptiveFigures& f = *figures_;
  return {{"rate", std::llround(f.rate)},       {"ceiling", std::llround(f.ceiling)},
          {"floor", std::llround(f.floor)},     {"reason", f.reason},
          {"latency_ms", f.latency_sec * 1000}, {"baseline_ms", f.baseline_sec * 1000},
          {"target_ms", f.target_sec * 1000},   {"delivered_per_sec", f.delivered},
          {"moved_unix", moved_unix_},          {"started_from", started_from_}};
}

std::optional<AdaptiveFigures> AdaptiveAgent::figures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return figures_;
}

}  // namespace sluice
