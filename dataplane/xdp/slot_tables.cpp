// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/slot_tables.hpp"

#include <bpf/bpf.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "bpf/shared_state.h"

namespace sluice::xdp_tables {
namespace {

std::string errno_text() { return std::strerror(errno); }

void lpm_key(sl_lpm_key* k, uint32_t slot, const LpmEntry& e) {
  std::memset(k, 0, sizeof(*k));
  k->prefixlen = SL_LPM_KEY_BITS(e.len);
  k->slot = static_cast<__u8>(slot);
  k->family = e.family == 4 ? SL_FAMILY_V4 : SL_FAMILY_V6;
  std::memcpy(k->addr_be, e.addr_be.data(), 16);
}

// Writes `bytes` at `offset` of the one value (`size` bytes) of an
// mmapable array map: one slot's part written in place, the live slot's
// untouched (the program reads it meanwhile).
bool write_slot(int fd, std::size_t size, std::size_t offset, const void* from, std::size_t bytes,
                const char* what, std::string* error) {
  if (bytes == 0) return true;
  void* value = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (value == MAP_FAILED) {
    *error = std::string("cannot map ") + what + ": " + errno_text();
    return false;
  }
  std::memcpy(static_cast<uint8_t*>(value) + offset, from, bytes);
  // Before the caller makes the slot live (a map update): another CPU's
  // program that sees the flip sees these bytes.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  munmap(value, size);
  return true;
}

}  // namespace

bool clear_lpm_slot(int trie_fd, uint32_t slot, std::string* error) {
  std::vector<sl_lpm_key> doomed;
  sl_lpm_key key{};
  sl_lpm_key next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(trie_fd, prev, &next) == 0) {
    if (next.slot == slot) doomed.push_back(next);
    key = next;
    prev = &key;
  }
  for (const sl_lpm_key& k : doomed) {
    if (bpf_map_delete_elem(trie_fd, &k) != 0 && errno != ENOENT) {
      *error = "cannot clear prefixes of the inactive slot: " + errno_text();
      return false;
    }
  }
  return true;
}

bool write_lpm_slot(int trie_fd, uint32_t slot, const std::vector<LpmEntry>& entries,
                    std::string* error) {
  for (const LpmEntry& e : entries) {
    sl_lpm_key k;
    lpm_key(&k, slot, e);
    if (bpf_map_update_elem(trie_fd, &k, &e.class_mask, BPF_ANY) != 0) {
      const bool full = errno == ENOSPC;
      *error = "cannot write prefix table: " + errno_text() +
               (full ? " (more than " + std::to_string(SL_LPM_MAX_ENTRIES / 2) + " prefixes)" : "");
      return false;
    }
  }
  return true;
}

bool write_prefix_array(int blocks_fd, uint32_t slot, const PrefixArray& array,
                        std::string* error) {
  if (slot >= SL_PROFILE_SLOTS || array.blocks.size() > SL_PREFIX_SLOT_BLOCKS) {
    *error = "an IPv4 prefix array of " + std::to_string(array.blocks.size()) +
             " blocks does not fit slot " + std::to_string(slot);
    return false;
  }
  return write_slot(blocks_fd, sizeof(sl_prefix_blocks),
                    offsetof(sl_prefix_blocks, b) +
                        std::size_t{slot} * SL_PREFIX_SLOT_BLOCKS * sizeof(sl_prefix_block),
                    array.blocks.data(), array.blocks.size() * sizeof(sl_prefix_block),
                    "the IPv4 prefix array", error);
}

bool write_port_masks(int ports_fd, uint32_t slot, const std::vector<uint32_t>& port_mask,
                      std::string* error) {
  constexpr std::size_t kSlotMasks = sizeof(sl_port_masks::mask[0]) / sizeof(uint32_t);
  if (slot >= SL_PROFILE_SLOTS || port_mask.size() != kSlotMasks) {
    *error = "a port table of " + std::to_string(port_mask.size()) + " masks does not fit slot " +
             std::to_string(slot);
    return false;
  }
  return write_slot(ports_fd, sizeof(sl_port_masks),
                    std::size_t{slot} * sizeof(sl_port_masks::mask[0]), port_mask.data(),
                    port_mask.size() * sizeof(uint32_t), "the port table", error);
}

}  // namespace sluice::xdp_tables
