// SPDX-License-Identifier: Apache-2.0
// Params -> profile: converts a validated Config (user units) into the
// compiled profile both dataplanes and the reference model consume. Runs once
// per config generation; the fast path never validates or converts.
#pragma once

#include "control/config/config.hpp"
#include "dataplane/common/profile.hpp"

namespace sluice {

// Total: every Config the loader returns compiles. Class ids follow the
// order of cfg.classes (the default class last).
CompiledProfile compile_profile(const Config& cfg);

}  // namespace sluice
