// SPDX-License-Identifier: Apache-2.0
// The floor under DPDK target (a) (docs/performance.md, "The DPDK floor"):
// the least work a DPDK worker must do to decide sluice (a)'s lookups, on
// the same vdevs as dpdk-testpmd and sluice in bench/dpdk_bench.sh. Not a
// dataplane: a yardstick.
#pragma once

#include <string>

namespace sluice::bench {

struct FloorOptions {
  std::string capture;  // replayed by net_pcap infinite_rx
  double warmup_s = 1.0;
  double seconds = 3.0;
  bool queue = true;  // admitted packets through a ring (the packet budget's queue)
};

// Runs the floor on lcore 1 for warmup + seconds; prints its rx rate and a
// "RESULT pps=..." line as `dpdk_bench run` does. Returns 0, or 1 with the
// reason on stderr.
int run_floor(const FloorOptions& o);

}  // namespace sluice::bench
