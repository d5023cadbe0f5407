// SPDX-License-Identifier: Apache-2.0
#include "dataplane/common/flow_table.hpp"

#include <random>

#include "dataplane/model/sticky.h"

namespace sluice {

FlowTable::FlowTable(std::size_t capacity) {
  const std::size_t per = flow_partition_size(capacity);
  for (auto& p : parts_) p = std::make_unique<Partition>(per);
}

namespace {

// Keys of this process's flow hash, drawn at start: the addresses and ports
// are the sender's to choose, and a fixed hash would let a flood pick keys
// that share one probe run.
struct HashKeys {
  uint64_t k[6];
  HashKeys() {
    std::random_device rd;
    for (uint64_t& x : k) x = uint64_t{rd()} << 32 | rd();
  }
};
const HashKeys kHashKeys;

uint64_t fold(uint64_t a, uint64_t b) {
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

}  // namespace

// Three independent 64 x 64 -> 128-bit multiplies of the key's six words
// with the process's keys, then one mix, instead of a chain of six
// dependent mixes (twelve dependent multiplies) on every flow lookup and
// write.
uint32_t FlowTable::Hash::operator()(const sl_flow_key& k) const {
  uint64_t w[6];
  std::memcpy(w, &k, sizeof(w));
  const uint64_t* key = kHashKeys.k;
  const uint64_t h = fold(w[0] ^ key[0], w[1] ^ key[1]) ^ fold(w[2] ^ key[2], w[3] ^ key[3]) ^
                     fold(w[4] ^ key[4], w[5] ^ key[5]);
  return static_cast<uint32_t>(sl_mix64(h));
}

sl_flow* FlowTable::find(uint32_t parts, const sl_flow_key& key, uint64_t now_ns,
                         FlowEvents& events) {
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    if (!(parts & (1U << p))) continue;
    sl_flow* f = parts_[p]->find(key);
    if (f == nullptr) continue;
    if (sl_flow_live(f, now_ns)) return f;
    parts_[p]->erase(key);
    events[p][SL_FLOW_EV_EXPIRED]++;
  }
  return nullptr;
}

bool FlowTable::put(uint32_t p, const sl_flow_key& key, const sl_flow& f, uint64_t now_ns,
                    FlowEvents& events, sl_flow* previous) {
  bool inserted = false;
  sl_flow old{};
  const uint64_t before = parts_[p]->evictions();
  sl_flow* slot = parts_[p]->insert(key, &inserted, &old);
  if (parts_[p]->evictions() != before)
    events[p][sl_flow_live(&old, now_ns) ? SL_FLOW_EV_EVICTED : SL_FLOW_EV_EXPIRED]++;
  if (inserted) {
    *slot = f;
    return true;
  }
  if (previous != nullptr) *previous = *slot;
  sl_flow_rewrite(slot, &f, now_ns);
  return false;
}

std::size_t FlowTable::memory_bytes() const {
  std::size_t total = 0;
  for (const auto& p : parts_) total += p->memory_bytes();
  return total;
}

}  // namespace sluice
