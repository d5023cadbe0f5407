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

// Total: every Config the loader returns compiles. Class ids follow the
// order of cfg.classes (the default class last).
CompiledProfile compile_profile(const Config& cfg);

// The boundary lookup budget and its priority reserves, as compile_profile
// sets them: all an adaptive rate moves (ControlState::set_adaptive_rate
// patches a kept profile with it instead of compiling every prefix again).
void compile_boundary_lookups(const BoundaryConfig& b, sl_profile* p);

}  // namespace sluice
