// SPDX-License-Identifier: Apache-2.0
// The reference admission model: the C model (decide.h) driven by C++ tables.
// It is the oracle both dataplanes are tested against (same packets in, same
// decisions out) and the engine of `sluicectl replay`. Single-threaded; time
// is an argument, never read here. Like the dataplanes, it starts with zeroed
// state that each class's first packet initialises (sl_class_params.state_epoch).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/model/abi.h"
#include "dataplane/common/profile.hpp"
#include "dataplane/common/flow_table.hpp"
#include "dataplane/common/lpm.hpp"
#include "dataplane/common/source_table.hpp"

namespace sluice {

class ReferenceModel {
 public:
  explicit ReferenceModel(CompiledProfile profile);

  // Decides for one frame without changing it. meta, when given, receives
  // what the parser saw.
  sl_decision decide(const uint8_t* frame, uint32_t len, uint64_t now_ns, sl_meta* meta = nullptr);

  // Decides and performs the rewrite the action asks for: a reset turns the
  // frame into the RST+ACK to send back out (len updated), a mark rewrites
  // the DSCP. The frame buffer must be writable for len bytes.
  sl_decision process(uint8_t* frame, uint32_t& len, uint64_t now_ns);

  // A frame leaving through the inside interface (inline mode's return
  // path): it is forwarded untouched, but may open, close or confirm a flow.
  void observe_inside(const uint8_t* frame, uint32_t len, uint64_t now_ns);

  // Swaps in a new profile. State and counters of classes that keep their
  // name survive (buckets clamped to the new burst); new classes start fresh.
  void apply(CompiledProfile next);

  const CompiledProfile& profile() const { return profile_; }
  const sl_counters& counters() const { return *counters_; }
  const sl_class_state& class_state(uint32_t id) const { return classes_[id]; }
  const sl_boundary_state& boundary_state() const { return boundary_; }
  const SourceTable& sources() const { return sources_; }
  const FlowTable& flows() const { return flows_; }

 private:
  void count(const sl_decision& d);
  uint32_t classify(const sl_meta& m) const;

  CompiledProfile profile_;
  LpmTable src_lpm_;
  LpmTable dst_lpm_;
  SourceTable sources_;
  FlowTable flows_;
  std::vector<sl_class_state> classes_;
  sl_boundary_state boundary_{};
  std::unique_ptr<sl_counters> counters_;
};

}  // namespace sluice
