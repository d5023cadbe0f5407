// SPDX-License-Identifier: Apache-2.0
// A bounded, exact LRU map with every byte allocated up front: a flood of new
// keys recycles the least recently used entry instead of growing memory (the
// contract of a BPF LRU hash map, without its approximation). The reference
// model's per-source table and each of its flow table partitions are one of
// these. Not thread-safe. (The DPDK workers' tables are sets of their own:
// dataplane/dpdk/source_sets.hpp, flow_sets.hpp.)
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace sluice {

// Key: trivially copyable, compared bytewise (padding zeroed by its maker).
// Hash: uint32_t operator()(const Key&) const.
template <typename Key, typename Value, typename Hash>
class BoundedLru {
 public:
  explicit BoundedLru(std::size_t capacity) : nodes_(capacity == 0 ? 1 : capacity) {
    std::size_t slots = 2;
    while (slots < 2 * nodes_.size()) slots *= 2;
    slots_.assign(slots, kNone);
    mask_ = static_cast<uint32_t>(slots - 1);
  }

  // The value of key, or null; a hit becomes the most recently used.
  Value* find(const Key& key) {
    const uint32_t hash = Hash{}(key);
    const uint32_t n = slots_[find_slot(key, hash)];
    if (n == kNone) return nullptr;
    touch(n);
    return &nodes_[n].value;
  }

  // The value of key, inserted (value-initialised by the caller) when
  // missing; *inserted says which. When the table is full the least recently
  // used entry makes room, and *recycled receives its value first.
  Value* insert(const Key& key, bool* inserted, Value* recycled = nullptr) {
    const uint32_t hash = Hash{}(key);
    uint32_t slot = find_slot(key, hash);
    *inserted = false;
    if (slots_[slot] != kNone) {
      touch(slots_[slot]);
      return &nodes_[slots_[slot]].value;
    }
    *inserted = true;
    uint32_t i;
    if (used_ < nodes_.size()) {
      i = used_++;
      size_++;
    } else {
      i = tail_;
      unlink(i);
      erase_slot(find_slot(nodes_[i].key, nodes_[i].hash));
      if (recycled != nullptr) *recycled = nodes_[i].value;
      evictions_++;
      slot = find_slot(key, hash);  // the erase may have moved the probe run
    }
    Node& n = nodes_[i];
    n.key = key;
    n.hash = hash;
    n.value = Value{};
    push_front(i);
    slots_[slot] = i;
    return &n.value;
  }

  // Removes key if present (its node goes to the cold end, to be reused).
  bool erase(const Key& key) {
    const uint32_t hash = Hash{}(key);
    const uint32_t slot = find_slot(key, hash);
    const uint32_t i = slots_[slot];
    if (i == kNone) return false;
    erase_slot(slot);
    unlink(i);
    // Back to the free end: the next insert takes it before evicting anyone.
    used_--;
    size_--;
    if (i != used_) move_node(used_, i);
    return true;
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return nodes_.size(); }
  uint64_t evictions() const { return evictions_; }
  std::size_t memory_bytes() const {
    return nodes_.capacity() * sizeof(Node) + slots_.capacity() * sizeof(uint32_t);
  }

  // Visits every entry (most recent first).
  template <typename F>
  void for_each(F&& f) const {
    for (uint32_t i = head_; i != kNone; i = nodes_[i].next) f(nodes_[i].key, nodes_[i].value);
  }

 private:
  struct Node {
    Key key;
    Value value;
    uint32_t prev;
    uint32_t next;
    uint32_t hash;
  };
  static constexpr uint32_t kNone = UINT32_MAX;

  uint32_t find_slot(const Key& key, uint32_t hash) const {
    for (uint32_t s = hash & mask_;; s = (s + 1) & mask_) {
      const uint32_t n = slots_[s];
      if (n == kNone ||
          (nodes_[n].hash == hash && std::memcmp(&nodes_[n].key, &key, sizeof(key)) == 0))
        return s;
    }
  }

  // Backward-shift deletion: later entries of the probe run move up so that
  // every lookup still finds its entry before an empty slot.
  void erase_slot(uint32_t slot) {
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

  // Moves node `from` (in use) into the free node `to`, fixing links and index.
  void move_node(uint32_t from, uint32_t to) {
    nodes_[to] = nodes_[from];
    Node& n = nodes_[to];
    if (n.prev != kNone)
      nodes_[n.prev].next = to;
    else
      head_ = to;
    if (n.next != kNone)
      nodes_[n.next].prev = to;
    else
      tail_ = to;
    slots_[find_slot(n.key, n.hash)] = to;
  }

  void touch(uint32_t i) {
    if (head_ != i) {
      unlink(i);
      push_front(i);
    }
  }

  void unlink(uint32_t i) {
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

  void push_front(uint32_t i) {
    Node& n = nodes_[i];
    n.prev = kNone;
    n.next = head_;
    if (head_ != kNone) nodes_[head_].prev = i;
    head_ = i;
    if (tail_ == kNone) tail_ = i;
  }

  std::vector<Node> nodes_;
  std::vector<uint32_t> slots_;  // kNone = empty; power-of-two size
  uint32_t mask_ = 0;
  std::size_t size_ = 0;
  uint32_t head_ = kNone;  // most recently used
  uint32_t tail_ = kNone;  // least recently used
  uint32_t used_ = 0;      // nodes [0, used_) are in use
  uint64_t evictions_ = 0;
};

}  // namespace sluice
