// SPDX-License-Identifier: Apache-2.0
#include "dataplane/standby.hpp"

#include <vector>

#include "dataplane/common/slot_book.hpp"

namespace sluice {

bool standby_possible(const DataplaneSettings& s) {
  auto af_packet = [](const std::string& endpoint) {
    return endpoint.rfind("net_af_packet", 0) == 0 && endpoint_interface(endpoint) != endpoint;
  };
  return s.dpdk_standby && af_packet(s.outside) && af_packet(s.inside);
}

StandbyDataplane::StandbyDataplane(DataplaneSettings dpdk_settings, DataplaneSettings xdp_settings)
    : dpdk_(std::move(dpdk_settings)), xdp_(std::move(xdp_settings), /*standby=*/true) {}

StandbyDataplane::~StandbyDataplane() { stop(); }

bool StandbyDataplane::start(const CompiledProfile& profile, uint64_t generation,
                             std::string* error) {
  std::string why;
  // DPDK's steps that fail for a config's reasons first (ports, mbufs, the
  // EAL, the profile's prefix tables): failing there leaves the edge,
  // standby included, as it was.
  if (!dpdk_.prepare(error)) return false;
  if (!dpdk_.check_profile(profile, error)) {
    dpdk_.stop();
    return false;
  }
  if (!xdp_.start(profile, generation, &why)) {
    *error = "the XDP standby did not start: " + why;
    dpdk_.stop();
    return false;
  }
  standby_base_ = xdp_.stats().classes;
  // DPDK continues the generation numbering the standby's pinned state has.
  if (!dpdk_.start(profile, xdp_.live_generation(), error)) return false;
  beating_ = true;
  beat_thread_ = std::thread([this] { beat_loop(); });
  return true;
}

void StandbyDataplane::beat_loop() {
  std::vector<uint64_t> last;
  // The standby's takeovers before DPDK started need nothing: DPDK's table
  // started empty, with its learning window.
  uint64_t takeover = xdp_.standby_takeover_beat();
  while (beating_.load()) {
    // The standby decided frames since the last look (DPDK stalled, a
    // stopped process, a hung worker): the flows it admitted are in its
    // table only, and DPDK, taking the frames back, would charge their
    // packets as forged ones for their whole life. It learns them instead.
    if (const uint64_t t = xdp_.standby_takeover_beat(); t != takeover) {
      takeover = t;
      dpdk_.learn_missed_flows();
      takeovers_.fetch_add(1, std::memory_order_relaxed);
    }
    // A beat only when every worker polled since the last one: a hung
    // worker hands its frames to the kernel too.
    std::vector<uint64_t> now = dpdk_.worker_loops();
    bool progressed = !now.empty() && now.size() == last.size();
    for (std::size_t w = 0; progressed && w < now.size(); w++) progressed = now[w] != last[w];
    if (progressed || last.empty()) {
      std::string ignored;
      dpdk_alive_ = xdp_.beat(std::chrono::nanoseconds(kStandbyTimeout).count(), &ignored);
    } else {
      dpdk_alive_ = false;
    }
    last = std::move(now);
    std::this_thread::sleep_for(kBeatPeriod);
  }
}

bool StandbyDataplane::apply(const CompiledProfile& profile, uint64_t generation,
                             std::string* error) {
  // Both or neither: DPDK builds the profile (its prefix tables may be
  // refused), the standby takes it, then DPDK publishes it. A refusal by
  // either leaves both, and the pinned edge record, as they were.
  return dpdk_.apply_with(
      profile, generation,
      [&](std::string* why) {
        std::string standby_why;
        if (xdp_.apply(profile, generation, &standby_why)) return true;
        *why = "the XDP standby refused the profile: " + standby_why;
        return false;
      },
      error);
}

DataplaneStats StandbyDataplane::stats() const {
  DataplaneStats s = dpdk_.stats();
  const DataplaneStats standby = xdp_.stats();
  // A standby whose program left the links (sluiced --detach) stands by
  // for nothing: says so rather than "standing by".
  s.standby = !standby.healthy ? "gone" : dpdk_alive_.load() ? "standing by" : "enforcing";
  s.standby_takeovers = takeovers_.load(std::memory_order_relaxed);
  // The standby counts only the frames it decided (while DPDK beats, it
  // passes every frame to DPDK uncounted): with DPDK's since this start,
  // the edge's whole.
  // Before, its decisions while it enforced were never exported.
  std::vector<ClassStats> since = standby.classes;
  subtract_class_counts(&since, standby_base_);
  add_class_counts(&s.classes, since);
  s.edge_state = standby.edge_state;
  s.edge_since_unix_ns = standby.edge_since_unix_ns;
  if (!standby.healthy && s.healthy) s.unhealthy = "the XDP standby: " + standby.unhealthy;
  s.healthy = s.healthy && standby.healthy;
  return s;
}

void StandbyDataplane::stop() {
  if (beating_.exchange(false)) beat_thread_.join();
  dpdk_.stop();
  xdp_.stop();
}

}  // namespace sluice
