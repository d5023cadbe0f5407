// SPDX-License-Identifier: Apache-2.0
#include "dataplane/reference/source_table.hpp"

#include "dataplane/model/bucket.h"
#include "dataplane/model/sticky.h"

#include <cstring>

namespace sluice {

// Everything is allocated here, once: a flood of new sources recycles nodes
// and index slots, it never allocates.
SourceTable::SourceTable(std::size_t capacity) : nodes_(capacity == 0 ? 1 : capacity) {
  std::size_t slots = 2;
  while (slots < 2 * nodes_.size()) slots *= 2;
  slots_.assign(slots, kNone);
  mask_ = static_cast<uint32_t>(slots - 1);
}

std::size_t SourceTable::memory_bytes() const {
  return nodes_.capacity() * sizeof(Node) + slots_.capacity() * sizeof(uint32_t);
}

uint32_t SourceTable::find_slot(const sl_source_key& key, uint32_t hash) const {
  for (uint32_t s = hash & mask_;; s = (s + 1) & mask_) {
    const uint32_t n = slots_[s];
    if (n == kNone ||
        (nodes_[n].hash == hash && std::memcmp(&nodes_[n].key, &key, sizeof(key)) == 0))
      return s;
  }
}

// Backward-shift deletion: later entries of the probe run move up so that
// every lookup still finds its entry before an empty slot.
void SourceTable::erase_slot(uint32_t slot) {
  uint32_t hole = slot;
  for (uint32_t s = (slot + 1) & mask_; slots_[s] != kNone; s = (s + 1) & mask_) {
    const uint32_t home = nodes_[slots_[s]].hash & mask_;
    // Moves up unless its home lies cyclically in (hole, s].
    const bool stays = hole <= s ? (home > hole && home <= s) : (home > hole || home <= s);
    if (!stays) {
      slots_[hole] = slots_[s];
      hole = s;
    }
  }
  slots_[hole] = kNone;
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
  const uint32_t hash = static_cast<uint32_t>(sl_key_hash(&key, 0x51ce));
  uint32_t slot = find_slot(key, hash);
  if (slots_[slot] != kNone) {
    const uint32_t i = slots_[slot];
    if (head_ != i) {
      unlink(i);
      push_front(i);
    }
    return &nodes_[i].state;
  }
  uint32_t i;
  if (used_ < nodes_.size()) {
    i = used_++;
    size_++;
  } else {
    i = tail_;
    unlink(i);
    erase_slot(find_slot(nodes_[i].key, nodes_[i].hash));
    evictions_++;
    slot = find_slot(key, hash);  // the erase may have moved the probe run
  }
  Node& n = nodes_[i];
  n.key = key;
  n.hash = hash;
  sl_bucket_init(&n.state.bucket, &params, now_ns);
  push_front(i);
  slots_[slot] = i;
  return &n.state;
}

}  // namespace sluice
