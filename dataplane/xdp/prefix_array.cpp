// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/prefix_array.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace sluice {
namespace {

uint32_t host_v4(const std::array<uint8_t, 16>& a) {
  return uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 | uint32_t{a[2]} << 8 | a[3];
}

}  // namespace

uint32_t PrefixArray::lookup(uint32_t addr) const {
  uint32_t e = blocks[addr >> 24].e[(addr >> 16) & 255];
  if (e & SL_PREFIX_GROUP) {
    e = blocks[256 + (e & (SL_PREFIX_GROUPS - 1))].e[(addr >> 8) & 255];
    if (e & SL_PREFIX_GROUP) e = blocks[256 + (e & (SL_PREFIX_GROUPS - 1))].e[addr & 255];
  }
  return e;
}

PrefixArray build_prefix_array(const std::vector<LpmEntry>& entries) {
  // Each prefix once (a repeated one's masks ORed, as the trie's update
  // and LpmTable merge them), shortest first: a longer prefix then paints
  // over the shorter ones covering it, which is what the longest match is.
  std::map<std::pair<uint8_t, uint32_t>, uint32_t> prefixes;
  for (const LpmEntry& e : entries) {
    if (e.family != 4 || e.len > 32) continue;
    const uint32_t mask = e.len == 0 ? 0 : ~uint32_t{0} << (32 - e.len);
    prefixes[{e.len, host_v4(e.addr_be) & mask}] |= e.class_mask;
  }
  PrefixArray out;
  // Room for every group at once: group_of() holds pointers into blocks
  // across the push_back of a group.
  out.blocks.reserve(SL_PREFIX_SLOT_BLOCKS);
  out.blocks.assign(256, sl_prefix_block{});
  // The group under an entry, made (filled with the entry's mask) if the
  // entry was still a mask; UINT32_MAX once there are too many.
  auto group_of = [&out](uint32_t* entry) -> uint32_t {
    if (*entry & SL_PREFIX_GROUP) return *entry & ~SL_PREFIX_GROUP;
    if (out.groups == SL_PREFIX_GROUPS) {
      out.fits = false;
      return UINT32_MAX;
    }
    const uint32_t index = out.groups++;
    sl_prefix_block block;
    std::fill(std::begin(block.e), std::end(block.e), *entry);
    out.blocks.push_back(block);
    *entry = SL_PREFIX_GROUP | index;
    return index;
  };
  auto top = [&out](uint32_t addr) -> uint32_t* {
    return &out.blocks[addr >> 24].e[(addr >> 16) & 255];
  };
  for (const auto& [key, mask] : prefixes) {
    const auto [len, addr] = key;
    if (mask & SL_PREFIX_GROUP) out.fits = false;  // the default class: never a prefix's
    if (len <= 16) {
      const uint32_t first = addr >> 16, count = 1U << (16 - len);
      for (uint32_t i = first; i < first + count; i++) out.blocks[i >> 8].e[i & 255] = mask;
      continue;
    }
    const uint32_t g2 = group_of(top(addr));
    if (g2 == UINT32_MAX) break;
    uint32_t* level2 = &out.blocks[256 + g2].e[(addr >> 8) & 255];
    if (len <= 24) {
      const uint32_t count = 1U << (24 - len);
      std::fill(level2, level2 + count, mask);
      continue;
    }
    const uint32_t g3 = group_of(level2);
    if (g3 == UINT32_MAX) break;
    uint32_t* level3 = &out.blocks[256 + g3].e[addr & 255];
    std::fill(level3, level3 + (1U << (32 - len)), mask);
  }
  if (!out.fits) out.blocks.clear();
  return out;
}

}  // namespace sluice
