// SPDX-License-Identifier: Apache-2.0
// Liveness from counters that move only while their owners run (a DPDK
// worker's polling loops). EAL reports a worker stuck in a loop, or spinning
// on a lock whose holder died, as RUNNING; its loop counter says otherwise.
// Not thread-safe: the DPDK dataplane calls it under its stats mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace sluice {

class ProgressWatch {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ProgressWatch(std::chrono::nanoseconds limit) : limit_(limit) {}

  // The indexes of the counters that have not moved for longer than the
  // limit, given their values at `now`. A counter seen for the first time
  // (or after the set of counters changed) counts as having just moved.
  std::vector<std::size_t> stalled(const std::vector<uint64_t>& counts, Clock::time_point now) {
    if (counts.size() != seen_.size()) {
      seen_ = counts;
      since_.assign(counts.size(), now);
      return {};
    }
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < counts.size(); i++) {
      if (counts[i] != seen_[i]) {
        seen_[i] = counts[i];
        since_[i] = now;
      } else if (now - since_[i] > limit_) {
        out.push_back(i);
      }
    }
    return out;
  }

  // How long counter i has not moved, as of the last call.
  Clock::duration still_for(std::size_t i, Clock::time_point now) const {
    return i < since_.size() ? now - since_[i] : Clock::duration::zero();
  }

 private:
  std::chrono::nanoseconds limit_;
  std::vector<uint64_t> seen_;
  std::vector<Clock::time_point> since_;
};

}  // namespace sluice
