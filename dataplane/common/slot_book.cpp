// SPDX-License-Identifier: Apache-2.0
#include "dataplane/common/slot_book.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

namespace sluice {

bool SlotBook::assign(const CompiledProfile& next, const sl_profile& live, uint64_t generation,
                      SlotAssignment* out, std::string* error) const {
  const std::array<std::string, SL_MAX_CLASSES>& slot_names = names;
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

void SlotBook::give(const CompiledProfile& next, const SlotAssignment& a, const sl_counters& now) {
  for (uint32_t c : a.fresh) {
    const uint32_t idx = a.prof.classes[c].state_index & (SL_MAX_CLASSES - 1);
    names[idx] = next.class_names[c];
    std::memcpy(bases[idx].packets, now.packets[idx], sizeof(bases[idx].packets));
    std::memcpy(bases[idx].lookups, now.lookups[idx], sizeof(bases[idx].lookups));
  }
}

int SlotBook::slot_of(const sl_profile& live, const std::string& name) const {
  for (uint32_t c = 0; c < live.n_classes && c < SL_MAX_CLASSES; c++) {
    const uint32_t idx = live.classes[c].state_index & (SL_MAX_CLASSES - 1);
    if (names[idx] == name) return static_cast<int>(idx);
  }
  return -1;
}

std::vector<ClassStats> SlotBook::class_stats(const sl_profile& prof,
                                              const sl_counters& now) const {
  std::vector<ClassStats> out;
  for (uint32_t c = 0; c < prof.n_classes && c < SL_MAX_CLASSES; c++) {
    const uint32_t idx = prof.classes[c].state_index & (SL_MAX_CLASSES - 1);
    ClassStats cs;
    cs.name = names[idx];
    for (int v = 0; v < SL_VERDICT_COUNT; v++) {
      for (int r = 0; r < SL_REASON_COUNT; r++) {
        cs.packets[v][r] = now.packets[idx][v][r] - bases[idx].packets[v][r];
        cs.lookups[v][r] = now.lookups[idx][v][r] - bases[idx].lookups[v][r];
      }
    }
    out.push_back(std::move(cs));
  }
  return out;
}

void add_class_counts(std::vector<ClassStats>* into, const std::vector<ClassStats>& from) {
  for (ClassStats& c : *into) {
    for (const ClassStats& x : from) {
      if (x.name != c.name) continue;
      for (uint32_t v = 0; v < SL_VERDICT_COUNT; v++) {
        for (uint32_t r = 0; r < SL_REASON_COUNT; r++) {
          c.packets[v][r] += x.packets[v][r];
          c.lookups[v][r] += x.lookups[v][r];
        }
      }
    }
  }
}

void subtract_class_counts(std::vector<ClassStats>* counts, const std::vector<ClassStats>& base) {
  for (ClassStats& c : *counts) {
    for (const ClassStats& b : base) {
      if (b.name != c.name) continue;
      for (uint32_t v = 0; v < SL_VERDICT_COUNT; v++) {
        for (uint32_t r = 0; r < SL_REASON_COUNT; r++) {
          c.packets[v][r] -= std::min(c.packets[v][r], b.packets[v][r]);
          c.lookups[v][r] -= std::min(c.lookups[v][r], b.lookups[v][r]);
        }
      }
    }
  }
}

}  // namespace sluice
