// SPDX-License-Identifier: Apache-2.0
// Runs the same frames, at the same simulated times, through the real XDP
// program (BPF_PROG_TEST_RUN, fake clock) and through the reference model,
// which draws and spends per-CPU credits as the program does on this
// thread's CPU (the harness keeps the thread on one).
#pragma once

#include <gtest/gtest.h>

#include <sched.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/reference/reference.hpp"
#include "dataplane/xdp/xdp_program.hpp"
#include "tests/support/profile_from_toml.hpp"

namespace sluice::test {

struct BothResult {
  XdpTestResult xdp;
  sl_decision model{};
  std::vector<uint8_t> model_frame;  // after the model's rewrite (reset / mark)
};

class XdpHarness {
 public:
  // Loads the program (no pins) and writes the profile compiled from toml.
  // source_cas_tries, source_cas_retries: XdpProgramOptions's.
  bool load(const std::string& toml, uint64_t source_table_size = 65536,
            uint32_t source_cas_tries = SL_SOURCE_CAS_TRIES,
            uint32_t source_cas_retries = SL_SOURCE_CAS_RETRIES) {
    CompiledProfile profile = profile_from_toml(toml);
    if (profile.prof.n_classes == 0) return false;
    XdpProgramOptions o;
    o.source_cas_tries = source_cas_tries;
    o.source_cas_retries = source_cas_retries;
    o.fake_clock = true;
    o.record_decision = true;
    o.source_table_size = source_table_size;
    profile.source_table_size = source_table_size;
    std::string error;
    program_ = XdpProgram::load(o, &error);
    EXPECT_TRUE(program_) << error;
    if (!program_) return false;
    EXPECT_TRUE(program_->write_profile(profile, 1, &error)) << error;
    model_ = std::make_unique<ReferenceModel>(profile);
    // Per-CPU credits: the program's test runs happen on the CPU of this
    // thread, kept on one CPU, which the model calls CPU 0.
    model_->use_credits(program_->credit_cpus());
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    EXPECT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    return true;
  }

  // A retune to the profile compiled from toml: the program writes it into
  // its other slot and flips to it, the model applies it.
  bool retune(const std::string& toml) {
    CompiledProfile profile = profile_from_toml(toml);
    if (profile.prof.n_classes == 0) return false;
    std::string error;
    EXPECT_TRUE(program_->write_profile(profile, ++generation_, &error)) << error;
    model_->apply(profile);
    return true;
  }

  // A frame from the inside (inline mode's return path) through the inside
  // program and the model; neither decides, both may change flow state.
  void run_inside(const std::vector<uint8_t>& frame, uint64_t now_ns) {
    program_->set_clock(now_ns);
    std::string error;
    XdpTestResult r;
    EXPECT_TRUE(program_->test_run_inside(frame, &r, &error)) << error;
    model_->observe_inside(frame.data(), static_cast<uint32_t>(frame.size()), now_ns);
  }

  BothResult run(const std::vector<uint8_t>& frame, uint64_t now_ns) {
    BothResult r;
    program_->set_clock(now_ns);
    std::string error;
    EXPECT_TRUE(program_->test_run(frame, &r.xdp, &error)) << error;
    r.model_frame = frame;
    uint32_t len = static_cast<uint32_t>(frame.size());
    r.model = model_->process(r.model_frame.data(), len, now_ns);
    r.model_frame.resize(len);
    return r;
  }

  XdpProgram& program() { return *program_; }
  ReferenceModel& model() { return *model_; }

 private:
  std::unique_ptr<XdpProgram> program_;
  std::unique_ptr<ReferenceModel> model_;
  uint64_t generation_ = 1;
};

}  // namespace sluice::test
