// SPDX-License-Identifier: Apache-2.0
// The reference admission model: the C model (decide.h) driven by C++ tables.
// It is the oracle both dataplanes are tested against (same packets in, same
// decisions out) and the engine of `sluicectl replay`. Single-threaded; time
// is an argument, never read here. Like the dataplanes, it keeps class state
// and counters in slots given by the slot book (dataplane/common/), starting
// zeroed: each class's first packet initialises its slot (state_epoch).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/common/flow_table.hpp"
#include "dataplane/common/lpm.hpp"
#include "dataplane/common/profile.hpp"
#include "dataplane/common/slot_book.hpp"
#include "dataplane/common/source_table.hpp"
#include "dataplane/model/abi.h"

namespace sluice {

class ReferenceModel {
 public:
  explicit ReferenceModel(CompiledProfile profile);

  // Decides for one frame without changing it. meta, when given, receives
  // what the parser saw.
  // cpu: which CPU decides, for per-CPU credits (use_credits).
  sl_decision decide(const uint8_t* frame, uint32_t len, uint64_t now_ns, sl_meta* meta = nullptr,
                     uint32_t cpu = 0);

  // Decides and performs the rewrite the action asks for: a reset turns the
  // frame into the RST+ACK to send back out (len updated), a mark rewrites
  // the DSCP. The frame buffer must be writable for len bytes.
  sl_decision process(uint8_t* frame, uint32_t& len, uint64_t now_ns, uint32_t cpu = 0);

  // Decides as a dataplane whose `cpus` CPUs draw per-CPU credits
  // (dataplane/model/credit.h) does, CPU by CPU; 0 (the default): every
  // decision is the exact one, as under a single lock.
  void use_credits(uint16_t cpus);
  // With credits: decisions made without the lock (on a credit, a start its
  // source refused, or a shed the state leaves no doubt about).
  uint64_t unlocked_decisions() const { return unlocked_; }

  // A frame leaving through the inside interface (inline mode's return
  // path): it is forwarded untouched, but may open, close or confirm a flow.
  void observe_inside(const uint8_t* frame, uint32_t len, uint64_t now_ns);

  // Swaps in a new profile. State and counters of classes that keep their
  // name survive (buckets clamped to the new burst); new classes start fresh.
  // The slots are the slot book's, as in the dataplanes.
  void apply(CompiledProfile next);

  const CompiledProfile& profile() const { return profile_; }
  // Counters by class id of the current profile (the slots' less the bases
  // the book recorded), flow events and source inserts as counted.
  const sl_counters& counters() const;
  const sl_class_state& class_state(uint32_t id) const {
    return slots_[profile_.prof.classes[id].state_index & (SL_MAX_CLASSES - 1)];
  }
  const sl_boundary_state& boundary_state() const { return boundary_; }
  const SourceTable& sources() const { return sources_; }
  const FlowTable& flows() const { return flows_; }

 private:
  void count(const sl_decision& d);
  uint32_t classify(const sl_meta& m) const;
  uint32_t slot_of(uint32_t class_id) const {
    return profile_.prof.classes[class_id].state_index & (SL_MAX_CLASSES - 1);
  }

  CompiledProfile profile_;
  LpmTable src_lpm_;
  LpmTable dst_lpm_;
  SourceTable sources_;
  FlowTable flows_;
  SlotBook book_;
  uint64_t generation_ = 1;
  std::vector<sl_class_state> slots_;  // by state slot
  sl_boundary_state boundary_{};
  std::vector<sl_cpu_credits> credits_;  // by CPU, with use_credits
  // Each CPU's counts of the sticky lookups it shed without the lock, by CPU
  // then state slot (SL_MAX_CLASSES a CPU), with use_credits.
  std::vector<sl_sticky_cpu> sticky_;
  uint64_t unlocked_ = 0;
  std::unique_ptr<sl_counters> counters_;          // by state slot
  mutable std::unique_ptr<sl_counters> by_class_;  // counters(), by class id
};

}  // namespace sluice
