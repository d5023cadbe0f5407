// SPDX-License-Identifier: Apache-2.0
// Params -> profile: converts a validated Config (user units) into the
// compiled profile both dataplanes and the reference model consume. Runs once
// per config generation; the fast path never validates or converts.
#pragma once

#include "control/config/config.hpp"
#include "dataplane/common/profile.hpp"

#include <cstdint>

namespace sluice {

// The sticky-rank salt of a config without admission.seed: kBuiltinSeed
// until sluiced sets its own kept random one at start (set_default_seed).
inline constexpr uint64_t kBuiltinSeed = 0x5a17ce5eedULL;
void set_default_seed(uint64_t seed);
uint64_t default_seed();

// A reserve whose percent is not 0 keeps at least this many tokens (capped
// one token below the burst, as every reserve). A percent of a small burst
// (an adaptive rate, a fleet edge's share) rounds to a fraction of a lookup:
// the classes below then keep the bucket empty and a priority-0 class loses
// whichever of its lookups arrive before the next refill. In the adaptive
// lab a fleet edge at 27/s with a burst of 2 shed 15 of 38 checkpoint
// lookups in one second (reserve 0.12 tokens); in a simulation of that
// second, priority 0 at 15/s under a 60/s overdemand loses 55% with that
// reserve, 5% with 2 tokens, 1.6% with 3.
inline constexpr uint64_t kMinReserveTokens = 3;

// Total: every Config the loader returns compiles. Class ids follow the
// order of cfg.classes (the default class last).
CompiledProfile compile_profile(const Config& cfg);

// The boundary lookup budget and its priority reserves, as compile_profile
// sets them: all an adaptive rate moves (ControlState::set_adaptive_rate
// patches a kept profile with it instead of compiling every prefix again).
void compile_boundary_lookups(const BoundaryConfig& b, sl_profile* p);

}  // namespace sluice
