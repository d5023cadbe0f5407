// SPDX-License-Identifier: Apache-2.0
// The XDP program's IPv4 prefix tables as arrays (internal to dataplane/xdp/):
// what a source or destination LPM trie answers for an IPv4 address (the
// class mask of the longest prefix covering it), laid out in 256-entry
// blocks of a BPF array map, which the verifier inlines, so a lookup is one
// to three array reads instead of a trie walk (docs/performance.md).
//
// DIR-16-8-8: the first 16 bits of the address index 256 top blocks; an
// entry is a class mask, or (SL_PREFIX_GROUP set) the index of a group, a
// block of 256 entries for the next 8 bits, where prefixes longer than /16
// (a second level) or /24 (a third) start. Groups are few: one per /16 and
// per /24 holding a longer prefix. A profile whose prefixes need more than
// SL_PREFIX_GROUPS stays on the trie.
#pragma once

#include <cstdint>
#include <vector>

#include "bpf/shared_state.h"
#include "dataplane/common/profile.hpp"

namespace sluice {

struct PrefixArray {
  bool fits = true;                     // false: more groups than SL_PREFIX_GROUPS (no blocks then)
  uint32_t groups = 0;                  // groups used
  std::vector<sl_prefix_block> blocks;  // 256 top blocks, then the groups

  // The class mask of the longest IPv4 prefix covering addr (host order),
  // read as the BPF program reads the blocks.
  uint32_t lookup(uint32_t addr) const;
};

// The IPv4 entries of a source or destination prefix list as blocks.
PrefixArray build_prefix_array(const std::vector<LpmEntry>& entries);

}  // namespace sluice
