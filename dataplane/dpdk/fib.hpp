// SPDX-License-Identifier: Apache-2.0
// The DPDK dataplane's prefix tables: DPDK's own (rte_fib, DIR-24-8, for
// IPv4; rte_lpm6, 24 + 8-bit levels, for IPv6) with bulk lookups over a
// burst. They hold what LpmTable (dataplane/common/lpm.hpp)
// holds, the class mask of the longest prefix covering an address, and
// LpmTable stays the oracle: tests/dpdk/fib_test.cpp compares the two.
//
// A next hop is an index into the distinct class masks (index 0: none), so
// that the IPv4 table uses the smallest entries that hold it and the number
// of 256-entry groups under prefixes longer than /24: 1 byte (16 MB of EAL
// memory for the first 24 bits) up to 127 of each, 2 bytes (32 MB) up to
// 32767, else 4. rte_lpm6 takes 64 MB plus 1 KB per group. Per family and
// direction in use, built once per profile swap (the old and the new
// profile's tables coexist until the swap).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/common/profile.hpp"
#include "dataplane/model/abi.h"

struct rte_fib;
struct rte_lpm6;

namespace sluice::dpdk {

class Fib {
 public:
  // Needs a running EAL. Null, with *error naming what failed (EAL memory,
  // most likely), when a table cannot be built.
  static std::unique_ptr<Fib> build(const std::vector<LpmEntry>& entries, std::string* error);
  ~Fib();
  // Tables built in this process (tests: a retune that keeps the prefixes
  // builds none).
  static uint64_t built();
  Fib(const Fib&) = delete;
  Fib& operator=(const Fib&) = delete;

  // Class mask of the longest prefix covering addr (network order; family
  // 4 reads addr[0..3]), or 0 when none does.
  uint32_t lookup(uint8_t family, const uint8_t* addr_be) const;

  // The same for n packets' source (src) or destination addresses, in one
  // bulk lookup per family; entries whose want[i] is false are left alone.
  void lookup_burst(const sl_meta* meta, const bool* want, uint16_t n, bool src,
                    uint32_t* out) const;

 private:
  Fib() = default;
  // The tables for n4 / n6 prefixes with that many groups of 256 entries;
  // 0, or -1 with *error.
  int create(int n4, uint64_t groups4, int n6, uint64_t groups6, uint64_t top, std::string* error);
  void release();
  rte_fib* v4_ = nullptr;        // null: no IPv4 prefix
  rte_lpm6* v6_ = nullptr;       // null: no IPv6 prefix longer than /0
  uint64_t v6_default_ = 0;      // next hop of ::/0 (what rte_lpm6 misses)
  std::vector<uint32_t> masks_;  // next hop -> class mask; [0] = 0
};

}  // namespace sluice::dpdk
