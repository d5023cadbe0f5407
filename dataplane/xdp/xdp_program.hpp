// SPDX-License-Identifier: Apache-2.0
// The XDP program and its maps (bpf/sluice.bpf.c) as one RAII object: load
// (adopting pinned maps when they exist), write compiled profiles into the
// inactive slot and flip, read counters and state, and run frames through the
// program with BPF_PROG_TEST_RUN. Attaching to interfaces is XdpDataplane's
// job. No libbpf type appears in this header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bpf/shared_state.h"
#include "dataplane/common/profile.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/model/abi.h"
#include "dataplane/model/capture.h"

namespace sluice {

struct XdpProgramOptions {
  bool inline_mode = false;      // admitted -> redirect to the inside interface
  bool fake_clock = false;       // tests: time comes from set_clock()
  bool record_decision = false;  // tests: test_run() reports the decision
  bool standby = false;          // DPDK standby: pass every frame while beat() is fresh
  // Per-CPU credits (dataplane/model/credit.h): off, every decision takes the lock.
  bool credits = true;
  // bpffs directory (dataplane.pin_path); the maps are pinned in its
  // subdirectory layout_name(). Empty: nothing pinned (tests).
  std::string pin_path;
  uint64_t source_table_size = SL_SOURCES_DEFAULT;
  uint64_t flow_table_size = SL_FLOWS_DEFAULT;  // all priority partitions together
  // Tests: the compare-and-swap tries of a source's take or give-back,
  // 1..SL_SOURCE_CAS_TRIES in the program's own code, then
  // 0..SL_SOURCE_CAS_RETRIES in a bpf_loop (bpf/shared_state.h); fewer lose
  // more races.
  uint32_t source_cas_tries = SL_SOURCE_CAS_TRIES;
  uint32_t source_cas_retries = SL_SOURCE_CAS_RETRIES;
};

// Which IPv4 prefix lists of the live profile the arrays answer for
// (prefix_array.hpp); a list needing more groups than they hold, the trie.
struct PrefixArrays {
  bool src = false;
  bool dst = false;
  uint32_t src_groups = 0;
  uint32_t dst_groups = 0;
};

struct XdpTestResult {
  int action = 0;              // XDP_PASS, XDP_DROP, XDP_TX, XDP_REDIRECT
  std::vector<uint8_t> frame;  // the frame as the program left it
  sl_decision decision{};      // with record_decision
};

class XdpProgram {
 public:
  // Opens and loads the program. *error names what failed (verifier log
  // excerpt, incompatible pinned maps, missing bpffs).
  static std::unique_ptr<XdpProgram> load(const XdpProgramOptions& options, std::string* error);
  ~XdpProgram();
  XdpProgram(const XdpProgram&) = delete;
  XdpProgram& operator=(const XdpProgram&) = delete;

  // The subdirectory of pin_path holding the maps of this build and sizes:
  // "layout-" and a fingerprint of every pinned map's key and value sizes,
  // the table sizes and SL_PIN_LAYOUT_REV. Another name is another layout.
  static std::string layout_name(const XdpProgramOptions& options);

  // Whether profile's prefixes fit: the LPM tries hold the live profile's
  // and the next one's, at most SL_LPM_MAX_ENTRIES / 2 each per direction.
  // False + *error naming the count when not; write_profile refuses such a
  // profile before it writes anything (so does --check-config).
  static bool prefixes_fit(const CompiledProfile& profile, std::string* error);

  // True when the maps came from pins left by an earlier sluiced.
  bool adopted() const { return adopted_; }
  // Generation of the live profile (0: none written yet).
  uint64_t generation() const;

  // Writes `profile` into the inactive slot, keeping the state slot of every
  // class whose name was already live, then flips to it. All or nothing.
  bool write_profile(const CompiledProfile& profile, uint64_t generation, std::string* error);
  // The live profile's prefix arrays (as this process wrote them).
  PrefixArrays prefix_arrays() const;
  // CPUs that may hold credits (the profile's credit_cpus; 0 without credits).
  uint16_t credit_cpus() const;
  // The coarse clock's tick that source buckets whose burst holds rate x tick
  // refill from (0: always the exact clock).
  uint64_t source_coarse_tick_ns() const;

  // Inline mode egress: ifindexes of the inside and outside interfaces.
  bool set_tx_ports(int inside_ifindex, int outside_ifindex, std::string* error);

  DataplaneStats stats() const;

  // DPDK standby: the DPDK ports are alive now; the program passes every
  // frame to them until `timeout_ns` after the last beat.
  bool beat(uint64_t timeout_ns, std::string* error);
  // DPDK standby: the beat the standby last took over after (0: never):
  // it moves each time the program decides frames because DPDK stopped
  // beating, and the flows it admitted meanwhile are in its table only.
  uint64_t standby_takeover_beat() const;

  // sluicectl capture (Dataplane::capture_*): the filter goes to
  // sl_capture_cfg, sampled frames come back through sl_capture_ring.
  bool capture_start(const CaptureFilter& filter, std::string* error);
  void capture_read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms);
  void capture_stop();

  // Tests.
  void set_clock(uint64_t now_ns);
  bool test_run(const std::vector<uint8_t>& frame, XdpTestResult* out, std::string* error,
                uint32_t repeat = 1, uint64_t* duration_ns = nullptr);
  // A frame through the inside (return path) program; inline mode only.
  bool test_run_inside(const std::vector<uint8_t>& frame, XdpTestResult* out, std::string* error);

  int outside_prog_fd() const;
  int inside_prog_fd() const;
  uint32_t verified_insns() const;

 private:
  XdpProgram() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool adopted_ = false;
};

}  // namespace sluice
