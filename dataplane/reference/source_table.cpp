// SPDX-License-Identifier: Apache-2.0
#include "dataplane/reference/source_table.hpp"

#include "dataplane/model/bucket.h"
#include "dataplane/model/sticky.h"

namespace sluice {

SourceTable::SourceTable(std::size_t capacity) : nodes_(capacity == 0 ? 1 : capacity) {
  // Reserve the index for the full table so it never rehashes or grows later.
  index_.reserve(nodes_.size());
}

std::size_t SourceTable::KeyHash::operator()(const sl_source_key& k) const noexcept {
  return static_cast<std::size_t>(sl_key_hash(&k, 0x51ce));
}

std::size_t SourceTable::memory_bytes() const {
  return nodes_.capacity() * sizeof(Node) + index_.bucket_count() * sizeof(void*) +
         index_.size() * (sizeof(sl_source_key) + sizeof(uint32_t) + 2 * sizeof(void*));
}

void SourceTable::unlink(uint32_t i) {
  Node& n = nodes_[i];
  if (n.prev != kNone)
    nodes_[n.prev].next = n.next;
  else
    head_ = n.next;
  if (n.next != kNone)
    nodes_[n.next].prev = n.prev;
  else
    tail_ = n.prev;
  n.prev = n.next = kNone;
}

void SourceTable::push_front(uint32_t i) {
  Node& n = nodes_[i];
  n.prev = kNone;
  n.next = head_;
  if (head_ != kNone) nodes_[head_].prev = i;
  head_ = i;
  if (tail_ == kNone) tail_ = i;
}

sl_source_state* SourceTable::find_or_insert(const sl_source_key& key,
                                             const sl_bucket_params& params, uint64_t now_ns) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    uint32_t i = it->second;
    if (head_ != i) {
      unlink(i);
      push_front(i);
    }
    return &nodes_[i].state;
  }
  uint32_t i;
  if (used_ < nodes_.size()) {
    i = used_++;
  } else {
    i = tail_;
    unlink(i);
    index_.erase(nodes_[i].key);
    evictions_++;
  }
  Node& n = nodes_[i];
  n.key = key;
  sl_bucket_init(&n.state.bucket, &params, now_ns);
  push_front(i);
  index_.emplace(key, i);
  return &n.state;
}

}  // namespace sluice
