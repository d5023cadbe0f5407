// SPDX-License-Identifier: Apache-2.0
// The XDP fallback dataplane: the program of xdp_program.hpp attached to the
// outside interface (and, inline, to the inside one for the return path)
// through pinned BPF links, so that enforcement outlives sluiced and a
// restarted sluiced takes the links and maps over instead of resetting them.
//
// Failure policy (edge.hpp): a stop leaves the program enforcing; a start
// swaps its program into the links atomically (adopting the maps of the same
// layout, or starting fresh maps of a new layout while the old program keeps
// enforcing); a first start that fails leaves an inline edge to the
// when_stopped pass-through; `detach` hands it there or removes everything.
#pragma once

#include <memory>
#include <string>

#include "dataplane/dataplane.hpp"
#include "dataplane/xdp/xdp_program.hpp"

namespace sluice {

class XdpDataplane final : public Dataplane {
 public:
  explicit XdpDataplane(DataplaneSettings settings, bool standby = false);
  ~XdpDataplane() override;

  bool start(const CompiledProfile& profile, uint64_t generation, std::string* error) override;
  bool apply(const CompiledProfile& profile, uint64_t generation, std::string* error) override;
  DataplaneStats stats() const override;
  // Leaves the program enforcing the last profile, unattended.
  void stop() override;
  const char* kind() const override { return "xdp"; }
  bool capture_start(const CaptureFilter& filter, std::string* error) override {
    if (!program_) {
      *error = "the xdp dataplane is not running";
      return false;
    }
    return program_->capture_start(filter, error);
  }
  void capture_read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms) override {
    if (program_) program_->capture_read(out, lost, timeout_ms);
  }
  void capture_stop() override {
    if (program_) program_->capture_stop();
  }

  bool adopted_state() const override { return program_ && program_->adopted(); }
  uint64_t live_generation() const { return program_ ? program_->generation() : 0; }

  // DPDK standby only: see XdpProgram::beat.
  bool beat(uint64_t timeout_ns, std::string* error) {
    return program_ && program_->beat(timeout_ns, error);
  }
  // DPDK standby only: see XdpProgram::standby_takeover_beat.
  uint64_t standby_takeover_beat() const {
    return program_ ? program_->standby_takeover_beat() : 0;
  }

  // `sluiced --detach`: an inline edge goes to the when_stopped pass-through
  // and the maps are removed; host mode (or `all`) removes the links, the
  // maps, the pass-through and the edge record. Nothing pinned: nothing done,
  // unless `pins_nothing` (the edge pins nothing when it runs: DPDK without
  // the standby), when an inline edge still goes to the pass-through.
  static bool detach(const DataplaneSettings& settings, bool all, bool pins_nothing,
                     std::string* report);

 private:
  bool fail(const std::string& why, std::string* error);
  void remove_other_layouts(std::string* report) const;

  DataplaneSettings settings_;
  bool standby_ = false;
  bool fresh_ = false;       // this start found nothing at pin_path (fail() leaves nothing there)
  std::string made_layout_;  // the layout directory this start's maps were made in, or empty
  std::unique_ptr<XdpProgram> program_;
  uint32_t outside_prog_id_ = 0;  // our program, to tell whether the link still holds it
};

}  // namespace sluice
