// SPDX-License-Identifier: Apache-2.0
// The real XDP program behind the Dataplane interface, not attached to any
// interface: traffic comes from BPF_PROG_TEST_RUN. Lets control-plane tests
// observe retunes on the packet path without a network.
#pragma once

#include <memory>
#include <string>

#include "dataplane/dataplane.hpp"
#include "dataplane/xdp/xdp_program.hpp"

namespace sluice::test {

class ProgramDataplane final : public Dataplane {
 public:
  bool start(const CompiledProfile& profile, uint64_t generation, std::string* error) override {
    XdpProgramOptions o;
    o.record_decision = true;
    program_ = XdpProgram::load(o, error);
    return program_ && program_->write_profile(profile, generation, error);
  }
  bool apply(const CompiledProfile& profile, uint64_t generation, std::string* error) override {
    return program_->write_profile(profile, generation, error);
  }
  DataplaneStats stats() const override { return program_->stats(); }
  void stop() override {}
  const char* kind() const override { return "xdp"; }
  bool adopted_state() const override { return false; }
  XdpProgram& program() { return *program_; }

 private:
  std::unique_ptr<XdpProgram> program_;
};

}  // namespace sluice::test
