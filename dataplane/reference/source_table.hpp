// SPDX-License-Identifier: Apache-2.0
// Per-source bucket table for the reference model: a bounded LRU keyed by the
// masked source (sl_source_key). All entries are allocated up front; a new
// source takes the least recently used entry once the table is full, so a
// flood of spoofed sources recycles entries instead of growing memory (the
// same contract as a BPF LRU hash map).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/model/abi.h"

namespace sluice {

class SourceTable {
 public:
  explicit SourceTable(std::size_t capacity);

  // The state of key, created with a full bucket (per params, at now_ns) when
  // missing; marks it most recently used. Never fails.
  sl_source_state* find_or_insert(const sl_source_key& key, const sl_bucket_params& params,
                                  uint64_t now_ns);

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return nodes_.size(); }
  uint64_t evictions() const { return evictions_; }
  // Bytes held by the table's own storage (entries and index buckets).
  std::size_t memory_bytes() const;

 private:
  struct Node {
    sl_source_key key;
    sl_source_state state;
    uint32_t prev;
    uint32_t next;
    uint32_t hash;
  };
  static constexpr uint32_t kNone = UINT32_MAX;

  void unlink(uint32_t i);
  void push_front(uint32_t i);
  // Open-addressing index (linear probing, at most half full): slot -> node.
  uint32_t find_slot(const sl_source_key& key, uint32_t hash) const;
  void erase_slot(uint32_t slot);

  std::vector<Node> nodes_;
  std::vector<uint32_t> slots_;  // kNone = empty; power-of-two size
  uint32_t mask_ = 0;
  std::size_t size_ = 0;
  uint32_t head_ = kNone;  // most recently used
  uint32_t tail_ = kNone;  // least recently used
  uint32_t used_ = 0;      // nodes handed out so far
  uint64_t evictions_ = 0;
};

}  // namespace sluice
