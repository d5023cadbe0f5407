// SPDX-License-Identifier: Apache-2.0
// The slot book: which class owns each class state slot and what the slot's
// counters read when it was given to that class. One implementation for the
// XDP program (which keeps the book in pinned maps), the DPDK dataplane and
// the reference model, so the oracle runs the dataplanes' retune code.
//
// A class keeps its slot (buckets, sticky controller, counters) for as long
// as its name stays in the profile; a new class gets a slot whose state its
// first packet re-initialises (a fresh sl_class_params.state_epoch), and
// whose counters it reads from the base recorded when it got the slot.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/common/profile.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/model/abi.h"

namespace sluice {

struct SlotAssignment {
  sl_profile prof{};            // the profile with state_index / state_epoch filled in
  std::vector<uint32_t> fresh;  // class ids that got a slot they did not have
};

struct SlotBook {
  std::array<std::string, SL_MAX_CLASSES> names;  // "" = never given
  std::array<sl_counter_base, SL_MAX_CLASSES> bases{};

  // The slots of `next` given `live` (the profile in force; n_classes == 0
  // when none): kept by name, fresh ones picked from never-used slots first.
  // All or nothing: false + *error when the slots run out.
  bool assign(const CompiledProfile& next, const sl_profile& live, uint64_t generation,
              SlotAssignment* out, std::string* error) const;

  // After `a` is in force: its fresh slots belong to their classes, counted
  // from `now` (the slots' summed counters at the swap).
  void give(const CompiledProfile& next, const SlotAssignment& a, const sl_counters& now);

  // The state slot of the class named `name` in `live` (the profile in
  // force), -1 when it has none. Not by `names` alone: a removed class's
  // name stays on its slot until the slot is given again, and a class added
  // back may have another slot by then.
  int slot_of(const sl_profile& live, const std::string& name) const;

  // Name and counters (less the bases) of each class of `prof`, in profile
  // order; buckets and thresholds are the dataplane's to fill in.
  std::vector<ClassStats> class_stats(const sl_profile& prof, const sl_counters& now) const;
};

// Adds the packet and lookup counts of each class of `from` to the class of
// the same name in `into` (one dataplane's decisions and another's over the
// same profile: DPDK's and its XDP standby's); names `into` lacks are left
// out.
void add_class_counts(std::vector<ClassStats>* into, const std::vector<ClassStats>& from);

// Takes the counts of each class of `base` (counts read earlier) from the
// class of the same name in `counts`, never below 0: what a dataplane
// counted since then.
void subtract_class_counts(std::vector<ClassStats>* counts, const std::vector<ClassStats>& base);

}  // namespace sluice
