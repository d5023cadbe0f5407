// SPDX-License-Identifier: Apache-2.0
#include "dataplane/common/lpm.hpp"

#include <algorithm>

namespace sluice {
namespace {

uint64_t load_be64(const uint8_t* a) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | a[i];
  return v;
}

uint64_t high_mask(unsigned bits) { return bits == 0 ? 0 : ~uint64_t{0} << (64 - bits); }

}  // namespace

uint64_t LpmTable::key_v4(const uint8_t* a, uint8_t len) {
  uint32_t v = uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 | uint32_t{a[2]} << 8 | a[3];
  uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  return v & mask;
}

LpmTable::V6Key LpmTable::key_v6(const uint8_t* a, uint8_t len) {
  uint64_t hi = load_be64(a);
  uint64_t lo = load_be64(a + 8);
  if (len <= 64) return {hi & high_mask(len), 0};
  return {hi, lo & high_mask(len - 64u)};
}

std::size_t LpmTable::V6Hash::operator()(const V6Key& k) const noexcept {
  uint64_t h = k.hi * 0x9e3779b97f4a7c15ULL ^ (k.lo + 0x632be59bd9b4e019ULL);
  return static_cast<std::size_t>(h ^ (h >> 29));
}

LpmTable::LpmTable(const std::vector<LpmEntry>& entries) {
  for (const LpmEntry& e : entries) {
    if (e.family == 4 && e.len <= 32) {
      v4_[e.len][key_v4(e.addr_be.data(), e.len)] |= e.class_mask;
    } else if (e.family == 6 && e.len <= 128) {
      v6_[e.len][key_v6(e.addr_be.data(), e.len)] |= e.class_mask;
    }
  }
  for (int len = 32; len >= 0; len--) {
    if (!v4_[len].empty()) v4_lens_.push_back(static_cast<uint8_t>(len));
    size_ += v4_[len].size();
  }
  for (int len = 128; len >= 0; len--) {
    if (!v6_[len].empty()) v6_lens_.push_back(static_cast<uint8_t>(len));
    size_ += v6_[len].size();
  }
}

uint32_t LpmTable::lookup(uint8_t family, const uint8_t* addr_be) const {
  if (family == 4) {
    for (uint8_t len : v4_lens_) {
      auto it = v4_[len].find(key_v4(addr_be, len));
      if (it != v4_[len].end()) return it->second;
    }
  } else if (family == 6) {
    for (uint8_t len : v6_lens_) {
      auto it = v6_[len].find(key_v6(addr_be, len));
      if (it != v6_[len].end()) return it->second;
    }
  }
  return 0;
}

}  // namespace sluice
