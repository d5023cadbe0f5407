// SPDX-License-Identifier: Apache-2.0
// The hash of the userspace tables whose keys a sender chooses (the flow
// table's 5-tuples, the per-source table's addresses): keyed with words
// drawn at process start. A fixed hash can be inverted offline, and a
// flood of keys picked to share one probe run would make every lookup walk
// it (the BPF maps' hash is seeded by the kernel the same way).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "dataplane/model/sticky.h"

namespace sluice {

namespace keyed_hash_detail {

constexpr std::size_t kMaxWords = 6;
struct Keys {
  uint64_t k[kMaxWords];
};
extern const Keys kKeys;  // drawn from std::random_device at start

inline uint64_t fold(uint64_t a, uint64_t b) {
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

}  // namespace keyed_hash_detail

// Keys of up to 48 bytes (padding zeroed by their maker): independent
// 64 x 64 -> 128-bit multiplies of each pair of words with the process's
// keys, then one mix, instead of a chain of dependent mixes.
// The full 64 bits (a set index from the low ones, a tag from the high ones).
template <typename Key>
uint64_t keyed_hash64(const Key& key) {
  using namespace keyed_hash_detail;
  static_assert(std::is_trivially_copyable_v<Key> && sizeof(Key) <= kMaxWords * 8);
  constexpr std::size_t kWords = (sizeof(Key) + 15) / 16 * 2;
  uint64_t w[kWords] = {};
  std::memcpy(w, &key, sizeof(Key));
  uint64_t h = 0;
  for (std::size_t i = 0; i < kWords; i += 2)
    h ^= fold(w[i] ^ kKeys.k[i], w[i + 1] ^ kKeys.k[i + 1]);
  return sl_mix64(h);
}

template <typename Key>
uint32_t keyed_hash(const Key& key) {
  return static_cast<uint32_t>(keyed_hash64(key));
}

}  // namespace sluice
