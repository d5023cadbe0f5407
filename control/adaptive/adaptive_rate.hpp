// SPDX-License-Identifier: Apache-2.0
// How a learned adaptive rate enters the config the dataplane runs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "control/config/compile.hpp"
#include "control/config/config.hpp"

namespace sluice {

// The least burst an adaptive rate scales the boundary's down to (or the
// configured burst, if smaller): room for the priority reserves' least
// (kMinReserveTokens) and as much again for the classes below.
inline constexpr uint64_t kMinAdaptiveBurst = 2 * (kMinReserveTokens + 1);

// cfg with its boundary lookup rate replaced by `rate` (rounded, within
// [1, the config's rate]: the config's rate is the ceiling) and its burst
// scaled alike, so that the burst stays the same time's worth, but not below
// kMinAdaptiveBurst: at 27/s a tenth of a second is 2 lookups, and the
// priority reserves need tokens to keep.
inline BoundaryConfig with_adaptive_rate(const BoundaryConfig& boundary, double rate) {
  BoundaryConfig b = boundary;
  if (!b.lookups_per_sec) return b;
  const uint64_t ceiling = *b.lookups_per_sec;
  const uint64_t r =
      std::clamp<uint64_t>(static_cast<uint64_t>(std::max(1.0, std::round(rate))), 1, ceiling);
  b.lookups_burst = std::max<uint64_t>(
      std::min(b.lookups_burst, kMinAdaptiveBurst),
      static_cast<uint64_t>(static_cast<double>(b.lookups_burst) * static_cast<double>(r) /
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
