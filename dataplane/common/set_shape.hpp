// SPDX-License-Identifier: Apache-2.0
// The shape of the tables in sets of our own (the XDP program's per-source
// and flow tables, the DPDK workers' per-source table): how many sets.
#pragma once

#include <cstdint>

namespace sluice {

// A power of two of sets of `ways` ways, holding at least twice `entries`:
// 2-4 ways per entry, so that a table holding that many keys rarely has a
// full set.
inline uint32_t sets_for(uint64_t entries, uint32_t ways) {
  uint32_t n = 1;
  while (uint64_t{n} * ways < 2 * entries) n *= 2;
  return n;
}

}  // namespace sluice
