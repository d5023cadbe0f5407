// SPDX-License-Identifier: Apache-2.0
// Longest-prefix match for the reference model and the DPDK dataplane: one
// hash table per prefix length in use, probed from the longest length down.
// Lookup cost depends on the number of distinct lengths (at most 33 / 129),
// never on the number of prefixes, like the BPF LPM trie.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "dataplane/common/profile.hpp"

namespace sluice {

class LpmTable {
 public:
  LpmTable() = default;
  explicit LpmTable(const std::vector<LpmEntry>& entries);

  // Value of the longest prefix covering addr (network order; family 4 reads
  // addr[0..3]), or 0 when none does.
  uint32_t lookup(uint8_t family, const uint8_t* addr_be) const;

  std::size_t size() const { return size_; }

 private:
  static uint64_t key_v4(const uint8_t* a, uint8_t len);

  struct V6Key {
    uint64_t hi;
    uint64_t lo;
    bool operator==(const V6Key&) const = default;
  };
  struct V6Hash {
    std::size_t operator()(const V6Key& k) const noexcept;
  };
  static V6Key key_v6(const uint8_t* a, uint8_t len);

  std::array<std::unordered_map<uint64_t, uint32_t>, 33> v4_;
  std::vector<uint8_t> v4_lens_;
  std::array<std::unordered_map<V6Key, uint32_t, V6Hash>, 129> v6_;
  std::vector<uint8_t> v6_lens_;
  std::size_t size_ = 0;
};

}  // namespace sluice
