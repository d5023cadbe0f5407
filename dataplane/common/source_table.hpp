// SPDX-License-Identifier: Apache-2.0
// Per-source budget table of the reference model: a bounded LRU keyed by the
// masked source (sl_source_key). All entries are allocated up front; a new
// source takes the least recently used entry once the table is full, so a
// flood of spoofed sources recycles entries instead of growing memory (the
// same contract as a BPF LRU hash map). The DPDK workers share sets of their
// own, their budgets taken by compare-and-swap
// (dataplane/dpdk/source_sets.hpp), as the XDP program does.
#pragma once

#include <cstdint>

#include "dataplane/common/bounded_lru.hpp"
#include "dataplane/model/abi.h"

namespace sluice {

class SourceTable {
 public:
  explicit SourceTable(std::size_t capacity) : lru_(capacity) {}

  // The state of key, created with a full budget when missing; marks it most
  // recently used. Never fails.
  sl_source_state* find_or_insert(const sl_source_key& key);

  std::size_t size() const { return lru_.size(); }
  std::size_t capacity() const { return lru_.capacity(); }
  uint64_t evictions() const { return lru_.evictions(); }
  // Bytes held by the table's own storage (entries and index buckets).
  std::size_t memory_bytes() const { return lru_.memory_bytes(); }

  // The table's hash (keyed per process: dataplane/common/keyed_hash.hpp).
  struct Hash {
    uint32_t operator()(const sl_source_key& k) const;
  };

 private:
  BoundedLru<sl_source_key, sl_source_state, Hash> lru_;
};

}  // namespace sluice
