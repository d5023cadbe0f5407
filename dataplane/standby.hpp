// SPDX-License-Identifier: Apache-2.0
// The DPDK fast path with an XDP standby on the same kernel interfaces
// (af_packet vdevs): when the DPDK sluiced dies or stops, the kernel itself
// takes over within kStandbyTimeout, enforcing the same profile.
//
// The XDP program is attached to both interfaces before DPDK starts, with
// the same profile. While DPDK's workers make progress, a heartbeat thread
// writes the time into the program's heartbeat map every kBeatPeriod and the
// program passes every frame up to the af_packet sockets DPDK reads. Once
// the last beat is older than kStandbyTimeout (kill -9, a hung worker, a
// stop) it decides and forwards every frame itself, from the first packet
// after the deadline: no process has to start, nothing has to be attached.
// A restarted sluiced adopts the pinned XDP state and DPDK takes the frames
// back at its first beat. One sluiced per pin_path (the instance lock) is
// what keeps a restart from running two of them.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dataplane.hpp"
#include "dataplane/dpdk/dpdk_dataplane.hpp"
#include "dataplane/xdp/xdp_dataplane.hpp"

namespace sluice {

inline constexpr std::chrono::milliseconds kBeatPeriod{25};
inline constexpr std::chrono::milliseconds kStandbyTimeout{250};

// True when DPDK's ports are af_packet vdevs on kernel interfaces (where an
// XDP program can stand by).
bool standby_possible(const DataplaneSettings& settings);

class StandbyDataplane final : public Dataplane {
 public:
  // `xdp_settings` names the kernel interfaces behind DPDK's ports.
  StandbyDataplane(DataplaneSettings dpdk_settings, DataplaneSettings xdp_settings);
  ~StandbyDataplane() override;

  // Starts the XDP standby (enforcing until the first beat), then DPDK, then
  // the heartbeat. False when either cannot start.
  bool start(const CompiledProfile& profile, uint64_t generation, std::string* error) override;
  // The standby first, then DPDK: a failure leaves DPDK on the old profile
  // and the standby, which only acts once DPDK is gone, on the new one.
  bool apply(const CompiledProfile& profile, uint64_t generation, std::string* error) override;
  DataplaneStats stats() const override;
  // Stops beating and releases DPDK's ports: the standby takes over.
  void stop() override;
  StopNote stop_note() const override { return dpdk_.stop_note(); }
  const char* kind() const override { return "dpdk"; }
  bool adopted_state() const override { return xdp_.adopted_state(); }
  // Captures what DPDK decides (the standby only decides once DPDK is gone).
  bool capture_start(const CaptureFilter& filter, std::string* error) override {
    return dpdk_.capture_start(filter, error);
  }
  void capture_read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms) override {
    dpdk_.capture_read(out, lost, timeout_ms);
  }
  void capture_stop() override { dpdk_.capture_stop(); }

 private:
  void beat_loop();

  DpdkDataplane dpdk_;
  XdpDataplane xdp_;
  std::atomic<bool> beating_{false};
  std::atomic<bool> dpdk_alive_{false};
  std::atomic<uint64_t> takeovers_{0};  // the standby decided frames since the last look
  std::thread beat_thread_;
  // The standby's class counts at this sluiced's start: its pinned counters
  // outlive restarts, DPDK's start at 0; stats() adds only what the standby
  // counted since (its whole history would read as a counter reset, and
  // rate() as that many decisions at once).
  std::vector<ClassStats> standby_base_;
};

}  // namespace sluice
