// SPDX-License-Identifier: Apache-2.0
// Class state slots across profile swaps, the same for every dataplane: a
// class keeps its slot (buckets, sticky controller, counters) for as long as
// its name stays in the profile; a new class gets a slot whose state its
// first packet re-initialises (a fresh sl_class_params.state_epoch).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/model/abi.h"
#include "dataplane/common/profile.hpp"

namespace sluice {

struct SlotAssignment {
  sl_profile prof{};            // the profile with state_index / state_epoch filled in
  std::vector<uint32_t> fresh;  // class ids that got a slot they did not have
};

// live: the profile in force (n_classes == 0 when none). slot_names: the
// class each slot was last given to ("" = never used). All or nothing: false
// + *error when the slots run out.
bool assign_state_slots(const CompiledProfile& next, const sl_profile& live,
                        const std::array<std::string, SL_MAX_CLASSES>& slot_names,
                        uint64_t generation, SlotAssignment* out, std::string* error);

}  // namespace sluice
