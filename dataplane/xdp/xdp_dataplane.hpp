// SPDX-License-Identifier: Apache-2.0
// The XDP fallback dataplane: the program of xdp_program.hpp attached to the
// outside interface (and, inline, to the inside one for the return path)
// through pinned BPF links, so that enforcement outlives sluiced and a
// restarted sluiced takes the links and maps over instead of resetting them.
#pragma once

#include <memory>
#include <string>

#include "dataplane/dataplane.hpp"
#include "dataplane/xdp/xdp_program.hpp"

namespace sluice {

class XdpDataplane final : public Dataplane {
 public:
  explicit XdpDataplane(DataplaneSettings settings);
  ~XdpDataplane() override;

  bool start(const CompiledProfile& profile, uint64_t generation, std::string* error) override;
  bool apply(const CompiledProfile& profile, uint64_t generation, std::string* error) override;
  DataplaneStats stats() const override;
  void stop() override;
  const char* kind() const override { return "xdp"; }

  bool adopted_state() const override { return program_ && program_->adopted(); }
  uint64_t live_generation() const { return program_ ? program_->generation() : 0; }

  // Detaches the links and removes the pins under settings.pin_path.
  static bool remove_pins(const DataplaneSettings& settings, std::string* report);

 private:
  bool attach(const std::string& which, int ifindex, int prog_fd, std::string* error);

  DataplaneSettings settings_;
  std::unique_ptr<XdpProgram> program_;
};

}  // namespace sluice
