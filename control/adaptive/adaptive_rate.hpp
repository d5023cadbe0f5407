// SPDX-License-Identifier: Apache-2.0
// How a learned adaptive rate enters the config the dataplane runs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "control/config/config.hpp"

namespace sluice {

// cfg with its boundary lookup rate replaced by `rate` (rounded, within
// [1, the config's rate]: the config's rate is the ceiling) and its burst
// scaled alike (at least 1), so that the burst stays the same time's worth.
inline BoundaryConfig with_adaptive_rate(const BoundaryConfig& boundary, double rate) {
  BoundaryConfig b = boundary;
  if (!b.lookups_per_sec) return b;
  const uint64_t ceiling = *b.lookups_per_sec;
  const uint64_t r =
      std::clamp<uint64_t>(static_cast<uint64_t>(std::max(1.0, std::round(rate))), 1, ceiling);
  b.lookups_burst = std::max<uint64_t>(
      1, static_cast<uint64_t>(static_cast<double>(b.lookups_burst) * static_cast<double>(r) /
                               static_cast<double>(ceiling)));
  b.lookups_per_sec = r;
  return b;
}

// Turning boundary.adaptive off freezes the learned rate in the base
// config; an active profile that sets boundary.lookups_per_sec higher would
// run that instead, a jump the operator did not ask for: refused, saying so.
inline std::string frozen_under_profile_error(const std::string& profile, uint64_t profile_rate,
                                              uint64_t learned) {
  return "rejected: the active profile " + profile +
         " sets boundary.lookups_per_sec = " + std::to_string(profile_rate) +
         ", so turning boundary.adaptive off now would run the "
         "boundary at " +
         std::to_string(profile_rate) + "/s, not at the learned rate " + std::to_string(learned) +
         "/s; leave the profile first (sluicectl profile none), or "
         "switch to one that sets the rate you want";
}

inline Config with_adaptive_rate(const Config& cfg, double rate) {
  Config c = cfg;
  c.boundary = with_adaptive_rate(cfg.boundary, rate);
  return c;
}

}  // namespace sluice
