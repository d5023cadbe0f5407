// SPDX-License-Identifier: Apache-2.0
// The adaptive boundary's thread in sluiced (docs/adaptive.md): every tick
// it reads the backend signal the dataplane counts, steps the controller
// (controller.hpp) while boundary.adaptive is on, and sets the learned rate
// through ControlState::set_adaptive_rate (the retune swap, not a config
// change). It keeps the learned rate in $STATE_DIRECTORY/adaptive.json, so
// that a restart starts from it instead of the ceiling; it logs a line when
// the rate moved by more than 10% (at most one a second) and one every 30 s
// while it keeps moving.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "control/adaptive/controller.hpp"
#include "control/config/config.hpp"
#include "control/fleet/shares.hpp"
#include "control/metrics.hpp"
#include "dataplane/dataplane.hpp"

namespace sluice {

class ControlState;

// The learned rate kept across restarts: {"rate", "unix", "baseline_ms"};
// nullopt when the file is missing, unreadable or older than max_age_sec.
std::optional<double> load_learned_rate(const std::string& path, double max_age_sec);
// The baseline kept with it (the service's own latency), in seconds;
// nullopt as load_learned_rate, or when none was kept (an older file).
std::optional<double> load_learned_baseline(const std::string& path, double max_age_sec);
// How old a kept rate may be for a start to take it: an older one says
// little about today's backend.
inline constexpr double kLearnedRateMaxAgeSec = 3600;
bool keep_learned_rate(const std::string& path, double rate, std::string* error,
                       double baseline_sec = 0);

// An inline edge's adaptive boundary starts at the rate it learned before
// a restart from its first packet: `first`, compiled from cfg (with this
// edge's fleet shares, if a member), gets that rate (within the floor and
// ceiling) and it is returned; nullopt, `first` untouched, when adaptive is
// off, the edge is not inline, or no rate was kept (or it is older than
// kLearnedRateMaxAgeSec). At the ceiling until the adaptive thread's first
// step (100 ms), a surge's worth went through to a backend at its capacity,
// and its queue then read as the service's baseline.
std::optional<double> start_at_learned_rate(const Config& cfg, const EdgeShares* shares,
                                            const std::string& state_path, CompiledProfile* first);

// One tick's counts from two readings of the dataplane's counters.
AdaptiveTick adaptive_tick(const DataplaneStats& before, const DataplaneStats& now, double seconds);

class AdaptiveAgent {
 public:
  // Starts the thread. state_path: the learned-rate file ("" = none kept).
  AdaptiveAgent(ControlState& control, std::string state_path, uint32_t tick_ms = 100);
  ~AdaptiveAgent();
  AdaptiveAgent(const AdaptiveAgent&) = delete;
  AdaptiveAgent& operator=(const AdaptiveAgent&) = delete;

  // status()["adaptive"]: rate, ceiling, floor, reason, latency, baseline,
  // target, delivered, since (when the rate last moved).
  nlohmann::json status() const;
  // The sluice_adaptive_* figures; nullopt while adaptive is off.
  std::optional<AdaptiveFigures> figures() const;

 private:
  void run();
  void tick(double seconds);
  void report(const AdaptiveStep& step, double ceiling, double floor);

  ControlState& control_;
  const std::string state_path_;
  const uint32_t tick_ms_;

  // The thread's own (only run() touches these).
  std::optional<AdaptiveController> controller_;
  std::optional<DataplaneStats> previous_;
  double applied_ = 0;  // the rate the dataplane runs
  double kept_ = 0;     // the rate in the state file
  std::chrono::steady_clock::time_point kept_at_{};
  bool keep_failed_ = false;  // the last write of the state file failed (logged)
  uint64_t refusals_ = 0;     // steps the dataplane refused in a row
  std::chrono::steady_clock::time_point refusal_logged_at_{};
  // How often the state file's time is refreshed while the rate holds.
  static constexpr std::chrono::seconds kKeepRefresh{60};
  double logged_ = 0;
  std::chrono::steady_clock::time_point logged_at_{};

  mutable std::mutex mutex_;  // guards what status() and figures() read
  std::optional<AdaptiveFigures> figures_;
  std::string started_from_;
  std::map<std::string, uint64_t> steps_;  // figures_.steps while adaptive is off
  bool ran_before_ = false;                // the controller ran in this process
  double moved_unix_ = 0;

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice
