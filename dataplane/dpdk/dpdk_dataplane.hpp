// SPDX-License-Identifier: Apache-2.0
// The DPDK fast path behind the dataplane interface: EAL, ports, worker
// lcores running the shared model, priority queues paced to the boundary,
// RCU-swapped profiles. No DPDK type appears in this header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <functional>

#include "dataplane/dataplane.hpp"

namespace sluice {

class DpdkDataplane : public Dataplane {
 public:
  explicit DpdkDataplane(DataplaneSettings settings);
  ~DpdkDataplane() override;

  // What start() does before any profile: the settings' checks, the EAL,
  // the mbuf pool, the ports and the rings, the steps that fail for a
  // config's reasons. The XDP standby calls it before it touches the edge,
  // so that such a failure leaves the edge enforcing what it did. start()
  // runs it when it was not run.
  bool prepare(std::string* error);
  bool start(const CompiledProfile& profile, uint64_t generation, std::string* error) override;
  // Whether `profile` builds (its prefix tables: the step of start() and
  // apply() that can refuse one), run nowhere. After prepare(); the XDP
  // standby asks before it takes a profile at a start, so that one DPDK
  // refuses reaches neither.
  bool check_profile(const CompiledProfile& profile, std::string* error) const;
  bool apply(const CompiledProfile& profile, uint64_t generation, std::string* error) override;
  // apply(), with `also` run once the profile is built (the step that can
  // refuse it) and before it is published: when `also` fails (with *error)
  // nothing is published. The XDP standby takes each retune through it, so
  // that a profile one of the two refuses reaches neither.
  bool apply_with(const CompiledProfile& profile, uint64_t generation,
                  const std::function<bool(std::string*)>& also, std::string* error);
  DataplaneStats stats() const override;
  void stop() override;
  StopNote stop_note() const override;
  const char* kind() const override { return "dpdk"; }
  bool capture_start(const CaptureFilter& filter, std::string* error) override;
  void capture_read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms) override;
  void capture_stop() override;
  bool adopted_state() const override { return false; }

  // Polling loops each worker has run (no lock): a worker whose count stops
  // moving has stalled. Empty when not started.
  std::vector<uint64_t> worker_loops() const;
  // Opens the learning window (docs/architecture.md, "Learning window")
  // at a worker's next burst: the XDP standby decided frames meanwhile, and
  // the flows it admitted are not in DPDK's table.
  void learn_missed_flows();

 private:
  bool prepare_locked(std::string* error);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
