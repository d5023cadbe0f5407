// SPDX-License-Identifier: Apache-2.0
// The compiled profile as the control plane hands it to a dataplane: the
// fixed-layout sl_profile plus the tables that do not fit in it (port masks,
// prefix lists for the LPM tables) and the class names for counters and
// metrics. Produced only by control/compile.cpp from a validated Config.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/model/abi.h"

namespace sluice {

// One entry of a source or destination LPM table: the classes whose match
// accepts every address under this prefix (masks of covering prefixes included).
struct LpmEntry {
  uint8_t family = 4;  // 4 or 6
  uint8_t len = 0;
  std::array<uint8_t, 16> addr_be{};
  uint32_t class_mask = 0;
  bool operator==(const LpmEntry&) const = default;
};

struct CompiledProfile {
  sl_profile prof{};
  std::vector<uint32_t> port_mask;  // 65536 entries: classes accepting each dst port
  std::vector<LpmEntry> src_prefixes;
  std::vector<LpmEntry> dst_prefixes;
  std::vector<std::string> class_names;  // index = class id; last = "default"
  uint64_t source_table_size = 65536;    // per-source LRU capacity (restart)
  uint64_t flow_table_size = 262144;     // flow entries, all priority partitions (restart)
  uint64_t max_queue_delay_ns = 0;       // DPDK queues
};

}  // namespace sluice
