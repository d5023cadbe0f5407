// SPDX-License-Identifier: Apache-2.0
// ControlState's adaptive boundary: the learned rate as the dataplane runs
// it, and freezing it when an operator turns adaptive off.
#include <cmath>

#include "control/adaptive/adaptive_rate.hpp"
#include "control/api/control_state.hpp"
#include "control/config/compile.hpp"

namespace sluice {

using json = nlohmann::json;

CompiledProfile ControlState::compile(const Config& cfg) const {
  const Config c = shares_ ? apply_shares(cfg, *shares_) : cfg;
  CompiledProfile p = compile_profile(c);
  if (adaptive_rate_ && c.boundary.adaptive)
    compile_boundary_lookups(with_adaptive_rate(c.boundary, *adaptive_rate_), &p.prof);
  return p;
}

ControlState::AdaptiveBounds ControlState::adaptive_bounds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!effective_.config) return AdaptiveBounds{};
  return adaptive_bounds_of(*effective_.config, shares_ ? &*shares_ : nullptr);
}

ControlState::AdaptiveBounds ControlState::adaptive_bounds_of(const Config& cfg,
                                                              const EdgeShares* shares) {
  AdaptiveBounds b;
  b.on = cfg.boundary.adaptive && cfg.boundary.lookups_per_sec.has_value();
  if (!b.on) return b;
  const double configured = static_cast<double>(*cfg.boundary.lookups_per_sec);
  const Config run = shares ? apply_shares(cfg, *shares) : cfg;
  b.ceiling = static_cast<double>(run.boundary.lookups_per_sec.value_or(0));
  b.floor = std::min(b.ceiling, static_cast<double>(cfg.boundary.adaptive_floor()) * b.ceiling /
                                    std::max(1.0, configured));
  return b;
}

const CompiledProfile& ControlState::adaptive_base() {
  if (!adaptive_base_ || adaptive_base_->epoch != effective_epoch_ ||
      adaptive_base_->shares != shares_) {
    const Config run = shares_ ? apply_shares(*effective_.config, *shares_) : *effective_.config;
    adaptive_base_ = AdaptiveBase{effective_epoch_, shares_, run.boundary, compile_profile(run)};
  }
  return adaptive_base_->profile;
}

// Up to ten times a second: the running profile with only its boundary
// lookup budget set anew. Compiling the whole config each time cost 26 ms
// with 100,000 prefixes (docs/performance.md), a quarter of a core at this pace.
bool ControlState::set_adaptive_rate(std::optional<double> rate, std::string* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Adaptive turned off since the agent read it on: its rate is not kept
  // (a later turn on would start from it before the agent's first step).
  if (!adaptive_on_locked()) {
    adaptive_rate_.reset();
    return true;
  }
  const std::optional<double> before = adaptive_rate_;
  adaptive_rate_ = rate;
  CompiledProfile profile = adaptive_base();
  if (rate)
    compile_boundary_lookups(with_adaptive_rate(adaptive_base_->boundary, *rate), &profile.prof);
  if (dataplane_.apply(profile, generation_, error)) return true;
  adaptive_rate_ = before;
  return false;
}

void ControlState::seed_adaptive_rate(double rate) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (adaptive_on_locked()) adaptive_rate_ = rate;
}

std::optional<double> ControlState::adaptive_rate() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return adaptive_rate_;
}

void ControlState::set_adaptive_fair(double rate) {
  std::lock_guard<std::mutex> lock(mutex_);
  adaptive_fair_ = rate;
}

std::optional<double> ControlState::take_adaptive_fair() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<double> fair = adaptive_fair_;
  adaptive_fair_.reset();
  return fair;
}

void ControlState::set_adaptive_status(std::function<json()> status) {
  std::lock_guard<std::mutex> lock(mutex_);
  adaptive_status_ = std::move(status);
}

std::string ControlState::freeze_adaptive(const Config& next, const std::string& base,
                                          std::vector<std::string>* notes, uint64_t* frozen) const {
  if (!effective_.config || !adaptive_rate_) return "";
  const BoundaryConfig& was = effective_.config->boundary;
  const BoundaryConfig& now = next.boundary;
  if (!was.adaptive || now.adaptive || !now.lookups_per_sec ||
      now.lookups_per_sec != was.lookups_per_sec)
    return "";
  const uint64_t learned = std::max<uint64_t>(
      1, std::min<uint64_t>(*was.lookups_per_sec, std::llround(*adaptive_rate_)));
  std::vector<std::pair<std::string, std::string>> keys = {
      {"boundary.lookups_per_sec", std::to_string(learned)}};
  // The burst it ran with too, where it was not the default for that rate
  // (an explicit burst scaled with the rate: left, a ceiling's burst went
  // at once to a backend the controller had found overloaded).
  const uint64_t burst = with_adaptive_rate(was, static_cast<double>(learned)).lookups_burst;
  if (now.lookups_burst == was.lookups_burst && burst != std::max<uint64_t>(1, learned / 10))
    keys.push_back({"boundary.lookups_burst", std::to_string(burst)});
  LoadResult r = apply_overrides(base, config_path_, keys);
  if (!r.ok()) return "";
  *frozen = learned;
  notes->push_back(
      "boundary.adaptive turned off: boundary.lookups_per_sec set to the learned "
      "rate " +
      std::to_string(learned) + " (was the ceiling " + std::to_string(*was.lookups_per_sec) + ")" +
      (keys.size() > 1
           ? ", boundary.lookups_burst to the burst it ran with, " + std::to_string(burst)
           : std::string()));
  return r.text;
}

}  // namespace sluice
