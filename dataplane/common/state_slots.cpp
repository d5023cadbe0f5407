// SPDX-License-Identifier: Apache-2.0
#include "dataplane/common/state_slots.hpp"

#include <map>
#include <utility>

namespace sluice {

bool assign_state_slots(const CompiledProfile& next, const sl_profile& live,
                        const std::array<std::string, SL_MAX_CLASSES>& slot_names,
                        uint64_t generation, SlotAssignment* out, std::string* error) {
  // Classes keep their state slot (and epoch) by name.
  std::map<std::string, std::pair<uint8_t, uint32_t>> live_by_name;
  std::map<std::string, uint8_t> live_parts;  // flow partitions each live class may use
  std::array<bool, SL_MAX_CLASSES> live_used{};
  for (uint32_t c = 0; c < live.n_classes && c < SL_MAX_CLASSES; c++) {
    const uint8_t idx = live.classes[c].state_index & (SL_MAX_CLASSES - 1);
    live_by_name[slot_names[idx]] = {idx, live.classes[c].state_epoch};
    live_parts[slot_names[idx]] = live.classes[c].flow_parts;
    live_used[idx] = true;
  }
  SlotAssignment a;
  a.prof = next.prof;
  a.prof.boundary_epoch = 1;
  const uint32_t epoch =
      static_cast<uint32_t>(generation) == 0 ? 1 : static_cast<uint32_t>(generation);
  std::array<bool, SL_MAX_CLASSES> used{};
  for (uint32_t c = 0; c < a.prof.n_classes; c++) {
    auto it = live_by_name.find(next.class_names[c]);
    if (it != live_by_name.end()) {
      a.prof.classes[c].state_index = it->second.first;
      a.prof.classes[c].state_epoch = it->second.second;
      // A retune that moved the class leaves its flows in the partitions of
      // its earlier priorities: it keeps looking there.
      a.prof.classes[c].flow_parts |= live_parts[next.class_names[c]];
      used[it->second.first] = true;
    } else {
      a.fresh.push_back(c);
    }
  }
  // New classes take never-used slots first, then slots no live class uses,
  // then any slot the new profile leaves free.
  for (uint32_t c : a.fresh) {
    int pick = -1;
    for (int pass = 0; pass < 3 && pick < 0; pass++) {
      for (uint32_t i = 0; i < SL_MAX_CLASSES && pick < 0; i++) {
        if (used[i]) continue;
        if (pass == 0 && (!slot_names[i].empty() || live_used[i])) continue;
        if (pass == 1 && live_used[i]) continue;
        pick = static_cast<int>(i);
      }
    }
    if (pick < 0) {
      *error = "no free class state slot";
      return false;
    }
    used[pick] = true;
    a.prof.classes[c].state_index = static_cast<__u8>(pick);
    a.prof.classes[c].state_epoch = epoch;
  }
  *out = std::move(a);
  return true;
}

}  // namespace sluice
